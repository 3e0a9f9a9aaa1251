#!/usr/bin/env bash
# Sets up capulator and runs its main job on the embedded default store: a real Linux binary
# (Debian's ping) from an OCI image, under a sample policy, with the decisions shown.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CAPULATOR_HOME="${CAPULATOR_HOME:-$PWD/.capulator}"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

# A small image made from Debian packages (busybox-static, iputils-ping, libcap2-bin).
bash test/fixtures/images/build.sh >/dev/null
say ./bin/capulator image import test/.work/images/busybox-ping.oci.tar --tag demo/ping
./bin/capulator image import test/.work/images/busybox-ping.oci.tar --tag demo/ping

say ./bin/capulator policy caps examples/policies/ping.yaml --uid 0
./bin/capulator policy caps examples/policies/ping.yaml --uid 0

ok_id="ping-ok-$(date +%s)"; no_id="ping-denied-$(date +%s)"
say ./bin/capulator run --id "$ok_id" --policy examples/policies/ping.yaml demo/ping -- ping -c1 127.0.0.1
./bin/capulator run --id "$ok_id" --policy examples/policies/ping.yaml demo/ping -- ping -c1 127.0.0.1

say ./bin/capulator run --id "$no_id" --policy examples/policies/deny-all.yaml demo/ping -- ping -c1 127.0.0.1
./bin/capulator run --id "$no_id" --policy examples/policies/deny-all.yaml demo/ping -- ping -c1 127.0.0.1 || echo "(exit $?: ping's own error, the raw socket was denied)"

say ./bin/capulator audit log --run "$ok_id" --privilege PRIV_NETINET_RAW
./bin/capulator audit log --run "$ok_id" --privilege PRIV_NETINET_RAW
say ./bin/capulator audit log --run "$no_id" --decision deny
./bin/capulator audit log --run "$no_id" --decision deny

say ./bin/capulator audit replay --policy examples/policies/deny-all.yaml --run "$ok_id"
./bin/capulator audit replay --policy examples/policies/deny-all.yaml --run "$ok_id" || echo "(exit $?: this policy would deny what the run was allowed to do)"
echo
echo "State is in $CAPULATOR_HOME. Try: ./bin/capulator --help"
