#!/usr/bin/env bash
# docs/html-report.png: the page `--html` writes for the demo (examples/demo, what `make demo`
# traces), in Debian's headless Chromium at 1400x900 with the first finding opened
# (#finding-0). The command's stdout goes to /dev/null, out of scope, so that its lane does
# not crowd the picture. Root: it traces.
set -euo pipefail
cd "$(dirname "$0")/.."
page=$(mktemp --suffix=.html)
trap 'rm -f "$page"' EXIT
(cd examples/demo && ../../.venv/bin/fsaudit run --no-live --fail-on never -o /dev/null --html "$page" -- ./save_naive >/dev/null)
# --no-sandbox: Chromium refuses its sandbox as root.
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,900 \
  --screenshot="$PWD/docs/html-report.png" "file://$page#finding-0" 2>/dev/null
echo "docs/html-report.png: $(stat -c %s docs/html-report.png) bytes"
