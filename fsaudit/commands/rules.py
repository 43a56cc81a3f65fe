"""fsaudit rules [CODE]: list the rules, or explain one."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from .common import EXIT_USAGE, fail


def command(code: Optional[str] = typer.Argument(
        None, help="A rule's code or name, such as FS101 or rename-unsynced-data.")) -> None:
    """List the rule catalogue, or print one rule's documentation (as Markdown on a terminal)."""
    from ..analysis.fixes import FIXES
    from ..analysis.rules import RULES, RULES_BY_CODE
    from ..analysis.rules.docs import page

    if code is None:
        for rule in RULES:
            typer.echo(f"{rule.code}  {rule.name:<30} {rule.severity:<8} {rule.summary}")
        return
    rule = RULES_BY_CODE.get(code.upper()) or next((r for r in RULES if r.name == code.lower()), None)
    if rule is None:
        raise fail(f"unknown rule {code!r}; `fsaudit rules` lists them", EXIT_USAGE)
    text = page(rule.code) or f"{rule.code} {rule.name} ({rule.severity})\n\n{rule.summary}\n\nFix: {rule.fix}\n"
    by_runtime = FIXES.get(rule.code)
    if by_runtime:
        text += "\n## Fix by runtime (the fix findings carry)\n\n"
        text += "\n".join(f"- {runtime}: {fix}" for runtime, fix in by_runtime.items()) + "\n"
    if sys.stdout.isatty():
        # Imported here: rich's Markdown (markdown-it) costs every other command ~40 ms of start-up.
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(text))
    else:
        typer.echo(text, nl=False)
