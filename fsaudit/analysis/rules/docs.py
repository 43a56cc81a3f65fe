"""Each rule's page (pages/FSxxx.md): package data beside the rules, so that an installed
wheel has them in full for `fsaudit rules CODE` and for SARIF's rule help."""

from __future__ import annotations

import importlib.resources
from functools import cache

PAGES = importlib.resources.files(__package__) / "pages"


@cache
def page(code: str) -> str | None:
    """The Markdown page of the rule with this code, or None if it has none."""
    doc = PAGES / f"{code}.md"
    return doc.read_text(encoding="utf-8") if doc.is_file() else None


def section(text: str, title: str) -> str | None:
    """The paragraphs under a page's `## title` heading, up to the next heading, or None."""
    lines = text.splitlines()
    heading = f"## {title}"
    if heading not in lines:
        return None
    body = []
    for line in lines[lines.index(heading) + 1:]:
        if line.startswith("#"):
            break
        body.append(line)
    return "\n".join(body).strip() or None
