#!/bin/sh
# One more line in f, committed, then "committed two" on stdout: run in a git
# repository whose last commit is "one" (tests/test_crash.py makes one).
echo two >> f && git add f && git commit -qm two && echo "committed two"
