#!/usr/bin/env bash
# .venv with fsaudit installed (editable: the package data, probes and rule pages, is read from the
# checkout) and Debian's system bcc made importable, deliberately: only the
# bcc package directory is linked, not all of dist-packages.
set -euo pipefail
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
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
