"""Every output format, by name: a pure function of the report document
(fsaudit.report/1) that returns text, or a document written as JSON.

A format is one module here and one line in FORMATS. --format's choices (the
summary's form) and the file options (--json, --sarif, --junit, --html) are read
from this table by the commands and the session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Callable

from .concise import render_concise
from .github import render_github
from .html import render_html
from .json import render_json, write_json
from .junit import render_junit
from .sarif import render_sarif
from .statistics import render_statistics, statistics_document
from .text import render_text

Rendering = str | dict      # text as it is written, or a document written as JSON


@dataclass(frozen=True)
class Format:
    name: str
    # (report, fail_on) -> the rendering. fail_on, the lowest severity that fails the
    # run, is there for the formats that mark failures (JUnit); the others ignore it.
    render: Callable[[dict, str], Rendering]
    option: str | None = None     # the option that writes it to a file, if any
    help: str = ""                # that option's help
    summary: bool = False         # one of --format's choices, for the summary
    timeline: bool = False        # it draws the report's `timeline`, which is collected only when asked


FORMATS: dict[str, Format] = {fmt.name: fmt for fmt in (
    Format("text", render_text, summary=True),
    Format("concise", render_concise, summary=True),
    Format("json", render_json, "--json", "Write the JSON report here (- for stdout).", summary=True),
    Format("github", render_github, summary=True),
    Format("sarif", render_sarif, "--sarif", "Write SARIF 2.1.0 here (- for stdout)."),
    Format("junit", render_junit, "--junit", "Write JUnit XML here (- for stdout)."),
    Format("html", render_html, "--html", "Write a self-contained HTML report here (- for stdout): a timeline "
           "per file, the findings pinned where they fire.", timeline=True),
)}
SUMMARY_FORMATS = tuple(name for name, fmt in FORMATS.items() if fmt.summary)
FILE_OPTIONS: dict[str, Format] = {fmt.option: fmt for fmt in FORMATS.values() if fmt.option}


def summary_format(name: str, statistics: bool = False) -> Format:
    """The summary's form: --format's choice, or with --statistics the counts per rule
    and group instead of the findings (a JSON document for --format json)."""
    if not statistics:
        return FORMATS[name]
    return Format("statistics", statistics_document if name == "json" else render_statistics)


def write(fmt: Format, report: dict, fail_on: str, stream: IO[str]) -> None:
    rendering = fmt.render(report, fail_on)
    if isinstance(rendering, str):
        stream.write(rendering)
    else:
        write_json(rendering, stream)
