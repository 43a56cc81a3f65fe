"""The folders are the pipeline: each part imports only what comes before it.

analysis is a pure function of events, so it never imports tracing; tracing
knows nothing of analysis or of how results are shown. Checked on the
import statements of every module, so a shortcut taken anywhere fails here."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fsaudit"
FORBIDDEN = {
    "analysis": ("fsaudit.tracing", "fsaudit.outputs", "fsaudit.commands", "fsaudit.session"),
    "tracing": ("fsaudit.analysis", "fsaudit.outputs", "fsaudit.commands", "fsaudit.session"),
}


def imported_modules(path: Path) -> set[str]:
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_part_does_not_import_later_parts(part):
    offences = [f"{path.relative_to(PACKAGE.parent)} imports {module}"
                for path in sorted((PACKAGE / part).rglob("*.py"))
                for module in sorted(imported_modules(path))
                if module.startswith(FORBIDDEN[part])]
    assert not offences, "\n".join(offences)


def test_the_checker_sees_relative_imports():
    """A guard for the guard: a relative import across parts is recognised."""
    module = PACKAGE / "analysis" / "engine.py"
    assert "fsaudit.analysis.config" in imported_modules(module)
