"""fsaudit report EVENTS.jsonl: analyse a recorded event log again, offline."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..eventlog import EventLogError, read_event_log
from . import common
from .common import EXIT_USAGE, fail


def command(
    log: Path = typer.Argument(..., help="An event log written by --events."),
    json_path: Optional[str] = common.JsonOpt, events: Optional[str] = common.EventsOpt,
    sarif: Optional[str] = common.SarifOpt, junit: Optional[str] = common.JunitOpt,
    output: Optional[str] = common.ReportOutputOpt, format: str = common.FormatOpt, fail_on: str = common.FailOnOpt,
    path: List[str] = common.PathOpt, exclude: List[str] = common.ExcludeOpt,
    config: Optional[Path] = common.ConfigOpt,
) -> None:
    """Replay EVENTS.jsonl through the same engine as a live run (no root needed)."""
    options = common.output_options(json_path, events, sarif, junit, output, format, fail_on, path, exclude, config)
    try:
        stream = open(log, encoding="utf-8")
    except OSError as exc:
        raise fail(f"{log}: {exc.strerror}", EXIT_USAGE) from None
    with stream:
        try:
            recorded = read_event_log(stream, lambda message: session.warn(f"{log}: {message}"))
            header = recorded.header
            session = common.start_session(options, "report", {k: v for k, v in header.items() if k != "schema"})
            batch: list[dict] = []
            for event in recorded.events():
                batch.append(event)
                if len(batch) >= 4096:
                    session.feed(batch)
                    batch = []
            session.feed(batch)
        except EventLogError as exc:
            raise fail(f"{log}: {exc}", EXIT_USAGE) from None
        except UnicodeDecodeError as exc:
            raise fail(f"{log}: not UTF-8 text ({exc.reason} at byte {exc.start})", EXIT_USAGE) from None
    if recorded.incomplete:
        session.mark_incomplete(recorded.incomplete)
    # pid and exit are left to the engine: the recorded root process's own events.
    findings_status = session.finish({"argv": header.get("argv", [])})
    raise typer.Exit(findings_status or 0)
