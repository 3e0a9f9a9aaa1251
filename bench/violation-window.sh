#!/usr/bin/env bash
# How long a program runs on after a violation (a capability the kernel granted that the policy
# denies): `capulator run` under deny-all of a program that makes a user and a UTS namespace
# (CAP_SYS_ADMIN granted inside them) and then writes the milliseconds since into a file until it
# is killed. The kernel record sees the check; the runtime judges it and kills the container.
# (Before the reader was woken for such a check and the group killed with cgroup.kill, the runtime
# saw it at the reader's next 20 ms drain and killed through runc: 25.8-30.1 ms in three runs.)
# Usage: bench/violation-window.sh [REPS, default 9]   (root; npm run build first)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
REPS=${1:-9}
W=$(mktemp -d /tmp/capulator-window-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
. "$REPO/bench/lib.sh"   # median
mkdir -p "$W/rootfs/proc" "$W/rootfs/dev" "$W/rootfs/sys" "$W/rootfs/tmp" "$W/out" "$W/home"
gcc -O2 -static -pthread -o "$W/rootfs/krec-probe" "$REPO/test/fixtures/kernel/krec-probe.c"
printf 'apiVersion: capulator/v1\nkind: Policy\nmetadata: { name: deny-all }\ndefaults: { action: deny, audit: all }\nrules: []\n' > "$W/deny.yaml"
: > "$W/windows"
for i in $(seq 1 "$REPS"); do
  rm -f "$W/out/w"
  st=0; CAPULATOR_HOME="$W/home" "$REPO/bin/capulator" run --no-store --policy "$W/deny.yaml" -v "$W/out:/out" "$W/rootfs" -- /krec-probe window /out/w 2>/dev/null || st=$?
  [ "$st" = 125 ] || { echo "run $i: exit $st, not stopped for the violation" >&2; exit 1; }
  cat "$W/out/w" >> "$W/windows"
done
sort -n "$W/windows" | awk -v reps="$REPS" -v med="$(median < "$W/windows")" 'NR==1{min=$1} {max=$1} END {
  printf "violation window: %d runs, ms from the namespaces to the last write before the kill\n", reps;
  printf "  min %.3f  median %.3f  max %.3f\n", min, med, max }'
