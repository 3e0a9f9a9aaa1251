#!/usr/bin/env bash
# Pull throughput: `capulator image pull` against `skopeo copy docker://… oci:…` of the same
# image from the same local registry (Debian's docker-registry on 127.0.0.1), same run.
# The image has one layer of random (incompressible) bytes. MB/s = compressed layer bytes /
# wall-clock seconds of the whole command; median of REPS runs each, every run into an empty
# store / an empty OCI dir. capulator's time includes verifying and unpacking into the store;
# skopeo's includes writing the blobs into the OCI layout (it does not unpack).
# Usage: bench/pull.bench.sh [SIZE_MB, default 150] [REPS, default 3]     (npm run build first)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MB=${1:-150}
REPS=${2:-3}
W=$(mktemp -d /tmp/capulator-pull-bench.XXXXXX)
REG_PID=
cleanup() { [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
for t in docker-registry skopeo node; do command -v "$t" >/dev/null || { echo "pull.bench: $t not installed (bash scripts/test.sh installs it)" >&2; exit 1; }; done
[ -f "$REPO/dist/test/fixtures/registry/index.js" ] || { echo "pull.bench: not built (npm run build)" >&2; exit 1; }

# 1. A registry on a free port, storage in the work dir.
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
HOST=127.0.0.1:$PORT
cat > "$W/registry.yml" <<YAML
version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $W/storage } }
http: { addr: $HOST }
YAML
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do curl -fs "http://$HOST/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "http://$HOST/v2/" >/dev/null || { echo "pull.bench: registry did not start: $(cat "$W/registry.log")" >&2; exit 1; }

# 2. The image: one gzip layer of SIZE_MB random bytes (OCI layout built by the test fixture code).
node -e '
  const r = require(process.argv[1]);
  const { randomBytes } = require("crypto");
  const img = r.addImage(process.argv[2], { architecture: "amd64", compression: "gzip", layers: [{ "data/random.bin": randomBytes(Number(process.argv[3]) << 20) }] });
  r.tagInLayout(process.argv[2], "big", [img]);
' "$REPO/dist/test/fixtures/registry/index.js" "$W/layout" "$SIZE_MB"
skopeo copy --quiet --dest-tls-verify=false "oci:$W/layout:big" "docker://$HOST/bench/big:1"
BYTES=$(find "$W/storage" -path '*/blobs/sha256/*/data' -size +1M -printf '%s\n' | sort -n | tail -1)

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mbps() { awk -v b="$BYTES" -v s="$1" 'BEGIN {printf "%.1f", b/1048576/s}'; }

# Download + verify phase only (first byte requested → digest verified), from pullImage's progress events.
phase() {
  node -e '
    const { pullImage } = require(process.argv[1] + "/dist/apps/runtime/src/registry");
    const { ImageStore } = require(process.argv[1] + "/dist/apps/runtime/src/images");
    let t0 = 0, t1 = 0;
    pullImage(new ImageStore(process.argv[2] + "/images"), process.argv[3], { stagingDir: process.argv[2] + "/staging", dockerConfig: process.argv[2] + "/nocfg",
      onProgress: (e) => { if (e.kind === "layer" && e.state === "downloading" && !t0) t0 = performance.now(); if (e.kind === "layer" && e.state === "storing" && !t1) t1 = performance.now(); } })
      .then(() => console.log(((t1 - t0) / 1000).toFixed(4)), (e) => { console.error(e.message); process.exit(1); });
  ' "$REPO" "$1" "$2"
}

cap_times=()
sko_times=()
dl_times=()
for i in $(seq "$REPS"); do
  rm -rf "$W/home" "$W/oci"
  t0=$(now)
  CAPULATOR_HOME="$W/home" DOCKER_CONFIG="$W/nocfg" "$REPO/bin/capulator" image pull "$HOST/bench/big:1" >/dev/null 2>"$W/cap.err" \
    || { echo "pull.bench: capulator image pull failed: $(cat "$W/cap.err")" >&2; exit 1; }
  t1=$(now)
  skopeo copy --quiet --src-tls-verify=false "docker://$HOST/bench/big:1" "oci:$W/oci:big"
  t2=$(now)
  rm -rf "$W/home2"
  dl_times+=("$(phase "$W/home2" "$HOST/bench/big:1")")
  cap_times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b-a}')")
  sko_times+=("$(awk -v a="$t1" -v b="$t2" 'BEGIN {print b-a}')")
done
CAP=$(printf '%s\n' "${cap_times[@]}" | median)
SKO=$(printf '%s\n' "${sko_times[@]}" | median)
DL=$(printf '%s\n' "${dl_times[@]}" | median)
printf 'image: %s, one layer of %s bytes (gzip of %s MB random)\n' "$HOST/bench/big:1" "$BYTES" "$SIZE_MB"
printf 'capulator image pull   median %6.2f s  %7s MB/s   runs: %s\n' "$CAP" "$(mbps "$CAP")" "${cap_times[*]}"
printf '  of which download+verify median %6.2f s  %7s MB/s   runs: %s  (the rest: unpacking into the store, start-up)\n' "$DL" "$(mbps "$DL")" "${dl_times[*]}"
printf 'skopeo copy → oci:     median %6.2f s  %7s MB/s   runs: %s\n' "$SKO" "$(mbps "$SKO")" "${sko_times[*]}"
