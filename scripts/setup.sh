#!/usr/bin/env bash
# Sets up everything capulator needs on Debian 12 (as root): system packages, npm
# dependencies, the build (TypeScript and the native agent). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for p in runc libseccomp-dev pkg-config gcc make python3 g++ iproute2 zstd clang libbpf-dev bpftool; do
  have "$p" || need_pkgs+=("$p")
done
for p in "$@"; do have "$p" || need_pkgs+=("$p"); done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "setup: installing ${need_pkgs[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# better-sqlite3 builds from source here (node-gyp against the local Node headers).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "setup: build" >&2
npm run -s build
echo "setup: done ($(./bin/capulator --version))" >&2
