"""One analysis: events in (live or replayed), event log and reports out.

run, attach and report all go through here, so a replayed log gives the
same findings as the live run that recorded it.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import __version__
from .analysis.config import REPOSITORY_MARKERS, load_config
from .analysis.engine import Engine
from .analysis.timeline import Timeline
from .eventlog import EventLogWriter
from .tracing.inject import InjectionError, parse_injection
from .outputs.outputfile import Output, OutputError, StandardStream, open_outputs
from .outputs.printable import printable
from .outputs.registry import FILE_OPTIONS, FORMATS, summary_format, write
from .outputs.report import build_report, exit_status

SEVERITIES = ("error", "warning", "info", "never")
EXIT_OUTPUT_FAILED = 2     # an output could not be written (the others were)


@dataclass
class OutputOptions:
    """Where each output goes: a path, "-" for stdout, or None (not written;
    the summary: stderr for run and attach, whose stdout is the command's,
    stdout for report). files: a format of outputs.registry by name -> its path."""
    events_path: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    summary_path: str | None = None
    format: str = "text"
    statistics: bool = False      # the summary counts findings per rule and group instead
    fail_on: str = "error"
    paths: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    config_path: Path | None = None
    include: list[str] = field(default_factory=list)    # --include: roles left out by default, brought back
    # The checkout that SARIF and GitHub annotations name files relative to; None: the
    # repository that holds the current directory, else the current directory.
    source_root: str | None = None


class Session:
    def __init__(self, options: OutputOptions, mode: str, header: dict) -> None:
        self.options = options
        self.mode = mode
        self.header = header
        self.config = load_config(options.config_path, options.paths, options.excludes)
        self.config.include_roles = frozenset(options.include)
        self.engine = Engine(self.config, header=header)
        # Collected only for a format that draws it (--html): measured on this 2-core VM at
        # 4 µs an event for writes to one file, 8 µs for 100 000 files written and renamed
        # (the engine: 4 and 16 µs).
        self.timeline = Timeline(self.engine.in_scope, lambda: self.engine.findings) \
            if any(FORMATS[name].timeline for name in options.files) else None
        self.started_at = datetime.now(timezone.utc)
        self.started = time.monotonic()
        self.source_root = os.path.abspath(options.source_root) if options.source_root else _repository_root()
        # Opened before anything is traced: a path that cannot be written
        # stops fsaudit before the command starts (OutputError).
        requested = {"--events": options.events_path,
                     **{FORMATS[name].option: path for name, path in options.files.items()},
                     "-o": options.summary_path}
        self._outputs: dict[str, Output] = open_outputs(
            {option: path for option, path in requested.items() if path is not None},
            stdout_taken_by="the summary" if mode == "report" else None)
        if "-o" not in self._outputs:
            default = ("stdout", sys.stdout) if mode == "report" else ("stderr", sys.stderr)
            self._outputs["-o"] = StandardStream(*default)
        self._log = EventLogWriter(self._outputs["--events"].stream, {"mode": mode, **header}) \
            if "--events" in self._outputs else None
        self._log_failure: OSError | None = None
        # What the report must say besides findings: things fsaudit could not
        # see or do (warnings), and why the report may miss events (incomplete).
        self.warnings: list[str] = []
        self.incomplete_reasons: list[str] = []
        for message in self.config.warnings:      # config files found but not applied
            self.warn(message)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, kind, _exc, _tb) -> None:
        if kind is not None:
            self.abandon()

    def abandon(self) -> None:
        """Give up without writing anything: the files opened for the outputs
        are closed and their temporary files removed. The command line exits
        anyway; a library caller (a pytest session) would keep two descriptors
        per failed call otherwise."""
        for output in self._outputs.values():
            if not isinstance(output, StandardStream):
                output.discard()
        self._outputs.clear()

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
        if self.timeline is None and self._log is None:   # the engine alone: its own loop
            self.engine.feed_all(events)
            return
        feed = self.engine.feed
        draw = self.timeline.feed if self.timeline else None
        log = self._log
        for event in events:
            if log:
                try:
                    log.write(event)
                except OSError as exc:     # the analysis goes on; finish() reports the log lost
                    self._log_failure, log, self._log = exc, None, None
            feed(event)
            if draw:
                draw(event)

    def finish(self, target: dict, duration_s: float | None = None) -> int | None:
        """Close the analysis and write every requested output; return the exit
        status it calls for: EXIT_OUTPUT_FAILED when an output could not be
        written, else the findings' status or None."""
        failures: list[str] = []
        events = self._outputs.pop("--events", None)
        if events:
            if self._log_failure is None:
                failure = _write(events, lambda _stream: self._log.finish())
            else:
                events.discard()
                failure = str(events.error(self._log_failure))
            if failure:
                failures.append(failure)
                self.warn(f"the event log was not written: {failure}", now=False)
        exit_info = target.get("exit") or {}
        cwd = _cwd()
        self.engine.finish(exit_info if exit_info else None, cwd)
        for glob in self.engine.scope.unmatched():
            relative = "" if glob.startswith("/") else f" (relative to {glob.base})"
            self.warn(f"--path {glob!r} matched nothing in this run{relative}")
        if self.header.get("inject"):
            target = {**target, "injections": [_injection_outcome(spec, self.engine.injections_fired.get(spec, 0))
                                               for spec in self.header["inject"]]}
        if duration_s is None:
            duration_s = round(time.monotonic() - self.started, 3)
        report = build_report(self.engine, mode=self.mode, target=target,
                              started_at=self.started_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                              duration_s=duration_s, tool_version=__version__,
                              warnings=self.warnings, incomplete=self.incomplete_reasons, cwd=cwd,
                              source_root=self.source_root,
                              timeline=self.timeline.digest() if self.timeline else None)
        opts = self.options
        for option, output in self._outputs.items():
            fmt = summary_format(opts.format, opts.statistics) if option == "-o" else FILE_OPTIONS[option]
            failure = _write(output, lambda stream: write(fmt, report, opts.fail_on, stream))
            if failure:
                failures.append(failure)
        for failure in failures:
            _say(f"fsaudit: {failure}")
        return EXIT_OUTPUT_FAILED if failures else exit_status(report, opts.fail_on)


def _write(output: Output, write) -> str | None:
    """Write one output whole and commit it; None, or the line that says why it could not be."""
    try:
        write(output.stream)
    except OSError as exc:
        output.discard()
        return str(output.error(exc))
    try:
        output.commit()
    except OutputError as exc:
        return str(exc)
    return None


def _cwd() -> str | None:
    """Where fsaudit runs (the summaries print paths under it relative), if it still exists."""
    try:
        return os.getcwd()
    except OSError:
        return None


def _repository_root() -> str | None:
    """The root of the repository that holds the current directory (the nearest directory,
    from the current one up, with .git, .hg or .svn), else the current directory."""
    cwd = _cwd()
    if cwd is None:
        return None
    for directory in (cwd, *Path(cwd).parents):
        if any(os.path.lexists(os.path.join(directory, marker)) for marker in REPOSITORY_MARKERS):
            return str(directory)
    return cwd


def _say(line: str) -> None:
    """A line on stderr, which may itself be the output that failed."""
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except OSError:
        pass


def _injection_outcome(spec: str, fired: int) -> dict:
    try:
        described = parse_injection(spec).describe()
    except InjectionError:      # a hand-edited log header: keep what it says
        described = {"spec": spec}
    return {**described, "fired": fired}
