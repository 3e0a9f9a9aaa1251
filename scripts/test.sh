#!/usr/bin/env bash
# Sets up what the tests need and runs all of them: unit, integration (real runc, SQLite,
# registry, Kafka) and end-to-end. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh busybox-static skopeo docker-registry apache2-utils openssl curl libc6-dev gdb tmux openjdk-17-jre-headless maven chromium firefox-esr
exec npm test
