"""FS401: bytes a user-space buffer accepted that never reached the kernel."""

from __future__ import annotations

from .base import Rule, nbytes


class BufferedDataLost(Rule):
    code, name, severity = "FS401", "buffered-data-lost", "warning"
    summary = ("bytes accepted by a user-space buffer (libc stdio) never reached write(): "
               "the process died by a signal or _exit while they were buffered")
    fix = ("flush the stream (fflush, or fclose) at each record boundary that must survive, and before "
           "_exit; handle SIGTERM/SIGINT by flushing and exiting normally")
    syscalls = frozenset({"stdio_lost"})

    def on_event(self, engine, event):
        path = event.get("path")
        if event.get("kind") != "file" or not engine.in_scope(path):
            return
        engine.report(self.code, event, path,
                      f"{engine.process_label(event['pid'], event)} ended with {nbytes(event['bytes'])} for {path} "
                      f"still in a stdio buffer: they never reached write()",
                      [event])


RULES = [BufferedDataLost()]
