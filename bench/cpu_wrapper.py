"""Run a command and append its user and system CPU seconds to a file when it exits.

For `bench/pgbench.py --variant NAME=COMMAND`, whose COMMAND gets SIGINT to
detach: GNU time ignores SIGINT while it waits, so it cannot stand in; this
forwards SIGINT and SIGTERM to the command. A wrapper script per tree:

    #!/bin/sh
    exec python3 bench/cpu_wrapper.py /tmp/cpu-new.txt .venv/bin/fsaudit "$@"
"""

import os
import signal
import sys

if len(sys.argv) < 3:
    raise SystemExit("usage: cpu_wrapper.py OUTPUT COMMAND [ARG ...]")
output, argv = sys.argv[1], sys.argv[2:]
child = os.fork()
if child == 0:
    os.execvp(argv[0], argv)
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda number, _frame: os.kill(child, number))
_, status, usage = os.wait4(child, 0)   # PEP 475: retried after a handler ran
with open(output, "a") as out:
    out.write(f"{usage.ru_utime:.2f} {usage.ru_stime:.2f}\n")
sys.exit(os.waitstatus_to_exitcode(status))
