#!/usr/bin/env bash
# A single-node Apache Kafka broker in KRaft mode on 127.0.0.1, for tests and benchmarks.
#   kafka.sh start [DIR]   resolve the jars (Maven Central), format storage, start, wait until ready
#   kafka.sh stop  [DIR]   stop it (SIGTERM, then SIGKILL after 20 s)
#   kafka.sh status [DIR]
# DIR (default /tmp/capulator-kafka) holds the config, the log dirs, broker.pid and broker.log.
# The broker listens on ${KAFKA_PORT:-39092} (controller on ${KAFKA_CONTROLLER_PORT:-39093}).
# Secured (as a production cluster is): KAFKA_SECURITY=sasl_ssl (or sasl_plaintext) makes the
# client listener SCRAM-SHA-512 (over TLS with KAFKA_TLS_KEYSTORE, a PEM file holding the
# broker's unencrypted PKCS#8 key and its certificate, and KAFKA_TLS_CA, the CA that signed it),
# with KAFKA_SCRAM_USERS ("name:password name:password …"; the first is the broker's own,
# super user) created at format time, and ACLs enforced (StandardAuthorizer, nothing allowed
# without an ACL). The controller listener stays on loopback without TLS.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cmd="${1:-start}"
dir="${2:-/tmp/capulator-kafka}"
port="${KAFKA_PORT:-39092}"
cport="${KAFKA_CONTROLLER_PORT:-39093}"
lib="$here/target/lib"
java="${JAVA_HOME:+$JAVA_HOME/bin/}java"

jars() {
  if [ ! -f "$lib/kafka_2.13-$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml").jar" ]; then
    echo "kafka.sh: resolving broker jars with Maven" >&2
    (cd "$here" && mvn -q -B package) >&2
  fi
}

running() { [ -f "$dir/broker.pid" ] && kill -0 "$(cat "$dir/broker.pid")" 2>/dev/null; }

ready() {
  # the broker is ready when it accepts a metadata request: use kafka's own API versions tool
  "$java" -cp "$lib/*" org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "127.0.0.1:$port" >/dev/null 2>&1 \
    || (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

case "$cmd" in
  start)
    if running; then echo "kafka.sh: already running (pid $(cat "$dir/broker.pid"))" >&2; exit 0; fi
    jars
    mkdir -p "$dir/data"
    security="${KAFKA_SECURITY:-plaintext}"
    case "$security" in
      plaintext) L=PLAINTEXT ;;
      sasl_plaintext|sasl_ssl) L=$(echo "$security" | tr a-z A-Z)
        [ -n "${KAFKA_SCRAM_USERS:-}" ] || { echo "kafka.sh: KAFKA_SECURITY=$security needs KAFKA_SCRAM_USERS" >&2; exit 2; }
        if [ "$security" = sasl_ssl ] && ! { [ -f "${KAFKA_TLS_KEYSTORE:-}" ] && [ -f "${KAFKA_TLS_CA:-}" ]; }; then
          echo "kafka.sh: KAFKA_SECURITY=sasl_ssl needs the files KAFKA_TLS_KEYSTORE and KAFKA_TLS_CA" >&2; exit 2
        fi ;;
      *) echo "kafka.sh: KAFKA_SECURITY must be plaintext, sasl_plaintext or sasl_ssl" >&2; exit 2 ;;
    esac
    cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$L://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=$L://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=$L:$L,CONTROLLER:PLAINTEXT
inter.broker.listener.name=$L
log.dirs=$dir/data
num.partitions=4
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
    scram=()
    if [ "$security" != plaintext ]; then
      first=${KAFKA_SCRAM_USERS%% *}
      for u in $KAFKA_SCRAM_USERS; do scram+=(--add-scram "SCRAM-SHA-512=[name=${u%%:*},password=${u#*:}]"); done
      # the controller listener (loopback, no TLS) is ANONYMOUS: the broker's own requests to it
      cat >> "$dir/server.properties" <<PROPS
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.$security.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="${first%%:*}" password="${first#*:}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:${first%%:*};User:ANONYMOUS
allow.everyone.if.no.acl.found=false
PROPS
      if [ "$security" = sasl_ssl ]; then
        cat >> "$dir/server.properties" <<PROPS
ssl.keystore.type=PEM
ssl.keystore.location=$KAFKA_TLS_KEYSTORE
ssl.truststore.type=PEM
ssl.truststore.location=$KAFKA_TLS_CA
PROPS
      fi
    fi
    cat > "$dir/log4j2.yaml" <<'LOG'
Configuration:
  Appenders:
    Console: { name: STDOUT, PatternLayout: { pattern: "[%d] %p %m (%c)%n" } }
  Loggers:
    Root: { level: WARN, AppenderRef: [ { ref: STDOUT } ] }
    Logger: [ { name: kafka.server.KafkaRaftServer, level: INFO } ]
LOG
    if [ ! -f "$dir/data/meta.properties" ]; then
      "$java" -cp "$lib/*" -Dlog4j2.configurationFile="$dir/log4j2.yaml" kafka.tools.StorageTool format \
        -t "$(cat "$dir/cluster.id" 2>/dev/null || "$java" -cp "$lib/*" kafka.tools.StorageTool random-uuid | tee "$dir/cluster.id")" \
        -c "$dir/server.properties" ${scram[@]+"${scram[@]}"} >"$dir/format.log" 2>&1 || { cat "$dir/format.log" >&2; exit 1; }
    fi
    nohup "$java" -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$dir/log4j2.yaml" -cp "$lib/*" kafka.Kafka "$dir/server.properties" \
      >"$dir/broker.log" 2>&1 &
    echo $! > "$dir/broker.pid"
    deadline=$((SECONDS + 90))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && grep -q 'Kafka Server started\|started (kafka.server' "$dir/broker.log"; do
      if ! running; then echo "kafka.sh: broker exited; log:" >&2; tail -30 "$dir/broker.log" >&2; exit 1; fi
      if [ $SECONDS -gt $deadline ]; then echo "kafka.sh: broker not ready after 90 s" >&2; tail -30 "$dir/broker.log" >&2; exit 1; fi
      sleep 0.5
    done
    echo "kafka.sh: broker ready on 127.0.0.1:$port (pid $(cat "$dir/broker.pid"))" >&2
    ;;
  stop)
    if running; then
      pid=$(cat "$dir/broker.pid"); kill "$pid"
      for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/broker.pid"
    ;;
  status) if running; then echo running; else echo stopped; exit 1; fi ;;
  *) echo "usage: kafka.sh start|stop|status [DIR]" >&2; exit 2 ;;
esac
