#!/usr/bin/env bash
# What tracing needs, idempotent: Debian's bcc, kernel headers linked where
# bcc looks for them, tracefs, and a C compiler for the demo. The tests' and
# examples' toolchains are scripts/setup-test-tools.sh (make test, make compare).
set -euo pipefail
source "$(dirname "$0")/apt-install-missing.sh"
install_missing bpfcc-tools python3-bpfcc linux-headers-amd64 gcc make python3-venv
# The running kernel usually has no headers package: bcc only needs some
# kernel's headers because the probes read no kernel struct fields.
release=$(uname -r)
if [ ! -e "/lib/modules/$release/build/include" ]; then
  headers=$(ls -d /usr/src/linux-headers-*-amd64 | sort -V | tail -n 1)
  common=$(ls -d /usr/src/linux-headers-*-common | sort -V | tail -n 1)
  mkdir -p "/lib/modules/$release"
  ln -sfn "$headers" "/lib/modules/$release/build"
  ln -sfn "$common" "/lib/modules/$release/source"
  echo "setup: linked $headers as /lib/modules/$release/build"
fi
if [ ! -d /sys/kernel/tracing/events ]; then
  mount -t tracefs nodev /sys/kernel/tracing
  echo "setup: mounted tracefs"
fi
