"""FS901-FS902: what the tracer could not see."""

from __future__ import annotations

from .base import Rule, succeeded


class UntracedIO(Rule):
    code, name, severity = "FS901", "untraced-io", "warning"
    summary = "io_uring or Linux AIO was used: those operations are not seen, the report is incomplete"
    fix = "audit a build that uses plain write/fsync, or check the io_uring/AIO path's fsync handling by hand"
    syscalls = frozenset({"io_uring_setup", "io_setup", "io_submit"})

    def on_event(self, engine, event):
        if not succeeded(event):
            return   # refused (io_uring disabled, bad arguments): no I/O went that way
        mechanism = "io_uring" if event["syscall"] == "io_uring_setup" else "Linux AIO"
        engine.report(self.code, event, None,
                      f"{engine.process_label(event['pid'], event)} used {mechanism} ({event['syscall']}): "
                      f"its file I/O is not traced",
                      [event])


class EventsLost(Rule):
    code, name, severity = "FS902", "events-lost", "error"
    summary = "the tracer lost events: the report is incomplete"
    fix = "rerun on a quieter host or trace a smaller part of the program: dropped events may hide findings"

    def on_finish(self, engine):
        lost = engine.counts.lost_events
        if lost > 0:
            engine.report(self.code, None, None,
                          f"the tracer lost {lost} events while tracing {engine.process_label(engine.root_pid or 0)}: "
                          f"this report is incomplete", [])


RULES = [UntracedIO(), EventsLost()]
