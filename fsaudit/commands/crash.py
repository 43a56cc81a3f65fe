"""fsaudit crash -- COMMAND --check CHECKER: the states a power cut can leave, checked by the program's own recovery."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from typing import List, Optional

import typer

from .. import api
from ..outputs.html import render_html
from ..outputs.outputfile import OutputError, open_output
from ..crash.explore import explore, record
from ..crash.models import MODELS
from ..crash.recording import Refusal
from ..crash.report import document, page_section, text
from . import common


def command(
    argv: List[str] = typer.Argument(..., metavar="-- COMMAND [ARGS...] --check CHECKER [ARGS...]",
                                     help="The workload, then the checker run on each crash state."),
    scope: List[str] = typer.Option([], "--scope", metavar="DIR", help="A directory whose crash states are "
                                    "explored (repeatable; default: the current directory)."),
    model: str = typer.Option("posix", "--model", help="What the filesystem may lose: posix, ext4-ordered or all."),
    max_states: int = typer.Option(2000, "--max-states", help="Distinct states to check at most."),
    seconds: float = typer.Option(300, "--time", metavar="SECONDS", help="Time budget for the exploration."),
    jobs: int = typer.Option(os.cpu_count() or 1, "--jobs", help="Checkers run in parallel."),
    check_timeout: float = typer.Option(30, "--check-timeout", metavar="SECONDS",
                                        help="A checker running longer fails its state."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random states (reproducible)."),
    keep: Optional[str] = typer.Option(None, "--keep", metavar="DIR", help="Keep the failing states here "
                                       "(default: a temporary directory named in the report)."),
    json_path: Optional[str] = typer.Option(None, "--json", metavar="PATH", help="Write the crash report "
                                            "(fsaudit.crash/1) here."),
    html: Optional[str] = typer.Option(None, "--html", metavar="PATH", help="Write the HTML report here: the "
                                       "workload's timeline with the failing crash points and their minimal causes."),
    events: Optional[str] = common.EventsOpt,
    output: Optional[str] = common.OutputOpt,
) -> None:
    """Record COMMAND, build the on-disk states a power cut could leave at each point, run CHECKER on each.

    Exit 1 when a state fails its check, 0 when all pass, 3 when the recording cannot be complete."""
    if "--check" not in argv:
        raise common.fail("no --check CHECKER after the command", common.EXIT_USAGE)
    split = argv.index("--check")
    workload, checker = argv[:split], argv[split + 1:]
    if not workload or not checker:
        raise common.fail("both a command and a --check CHECKER are needed", common.EXIT_USAGE)
    if shutil.which(checker[0]) is None:
        raise common.fail(f"--check {checker[0]}: no such command", common.EXIT_USAGE)
    if model not in (*MODELS, "all"):
        raise common.fail(f"--model must be posix, ext4-ordered or all, not {model!r}", common.EXIT_USAGE)
    scopes = []
    for given in scope or [os.getcwd()]:
        path = os.path.realpath(given)
        if not os.path.isdir(path):
            raise common.fail(f"--scope {path}: no such directory", common.EXIT_USAGE)
        scopes.append(path)
    # A scope inside another is part of it already.
    scopes = sorted({s for s in scopes if not any(o != s and os.path.commonpath([o, s]) == o for o in scopes)})
    if max_states < 1 or jobs < 1 or seconds <= 0 or check_timeout <= 0:
        raise common.fail("--max-states, --jobs, --time and --check-timeout must be positive", common.EXIT_USAGE)
    models = list(MODELS) if model == "all" else [model]
    work = tempfile.mkdtemp(prefix="fsaudit-crash-")
    outputs = api.OutputOptions(events_path=events, summary_path=os.devnull)
    page = None
    if html:
        try:
            page = open_output("--html", html)     # before anything runs: a path that cannot be written stops here
        except OutputError as exc:
            shutil.rmtree(work, ignore_errors=True)
            raise common.fail(str(exc), common.EXIT_USAGE)
        # The trace's report with its timeline: the html format is what makes the session
        # collect the timeline; the page itself is drawn below, with the crash section in it.
        outputs.files = {"json": os.path.join(work, "trace.json"), "html": os.devnull}
    try:
        try:
            recording, result = record(workload, scopes, work, outputs)
        except Refusal as exc:
            raise common.fail(f"cannot record the workload completely: {exc}", common.EXIT_CANNOT_TRACE)
        except api.Error as exc:
            raise common.fail(str(exc), exc.exit_code)
        outcome = explore(recording, checker, models, max_states=max_states, seconds=seconds, jobs=jobs,
                          check_timeout=check_timeout, seed=seed, keep=keep, work=work)
        outcome.findings = result.findings
        doc = document(outcome)
        if json_path:
            with open(json_path, "w") as f:
                json.dump(doc, f, indent=1)
        if page:
            with open(os.path.join(work, "trace.json")) as f:
                report = json.load(f)
            report["mode"] = "crash"
            report["crash"] = page_section(doc)
            try:
                page.stream.write(render_html(report, "error"))
                page.commit()
            except OSError as exc:
                raise common.fail(str(page.error(exc)), common.EXIT_USAGE)
            except OutputError as exc:
                raise common.fail(str(exc), common.EXIT_USAGE)
        rendered = text(doc)
        if output and output != "-":
            with open(output, "w") as f:
                f.write(rendered)
        else:
            sys.stdout.write(rendered)
    finally:
        if page:
            page.discard()        # nothing, once committed
        for name in ("initial", "states"):
            shutil.rmtree(os.path.join(work, name), ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(work, "trace.json"))
        if not os.path.exists(os.path.join(work, "kept")) or not os.listdir(os.path.join(work, "kept")):
            shutil.rmtree(work, ignore_errors=True)
    raise typer.Exit(1 if outcome.failed else 0)
