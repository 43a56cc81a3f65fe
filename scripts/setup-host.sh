#!/usr/bin/env bash
# Host prerequisites for tracing, idempotent: Debian's bcc, kernel headers
# linked where bcc looks for them, tracefs, and the test programs' and examples'
# toolchains.
set -euo pipefail
packages=(bpfcc-tools python3-bpfcc linux-headers-amd64 strace tmux gcc make python3-venv time)
# The examples' runtimes (examples/, make compare, tests/test_runtimes.py):
# Go 1.19, C# on Mono, from Debian.
packages+=(golang-go mono-mcs mono-runtime)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Java, Node.js and Rust may come from elsewhere (a JDK, NodeSource, rustup):
# Debian's packages only where the command is missing.
command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
command -v node >/dev/null || missing+=(nodejs)
command -v rustc >/dev/null || missing+=(rustc)
# The HTML report's browser tests (tests/test_html.py) load its pages in headless Chromium.
command -v chromium >/dev/null || missing+=(chromium)
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
