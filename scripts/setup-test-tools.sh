#!/usr/bin/env bash
# What the tests, the examples and the benchmarks trace or drive, idempotent
# (make test, make compare, make bench); tracing itself needs only setup-host.sh.
set -euo pipefail
source "$(dirname "$0")/apt-install-missing.sh"
# strace for ground truth and the benchmark's comparison, tmux for the dashboard
# tests, GNU time for the benchmarks, pipx for the README's install (tests/test_install.py).
packages=(strace tmux time pipx)
# The examples' runtimes (examples/, make compare, tests/test_runtimes.py):
# Go 1.19, C# on Mono, from Debian.
packages+=(golang-go mono-mcs mono-runtime)
# The real programs tests/real/ traces (runuser is util-linux, always there;
# pip, setuptools and wheel build the wheel the pip case installs). Their own
# services may start on install; the tests use private sockets and no TCP.
packages+=(sqlite3 postgresql redis-server redis-tools git python3-pip python3-setuptools python3-wheel)
# Java, Node.js and Rust may come from elsewhere (a JDK, NodeSource, rustup):
# Debian's packages only where the command is missing.
command -v javac >/dev/null || packages+=(openjdk-17-jdk-headless)
command -v node >/dev/null || packages+=(nodejs)
command -v rustc >/dev/null || packages+=(rustc)
# The HTML report's browser tests (tests/test_html.py) load its pages in headless Chromium.
command -v chromium >/dev/null || packages+=(chromium)
install_missing "${packages[@]}"
