#!/bin/sh
# A new repository's first commit, as a user types it, in DIR (which holds a.txt
# and b.txt). Usage: git_session.sh DIR; the global configuration is $GIT_CONFIG_GLOBAL.
set -eu
cd "$1"
git init -q -b main
git config user.name "A U Thor"
git config user.email author@example.org
git add a.txt b.txt
git commit -q -m "first commit"
