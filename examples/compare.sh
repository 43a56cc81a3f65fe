#!/usr/bin/env bash
# Trace every example (examples.tsv) with `fsaudit run --json` in a fresh
# directory, then print `fsaudit compare` of the reports. Needs root and
# `make -C examples`. Usage: compare.sh [FSAUDIT] [compare options...]
set -euo pipefail
src=$(cd "$(dirname "$0")" && pwd)
build="$src/build"
fsaudit=${1:-"$src/../.venv/bin/fsaudit"}
[[ "$fsaudit" == */* ]] && fsaudit=$(realpath "$fsaudit")   # each example runs in its own directory
shift || true
reports="$build/reports"
rm -rf "$reports"
mkdir -p "$reports"
while IFS=$'\t' read -r name command; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  read -r -a argv <<< "$command"
  argv=("${argv[@]//\{build\}/$build}")
  argv=("${argv[@]//\{src\}/$src}")
  work=$(mktemp -d)
  (cd "$work" && "$fsaudit" run --fail-on never --json "$reports/$name.json" -o /dev/null -- "${argv[@]}" >/dev/null) \
    || { echo "compare: $name failed (see above)" >&2; rm -rf "$work"; exit 1; }
  rm -rf "$work"
done < "$src/examples.tsv"
reports_in_order=()
while IFS=$'\t' read -r name _; do
  [[ -z "$name" || "$name" == \#* ]] || reports_in_order+=("$reports/$name.json")
done < "$src/examples.tsv"
"$fsaudit" compare "$@" "${reports_in_order[@]}"
