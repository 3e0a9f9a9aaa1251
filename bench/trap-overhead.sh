#!/usr/bin/env bash
# Per-trapped-call overhead of capulator's agent against the floor: the bare notify agent
# (shared/bench/notify-agent.c with SYNC_WAKE=1) on the same bundle, in the same run.
#   capget  : trapped; capulator decides from the compiled table and records an event per call
#   getppid : never trapped; inside capulator vs outside any container
# Usage: bench/trap-overhead.sh [N calls, default 100000] [REPS, default 3]   (root; npm run build first)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-100000}
REPS=${2:-3}
BENCH_SRC=${BENCH_SRC:-$REPO/../shared/bench}  # the bare agent and capbench.c from shared/
W=$(mktemp -d /tmp/capulator-trap-bench.XXXXXX)
RUNC_ROOT=$W/runc
cleanup() { for c in $(runc --root "$RUNC_ROOT" list -q 2>/dev/null); do runc --root "$RUNC_ROOT" delete -f "$c" >/dev/null 2>&1 || true; done; rm -rf "$W"; }
trap cleanup EXIT

mkdir -p "$W/rootfs/proc" "$W/rootfs/dev" "$W/rootfs/sys" "$W/rootfs/tmp" "$W/home"
gcc -O2 -static -o "$W/rootfs/capbench" "$BENCH_SRC/capbench.c" 2>/dev/null
gcc -O2 -o "$W/notify-agent" "$BENCH_SRC/notify-agent.c" -lseccomp
cat > "$W/policy.yaml" <<'YAML'
apiVersion: capulator/v1
kind: Policy
metadata: { name: bench-capget, description: capget audited and allowed }
defaults: { action: deny, audit: all }
rules:
  - id: capget-allowed
    when: { syscall: capget }
    action: allow
YAML
# shared: write_bundles (the bare, plain and allow bundles), run_bare, median
. "$REPO/bench/lib.sh"
write_bundles "$W/rootfs" /capbench "$N"

field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p"; }
: > "$W/native"; : > "$W/bare.out"; : > "$W/cap.out"; : > "$W/capns.out"; : > "$W/plain.out"; : > "$W/allow.out"
for i in $(seq 1 "$REPS"); do
  "$W/rootfs/capbench" "$N" >> "$W/native"
  runc --root "$RUNC_ROOT" run -b "$W/plain" "plain-$$-$i" >> "$W/plain.out"
  runc --root "$RUNC_ROOT" run -b "$W/allow" "allow-$$-$i" >> "$W/allow.out"
  run_bare "bare-$$-$i" >> "$W/bare.out"
  CAPULATOR_HOME="$W/home" "$REPO/bin/capulator" run --id "b$$-$i" --policy "$W/policy.yaml" "$W/rootfs" -- /capbench "$N" >> "$W/cap.out"
  CAPULATOR_HOME="$W/home" "$REPO/bin/capulator" run --no-store --id "n$$-$i" --policy "$W/policy.yaml" "$W/rootfs" -- /capbench "$N" >> "$W/capns.out"
done
nat_cap=$(field capget_ns < "$W/native" | median); nat_pp=$(field getppid_ns < "$W/native" | median)
plain_pp=$(field getppid_ns < "$W/plain.out" | median); allow_pp=$(field getppid_ns < "$W/allow.out" | median)
bare_cap=$(field capget_ns < "$W/bare.out" | median); bare_pp=$(field getppid_ns < "$W/bare.out" | median)
cap_cap=$(field capget_ns < "$W/cap.out" | median); cap_pp=$(field getppid_ns < "$W/cap.out" | median)
ns_cap=$(field capget_ns < "$W/capns.out" | median); ns_pp=$(field getppid_ns < "$W/capns.out" | median)
echo "trap overhead: N=$N calls, medians of $REPS runs, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-44s %12s %12s\n' "" "capget ns" "getppid ns"
printf '%-44s %12s %12s\n' "native (no container)" "$nat_cap" "$nat_pp"
printf '%-44s %12s %12s\n' "runc, no seccomp filter" "-" "$plain_pp"
printf '%-44s %12s %12s\n' "runc, filter that traps nothing" "-" "$allow_pp"
printf '%-44s %12s %12s\n' "runc + bare notify-agent (SYNC_WAKE=1)" "$bare_cap" "$bare_pp"
printf '%-44s %12s %12s\n' "capulator run (events → runtime + SQLite)" "$cap_cap" "$cap_pp"
printf '%-44s %12s %12s\n' "capulator run --no-store (events → runtime)" "$ns_cap" "$ns_pp"
awk -v c="$cap_cap" -v n="$ns_cap" -v b="$bare_cap" -v p="$cap_pp" -v q="$nat_pp" -v r="$plain_pp" -v a="$allow_pp" 'BEGIN {
  printf "capget ratio capulator/bare: %.2fx (no-store %.2fx; target <= 1.3x)\n", c / b, n / b;
  printf "getppid capulator/native: %.2fx (target within 10%%); no filter/native %.2fx; any filter (traps nothing)/native %.2fx; capulator/that floor %.2fx\n", p / q, r / q, a / q, p / a }'
# the same ratio run by run (each capulator run against the bare run just before it, as the rows
# alternate): on a shared VM whose speed drifts between runs, the pairs' median is the steadier figure
pairs() { paste <(field capget_ns < "$W/bare.out") <(field capget_ns < "$1") | awk '{printf "%.3f\n", $2 / $1}'; }
spread() { sort -n | awk '{a[NR]=$1} END {printf "%.2fx (%.2f-%.2f)", (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2, a[1], a[NR]}'; }
echo "capget ratio run by run, median (min-max) of $REPS pairs: $(pairs "$W/cap.out" | spread), no-store $(pairs "$W/capns.out" | spread)"
