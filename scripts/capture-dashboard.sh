#!/usr/bin/env bash
# Print the final screen of `fsaudit run` with its live dashboard on
# examples/demo, as text: a 110x36 tmux pane on a tmux server of our own,
# captured once fsaudit has exited (make dashboard-capture > docs/dashboard.txt).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'tmux -S "$work/tmux.sock" kill-server 2>/dev/null || true; rm -rf "$work"' EXIT
echo 'set -g remain-on-exit on' > "$work/tmux.conf"
tmux -S "$work/tmux.sock" -f "$work/tmux.conf" new-session -d -x 110 -y 36 -s demo \
  "cd '$root/examples/demo' && '$root/.venv/bin/fsaudit' run --fail-on never -- ./save_naive"
until [ "$(tmux -S "$work/tmux.sock" display-message -p -t demo '#{pane_dead}')" = 1 ]; do sleep 0.2; done
# The whole pane, scrolled-off lines included and wrapped lines joined,
# without tmux's own last line and the blank lines before it.
tmux -S "$work/tmux.sock" capture-pane -p -J -S - -t demo | sed -e '/^Pane is dead/d' -e 's/ *$//' |
  awk 'NF { for (; blank > 0; blank--) print ""; print; next } { blank++ }'
