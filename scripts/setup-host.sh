#!/usr/bin/env bash
# Host prerequisites for tracing, idempotent: Debian's bcc, kernel headers
# linked where bcc looks for them, tracefs, and the test programs' toolchains.
set -euo pipefail
packages=(bpfcc-tools python3-bpfcc linux-headers-amd64 strace tmux gcc make python3-venv time)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi
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
