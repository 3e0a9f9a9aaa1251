#!/usr/bin/env bash
# The kernel record's price (issue 15 part A), each figure beside its floor from the same run:
#  (a) getppid inside `capulator run` under a policy that needs no seccomp filter (capget/capset
#      not recorded, no argument conditions, no emulation: the kernel record alone) against the same
#      loop natively; beside it, a policy that records capget/capset (the filter, ~every syscall slower).
#  (b) a recorded capability check against the same check unrecorded: sethostname(2) to the current
#      name (one CAP_SYS_ADMIN check) as pid 1 of new pid+UTS namespaces in a cgroup v2 group, with
#      capulator-kernel-record attached to that group (recording), attached to another group (the
#      program runs but filters the check out), and not loaded.
# Usage: bench/kernel-record.sh [N calls, default 200000] [REPS, default 5]   (root; npm run build first)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-200000}
REPS=${2:-5}
BENCH_SRC=${BENCH_SRC:-$REPO/../shared/bench}
W=$(mktemp -d /tmp/capulator-krec-bench.XXXXXX)
CG=/sys/fs/cgroup/unified/capulator-bench-$$
CG2=/sys/fs/cgroup/unified/capulator-bench-other-$$
KREC=$REPO/agent/build/capulator-kernel-record
RUNC_ROOT=$W/runc
kp=""
stats_was=""
cleanup() { for c in $(runc --root "$RUNC_ROOT" list -q 2>/dev/null); do runc --root "$RUNC_ROOT" delete -f "$c" >/dev/null 2>&1 || true; done; [ -n "$stats_was" ] && sysctl -qw kernel.bpf_stats_enabled="$stats_was"; [ -n "$kp" ] && kill "$kp" 2>/dev/null; wait 2>/dev/null || true; rmdir "$CG" "$CG2" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
. "$REPO/bench/lib.sh"   # median

mkdir -p "$W/rootfs/proc" "$W/rootfs/dev" "$W/rootfs/sys" "$W/rootfs/tmp" "$W/home" "$CG" "$CG2"
gcc -O2 -static -o "$W/rootfs/capbench" "$BENCH_SRC/capbench.c"
gcc -O2 -static -o "$W/checkbench" "$REPO/bench/src/checkbench.c"
policy() { printf 'apiVersion: capulator/v1\nkind: Policy\nmetadata: { name: %s }\ndefaults: { action: allow, audit: all }\nrules:\n%s' "$1" "$2" > "$W/$1.yaml"; }
policy kernel-only '  - { id: quiet-capget, when: { syscall: capget }, action: allow, audit: none }
  - { id: quiet-capset, when: { syscall: capset }, action: allow, audit: none }
'
policy records-capget '  []
'
field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p"; }
write_bundles "$W/rootfs" /capbench "$N"   # $W/plain: the same container under plain runc, no filter

# (a)
: > "$W/native"; : > "$W/nofilter"; : > "$W/filter"; : > "$W/plain.out"
for i in $(seq 1 "$REPS"); do
  "$W/rootfs/capbench" "$N" >> "$W/native"
  runc --root "$RUNC_ROOT" run -b "$W/plain" "kbp$$-$i" >> "$W/plain.out"
  CAPULATOR_HOME="$W/home" "$REPO/bin/capulator" run --no-store --id "kb$$-n$i" --policy "$W/kernel-only.yaml" "$W/rootfs" -- /capbench "$N" >> "$W/nofilter"
  CAPULATOR_HOME="$W/home" "$REPO/bin/capulator" run --no-store --id "kb$$-f$i" --policy "$W/records-capget.yaml" "$W/rootfs" -- /capbench "$N" >> "$W/filter"
done
nat=$(field getppid_ns < "$W/native" | median); plain=$(field getppid_ns < "$W/plain.out" | median); nof=$(field getppid_ns < "$W/nofilter" | median); fil=$(field getppid_ns < "$W/filter" | median)

# (b): one process per try, pid 1 of its namespaces (the record starts at that exec), in $CG
in_cg() { sh -c "echo \$\$ > $1/cgroup.procs; exec unshare -u -p -f $W/checkbench $N"; }
: > "$W/none"; : > "$W/other"; : > "$W/rec"; : > "$W/progns"
stats_was=$(sysctl -n kernel.bpf_stats_enabled); sysctl -qw kernel.bpf_stats_enabled=1
for i in $(seq 1 "$REPS"); do
  in_cg "$CG" >> "$W/none"
  "$KREC" serve --cgroup "$CG2" > /dev/null & kp=$!; sleep 0.3
  in_cg "$CG" >> "$W/other"
  kill "$kp"; wait "$kp" || true
  "$KREC" serve --cgroup "$CG" > "$W/rec.lines" & kp=$!; sleep 0.3
  in_cg "$CG" >> "$W/rec"
  # the program's own time per check, measured by the kernel (bpf_stats): immune to the wall-clock
  # noise of a loaded machine, without the consumer's (user-space) share
  bpftool prog show name on_cap --json 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{let a=JSON.parse(s);a=Array.isArray(a)?a:[a];const p=a.sort((x,y)=>(y.run_cnt||0)-(x.run_cnt||0))[0];if(p&&p.run_cnt)console.log(Math.round(p.run_time_ns/p.run_cnt))})' >> "$W/progns"
  kill "$kp"; wait "$kp" || true; kp=""
done
exitline=$(tail -1 "$W/rec.lines")
prog_ns=$(median < "$W/progns")
c_none=$(field check_ns < "$W/none" | median); c_other=$(field check_ns < "$W/other" | median); c_rec=$(field check_ns < "$W/rec" | median)

echo "kernel record: N=$N calls, medians of $REPS runs, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r)"
printf '%-62s %10s\n' "(a) getppid" "ns/call"
printf '%-62s %10s\n' "native (no container) — the floor" "$nat"
printf '%-62s %10s\n' "plain runc, same container, no filter" "$plain"
printf '%-62s %10s\n' "capulator run, kernel-only policy (no seccomp filter)" "$nof"
printf '%-62s %10s\n' "capulator run, policy recording capget/capset (notify filter)" "$fil"
printf '%-62s %10s\n' "(b) sethostname(same name): one CAP_SYS_ADMIN check" "ns/call"
printf '%-62s %10s\n' "no BPF program loaded — the floor" "$c_none"
printf '%-62s %10s\n' "program attached, check in another cgroup (filtered out)" "$c_other"
printf '%-62s %10s\n' "program attached, check recorded (ring buffer, batched)" "$c_rec"
printf '%-62s %10s\n' "the program's own run time per recorded check (bpf_stats)" "$prog_ns"
echo "last recording run's exit line: $exitline"
awk -v a="$nof" -v f="$fil" -v n="$nat" -v pl="$plain" -v r="$c_rec" -v o="$c_other" -v z="$c_none" -v g="$prog_ns" 'BEGIN {
  printf "getppid no-filter/native: %.3fx (target <= 1.05x); plain runc/native %.3fx; with the capget/capset filter: %.3fx\n", a / n, pl / n, f / n;
  printf "recorded check: +%.0f ns wall over unrecorded, %.0f ns in the program itself (target <= 1000 ns); attached but filtered: +%.0f ns\n", r - z, g, o - z }'
