"""One analysis: events in (live or replayed), event log and reports out.

run, attach and report all go through here, so a replayed log gives the
same findings as the live run that recorded it.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import __version__
from .config import load_config
from .engine import Engine
from .events import EventLogWriter
from .inject import InjectionError, parse_injection
from .printable import printable
from .report import build_report, exit_status, render_junit, render_sarif, render_text

SEVERITIES = ("error", "warning", "info", "never")


@dataclass
class OutputOptions:
    json_path: Path | None = None
    events_path: Path | None = None
    sarif_path: Path | None = None
    junit_path: Path | None = None
    format: str = "text"
    fail_on: str = "error"
    paths: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    config_path: Path | None = None


class Session:
    def __init__(self, options: OutputOptions, mode: str, header: dict) -> None:
        self.options = options
        self.mode = mode
        self.header = header
        self.config = load_config(options.config_path, options.paths, options.excludes)
        self.engine = Engine(self.config)
        self.started_at = datetime.now(timezone.utc)
        self.started = time.monotonic()
        self._event_file = open(options.events_path, "w", encoding="ascii") if options.events_path else None
        self._log = EventLogWriter(self._event_file, {"mode": mode, **header}) if self._event_file else None
        # What the report must say besides findings: things fsaudit could not
        # see or do (warnings), and why the report may miss events (incomplete).
        self.warnings: list[str] = []
        self.incomplete_reasons: list[str] = []
        for message in self.config.warnings:      # config files found but not applied
            self.warn(message)

    def warn(self, message: str, now: bool = True) -> None:
        """A warning for the summary and the report; now: also one line on stderr at once
        (not while the dashboard has the screen)."""
        self.warnings.append(message)
        if now:
            sys.stderr.write(f"fsaudit: warning: {printable(message)}\n")
            sys.stderr.flush()

    def mark_incomplete(self, reason: str) -> None:
        """The report will say complete: false, with this reason."""
        self.incomplete_reasons.append(reason)

    def feed(self, events: list[dict]) -> None:
        feed = self.engine.feed
        log = self._log
        for event in events:
            if log:
                log.write(event)
            feed(event)

    def finish(self, target: dict, duration_s: float | None = None) -> int | None:
        """Close the analysis, write every requested output; return the findings' exit status or None."""
        if self._event_file:
            self._event_file.close()
        exit_info = target.get("exit") or {}
        self.engine.finish(exit_info if exit_info else None)
        if self.header.get("inject"):
            target = {**target, "injections": [_injection_outcome(spec, self.engine.injections_fired.get(spec, 0))
                                               for spec in self.header["inject"]]}
        if duration_s is None:
            duration_s = round(time.monotonic() - self.started, 3)
        report = build_report(self.engine, mode=self.mode, target=target,
                              started_at=self.started_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                              duration_s=duration_s, tool_version=__version__,
                              warnings=self.warnings, incomplete=self.incomplete_reasons)
        opts = self.options
        if opts.json_path:
            with opts.json_path.open("w") as out:
                _write_json(report, out)
        if opts.sarif_path:
            with opts.sarif_path.open("w") as out:
                _write_json(render_sarif(report), out)
        if opts.junit_path:
            opts.junit_path.write_text(render_junit(report, opts.fail_on))
        if opts.format == "json":
            _write_json(report, sys.stdout)
        else:
            sys.stdout.write(render_text(report))
        sys.stdout.flush()
        return exit_status(report, opts.fail_on)


def _write_json(document: dict, stream) -> None:
    """One top-level key per line and each item of a list on its own line, every
    piece from json's C encoder and streamed: indent= switches to the pure-Python
    encoder, 2.6 s for a report that lists 150 000 files (this: 1.1 s)."""
    stream.write("{")
    for n, (key, value) in enumerate(document.items()):
        stream.write(f"{',' if n else ''}\n  {json.dumps(key)}: ")
        if isinstance(value, list) and value:
            for i, item in enumerate(value):
                stream.write(f"{',' if i else '['}\n    {json.dumps(item)}")
            stream.write("\n  ]")
        else:
            stream.write(json.dumps(value))
    stream.write("\n}\n")


def _injection_outcome(spec: str, fired: int) -> dict:
    try:
        described = parse_injection(spec).describe()
    except InjectionError:      # a hand-edited log header: keep what it says
        described = {"spec": spec}
    return {**described, "fired": fired}
