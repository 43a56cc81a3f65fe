#!/bin/sh
# Checker for git_commit.sh: the repository is sound (git fsck), and holds
# commit "two" once it was acknowledged. Usage: check_git.sh STATE_DIR ACKED_FILE.
cd "$1" || exit 1
if ! git fsck --no-progress >/dev/null 2>&1; then
    echo "git fsck fails:"
    git fsck --no-progress 2>&1 | head -3
    exit 1
fi
if grep -q "committed two" "$2" && ! git log --format=%s | grep -qx two; then
    echo "commit two was acknowledged and is gone"
    exit 1
fi
exit 0
