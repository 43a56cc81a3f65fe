#!/usr/bin/env bash
# .venv with fsaudit installed (editable: the package data, probes and rule pages, is read from the
# checkout) and Debian's system bcc made importable, deliberately: only the
# bcc package directory is linked, not all of dist-packages.
set -euo pipefail
# Debian's interpreter where there is one: the one python3-bpfcc is built for and the README's
# install uses. A pyenv or source build first on PATH is often built without PGO/LTO, and
# fsaudit's analysis then costs up to a quarter more CPU per event (bench/README.md).
default=python3
[ -x /usr/bin/python3 ] && default=/usr/bin/python3
python=${PYTHON:-$default}
chosen=$("$python" -c 'import sys; print(sys.executable)')
if [ -x .venv/bin/python ] && [ "$(cat .venv/.python 2>/dev/null)" != "$chosen" ]; then
  rm -rf .venv     # made by another interpreter (or before this stamp): made again
fi
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
  echo "$chosen" > .venv/.python
fi
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
ln -sfn /usr/lib/python3/dist-packages/bcc "$site/bcc"
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
  touch "$stamp"
fi
# Bytecode for the editable checkout: where PYTHONDONTWRITEBYTECODE is set (this
# VM), every start would otherwise compile fsaudit's modules again (~0.25 s).
.venv/bin/python -m compileall -q fsaudit pytest_fsaudit > /dev/null
.venv/bin/python -c 'import bcc, fsaudit'
