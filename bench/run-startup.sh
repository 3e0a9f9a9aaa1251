#!/usr/bin/env bash
# Start-to-exit time of `capulator run IMAGE -- /bin/true` (image already unpacked: the fixture
# rootfs) against a bare `runc run` of the same OCI config (same namespaces, mounts, seccomp
# filter; the bare notify-agent listening), and against runc with no seccomp listener at all.
# The daemon rows start `capulator serve --http off --grpc off` on a home of their own: there
# `capulator run` is the native client (agent/build/capulator-run) handing the run to it.
# Every row but the bridge ones runs with --network none (the default). The bridge rows
# (`--network bridge`: CNI bridge + host-local + portmap + loopback, ADD before and DEL after)
# run in a network namespace the benchmark makes, so the bridge and its rules are never the
# host's: the daemon runs in it (the none rows do not care), the no-daemon CLI via nsenter.
# Usage: bench/run-startup.sh [REPS, default 5]   (root; npm run build first)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
REPS=${1:-5}
BENCH_SRC=${BENCH_SRC:-$REPO/../shared/bench}  # the bare agent and capbench.c from shared/
ROOTFS=$REPO/test/.work/images/rootfs
[ -d "$ROOTFS" ] || bash "$REPO/test/fixtures/images/build.sh" "$REPO/test/.work/images" >/dev/null
W=$(mktemp -d /tmp/capulator-start-bench.XXXXXX)
RUNC_ROOT=$W/runc
SERVE_PID=
PODMAN=
NETNS=capulator-bench-$$
cleanup() {
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
  ip netns delete "$NETNS" 2>/dev/null
  for c in $(runc --root "$RUNC_ROOT" list -q 2>/dev/null); do runc --root "$RUNC_ROOT" delete -f "$c" >/dev/null 2>&1 || true; done
  [ -n "$PODMAN" ] && $PODMAN rmi -af >/dev/null 2>&1
  mountpoint -q "$W/podman/root/overlay" 2>/dev/null && umount "$W/podman/root/overlay"
  rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/home" "$W/dhome"
gcc -O2 -o "$W/notify-agent" "$BENCH_SRC/notify-agent.c" -lseccomp
. "$REPO/bench/lib.sh"   # write_bundles, run_bare, median
write_bundles "$ROOTFS" /bin/true
[ -x "$REPO/agent/build/capulator-run" ] || { echo "agent/build/capulator-run missing: npm run build" >&2; exit 1; }
ip netns add "$NETNS"; ip netns exec "$NETNS" ip link set lo up
IN_NS="nsenter --net=/run/netns/$NETNS"
CAPULATOR_HOME="$W/dhome" $IN_NS "$REPO/bin/capulator" serve --http off --grpc off --log-level silent > "$W/serve.log" 2>&1 & SERVE_PID=$!
for _ in $(seq 1 200); do [ -S "$W/dhome/run.sock" ] && break; sleep 0.05; done
[ -S "$W/dhome/run.sock" ] || { cat "$W/serve.log" >&2; echo "capulator serve did not start" >&2; exit 1; }
CAPULATOR_HOME="$W/dhome" "$REPO/bin/capulator" run "$ROOTFS" -- /bin/true  # warm-up (first run publishes the policy)
CAPULATOR_HOME="$W/dhome" "$REPO/bin/capulator" run --network bridge "$ROOTFS" -- /bin/true  # warm-up: the bridge is created once
CAPULATOR_HOME="$W/home" $IN_NS "$REPO/bin/capulator" run --network bridge "$ROOTFS" -- /bin/true

# podman beside it, when installed (apt-get install podman): the same rootfs imported as an image,
# podman's own storage under $W, runc as its runtime (crun fails on this machine's hybrid
# cgroups), default_ulimits lowered (this machine lacks CAP_SYS_RESOURCE: runc sets them on the
# ready container process from outside, and podman's defaults, even this shell's own limits, are
# refused with EPERM there)
if command -v podman >/dev/null; then
  cat > "$W/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  PODMAN="env CONTAINERS_CONF=$W/containers.conf podman --root $W/podman/root --runroot $W/podman/run"
  tar -C "$ROOTFS" -c . | $PODMAN import - capulator-bench-rootfs >/dev/null
  $PODMAN run --rm --network none capulator-bench-rootfs /bin/true   # warm-up
  $PODMAN run --rm capulator-bench-rootfs /bin/true                  # warm-up: its default network
fi

ms() { echo $(( ($2 - $1) / 1000000 )); }
: > "$W/t.pod"; : > "$W/t.podbr"
: > "$W/t.cap"; : > "$W/t.capns"; : > "$W/t.bare"; : > "$W/t.plain"; : > "$W/t.d"; : > "$W/t.dns"; : > "$W/t.node"; : > "$W/t.nodeca"; : > "$W/t.dbr"; : > "$W/t.capbr"
for i in $(seq 1 "$REPS"); do
  t0=$(date +%s%N); CAPULATOR_HOME="$W/dhome" "$REPO/bin/capulator" run "$ROOTFS" -- /bin/true; t1=$(date +%s%N)
  ms "$t0" "$t1" >> "$W/t.d"
  t0=$(date +%s%N); CAPULATOR_HOME="$W/dhome" "$REPO/bin/capulator" run --no-store "$ROOTFS" -- /bin/true; t1=$(date +%s%N)
  ms "$t0" "$t1" >> "$W/t.dns"
  t0=$(date +%s%N); CAPULATOR_HOME="$W/dhome" "$REPO/bin/capulator" run --network bridge "$ROOTFS" -- /bin/true; t1=$(date +%s%N)
  ms "$t0" "$t1" >> "$W/t.dbr"
  t0=$(date +%s%N); CAPULATOR_HOME="$W/home" $IN_NS "$REPO/bin/capulator" run --network bridge "$ROOTFS" -- /bin/true; t1=$(date +%s%N)
  ms "$t0" "$t1" >> "$W/t.capbr"
  t0=$(date +%s%N); node -e 0; t1=$(date +%s%N)
  ms "$t0" "$t1" >> "$W/t.node"
  if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then
    t0=$(date +%s%N); env -u NODE_EXTRA_CA_CERTS node -e 0; t1=$(date +%s%N)
    ms "$t0" "$t1" >> "$W/t.nodeca"
  fi
  t0=$(date +%s%N); CAPULATOR_HOME="$W/home" "$REPO/bin/capulator" run "$ROOTFS" -- /bin/true; t1=$(date +%s%N)
  ms "$t0" "$t1" >> "$W/t.cap"
  t0=$(date +%s%N); CAPULATOR_HOME="$W/home" "$REPO/bin/capulator" run --no-store "$ROOTFS" -- /bin/true; t1=$(date +%s%N)
  ms "$t0" "$t1" >> "$W/t.capns"
  t0=$(date +%s%N); run_bare "bare-$$-$i"; t1=$(date +%s%N)
  ms "$t0" "$t1" >> "$W/t.bare"
  t0=$(date +%s%N); runc --root "$RUNC_ROOT" run -b "$W/plain" "plain-$$-$i"; t1=$(date +%s%N)
  ms "$t0" "$t1" >> "$W/t.plain"
  if [ -n "$PODMAN" ]; then
    t0=$(date +%s%N); $PODMAN run --rm --network none capulator-bench-rootfs /bin/true; t1=$(date +%s%N)
    ms "$t0" "$t1" >> "$W/t.pod"
    t0=$(date +%s%N); $PODMAN run --rm capulator-bench-rootfs /bin/true; t1=$(date +%s%N)
    ms "$t0" "$t1" >> "$W/t.podbr"
  fi
done
cap=$(median < "$W/t.cap"); capns=$(median < "$W/t.capns"); bare=$(median < "$W/t.bare"); plain=$(median < "$W/t.plain")
d=$(median < "$W/t.d"); dns=$(median < "$W/t.dns"); nodes=$(median < "$W/t.node"); dbr=$(median < "$W/t.dbr"); capbr=$(median < "$W/t.capbr")
echo "run startup (/bin/true), medians of $REPS runs, ms; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-62s %8s\n' "capulator run (capulator serve running: native client)" "$d"
printf '%-62s %8s\n' "capulator run --no-store (capulator serve running)" "$dns"
printf '%-62s %8s\n' "capulator run --network bridge (capulator serve running)" "$dbr"
printf '%-62s %8s\n' "capulator run (store + events), no daemon: Node CLI" "$cap"
printf '%-62s %8s\n' "capulator run --no-store, no daemon" "$capns"
printf '%-62s %8s\n' "capulator run --network bridge, no daemon" "$capbr"
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then
  # Node loads that file before any code; capulator-run defers it for a run (apps/cli/src/extra-ca.ts)
  printf '%-62s %8s\n' "node -e 0 (Node's own start; NODE_EXTRA_CA_CERTS is set)" "$nodes"
  printf '%-62s %8s\n' "node -e 0 without it (as capulator-run starts Node: the floor)" "$(median < "$W/t.nodeca")"
else
  printf '%-62s %8s\n' "node -e 0 (Node's own start, the cold path's floor)" "$nodes"
fi
printf '%-62s %8s\n' "runc run, same config, bare notify-agent" "$bare"
printf '%-62s %8s\n' "runc run, same config without seccomp listener" "$plain"
if [ -n "$PODMAN" ]; then
  pod=$(median < "$W/t.pod"); podbr=$(median < "$W/t.podbr")
  printf '%-62s %8s\n' "podman run --rm --network none (runc), same rootfs" "$pod"
  printf '%-62s %8s\n' "podman run --rm, its default network" "$podbr"
fi
awk -v d="$d" -v n="$dns" -v b="$bare" 'BEGIN { printf "daemon path/bare runc: %.2fx (no-store %.2fx; target <= 1.5x with --network none)\n", d / b, n / b }'
awk -v d="$d" -v br="$dbr" -v c="$cap" -v cb="$capbr" 'BEGIN { printf "bridge network cost: +%d ms on the daemon path, +%d ms without the daemon\n", br - d, cb - c }'
awk -v c="$cap" -v n="$capns" -v b="$bare" -v p="$plain" 'BEGIN { printf "no daemon/bare runc: %.2fx (no-store %.2fx; target <= 2x); vs runc without listener %.2fx\n", c / b, n / b, c / p }'
if [ -n "$PODMAN" ]; then
  awk -v c="$cap" -v d="$d" -v p="$pod" -v cb="$capbr" -v dbr="$dbr" -v pb="$podbr" 'BEGIN { printf "against podman --network none: no daemon %.2fx (target <= 1x), daemon %.2fx; bridge: no daemon %.2fx, daemon %.2fx of podman default network\n", c / p, d / p, cb / pb, dbr / pb }'
else
  echo "podman rows: not installed (apt-get install podman to compare)"
fi
