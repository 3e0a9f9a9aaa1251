# Shared by bench/trap-overhead.sh and bench/run-startup.sh (sourced; needs REPO, W, RUNC_ROOT).

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# write_bundles ROOTFS ARG…: OCI configs in $W/bare, $W/plain and $W/allow for ROOTFS running
# ARG…, built by capulator's own code (same namespaces, mounts, no capabilities):
#   bare  : capulator's seccomp filter, its listener the bare agent's socket $W/bare.sock
#   plain : no seccomp filter at all
#   allow : a filter that traps nothing (one ERRNO rule for reboot, allow by default)
write_bundles() {
  mkdir -p "$W/bare" "$W/plain" "$W/allow"
  node -e '
const { buildOciSpec, buildSeccompProfile } = require(process.argv[1] + "/dist/apps/runtime/src/run");
const fs = require("fs");
const [, , w, rootfs, ...args] = process.argv;
const none = { bounding: [], permitted: [], effective: [], inheritable: [], ambient: [] };
const bare = buildOciSpec({ rootfs, args, env: ["PATH=/bin:/usr/bin"], cwd: "/", uid: 0, gid: 0, hostname: "bare",
  capabilities: none, seccomp: buildSeccompProfile(w + "/bare.sock"), mounts: [] });
const plain = JSON.parse(JSON.stringify(bare)); delete plain.linux.seccomp;
const allow = JSON.parse(JSON.stringify(bare));
allow.linux.seccomp = { defaultAction: "SCMP_ACT_ALLOW", architectures: bare.linux.seccomp.architectures, syscalls: [{ names: ["reboot"], action: "SCMP_ACT_ERRNO" }] };
for (const [d, spec] of [["bare", bare], ["plain", plain], ["allow", allow]]) fs.writeFileSync(`${w}/${d}/config.json`, JSON.stringify(spec));
' "$REPO" "$W" "$1" "${@:2}"
}

# run_bare ID: `runc run` of $W/bare with the bare notify agent (shared/bench, SYNC_WAKE=1)
# listening; stdout is the container's. The bare agent exits when a notification is cancelled
# under it (RECV fails with ENOENT: runc init, a Go program, can be interrupted by the Go
# runtime's SIGURG while its execve is trapped), and the exec then fails with ENOSYS; such a try
# is repeated, not counted.
run_bare() {
  local try ap
  for try in 1 2 3; do
    rm -f "$W/bare.sock"
    SYNC_WAKE=1 "$W/notify-agent" "$W/bare.sock" 2>/dev/null & ap=$!
    while [ ! -S "$W/bare.sock" ]; do :; done
    if runc --root "$RUNC_ROOT" run -b "$W/bare" "$1-$try"; then wait $ap || true; return 0; fi
    kill $ap 2>/dev/null; wait $ap || true
    runc --root "$RUNC_ROOT" delete -f "$1-$try" >/dev/null 2>&1 || true
    echo "(bare runc run failed, try $try; repeated)" >&2
  done
  return 1
}
