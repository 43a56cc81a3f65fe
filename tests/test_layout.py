"""The folders are the pipeline: each part imports only what comes before it.

analysis is a pure function of events, so it never imports tracing; tracing
knows nothing of analysis or of how results are shown; outputs read the report
document, and the live view a snapshot of the engine. Checked on the import
statements of every module, so a shortcut taken anywhere fails here."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fsaudit"
FORBIDDEN = {
    "analysis": ("fsaudit.tracing", "fsaudit.outputs", "fsaudit.commands", "fsaudit.session"),
    "tracing": ("fsaudit.analysis", "fsaudit.outputs", "fsaudit.commands", "fsaudit.session"),
    # crash runs the tracer and the rules through the library API, as the commands do.
    "crash": ("fsaudit.tracing", "fsaudit.analysis.", "fsaudit.outputs", "fsaudit.commands", "fsaudit.session"),
}
# Outputs render the report document. The one output that reads an engine is report.py, which
# builds that document (build_report(engine)); it needs no import of the engine's modules for it,
# so it is held to the same rule. The rule catalogue (fsaudit.analysis.rules: names, summaries,
# fixes) is not engine state: junit and sarif describe the rules from it. The timeline collector
# is: the HTML report draws its digest from the document, as report.py puts it there.
ORCHESTRATION = ("fsaudit.tracing", "fsaudit.commands", "fsaudit.session", "fsaudit.api", "fsaudit.crash")
ENGINE_STATE = ("fsaudit.analysis.engine", "fsaudit.analysis.model", "fsaudit.analysis.transitions",
                "fsaudit.analysis.findings", "fsaudit.analysis.scope", "fsaudit.analysis.snapshot",
                "fsaudit.analysis.timeline")
# The live view (outputs/live/) draws a snapshot of the engine during a trace, and the scope
# from the config: nothing else of analysis.
LIVE_MAY_IMPORT = ("fsaudit.analysis.snapshot", "fsaudit.analysis.config")


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


def forbidden_in_outputs(module_path: str, module: str) -> bool:
    """Whether the output module at module_path (in the package, e.g. "outputs/text.py") may not import module."""
    if module.startswith(ORCHESTRATION):
        return True
    if module_path.startswith("outputs/live/"):
        return module.startswith("fsaudit.analysis.") and not any(
            module == allowed or module.startswith(allowed + ".") for allowed in LIVE_MAY_IMPORT)
    return module.startswith(ENGINE_STATE)


def test_outputs_read_the_report_document_and_the_live_view_a_snapshot():
    offences = [f"{path.relative_to(PACKAGE.parent)} imports {module}"
                for path in sorted((PACKAGE / "outputs").rglob("*.py"))
                for module in sorted(imported_modules(path))
                if forbidden_in_outputs(path.relative_to(PACKAGE).as_posix(), module)]
    assert not offences, "\n".join(offences)


def test_the_outputs_rule_tells_the_live_view_from_the_renderers():
    """A guard for the guard: the live view may read the snapshot and the config, nothing else
    of analysis; a renderer may read the rule catalogue, not the engine, its model or the snapshot."""
    live, text = "outputs/live/dashboard.py", "outputs/text.py"
    assert not forbidden_in_outputs(live, "fsaudit.analysis.snapshot.take_snapshot")
    assert not forbidden_in_outputs(live, "fsaudit.analysis.config")
    assert forbidden_in_outputs(live, "fsaudit.analysis.model.FileState")
    assert forbidden_in_outputs(live, "fsaudit.analysis.engine")
    assert forbidden_in_outputs(live, "fsaudit.analysis.rules")
    assert forbidden_in_outputs(text, "fsaudit.analysis.snapshot")
    assert forbidden_in_outputs("outputs/html.py", "fsaudit.analysis.timeline.Timeline")
    assert forbidden_in_outputs(text, "fsaudit.analysis.model")
    assert not forbidden_in_outputs(text, "fsaudit.analysis.rules.RULES")
    assert forbidden_in_outputs(text, "fsaudit.tracing.tracer") and forbidden_in_outputs(live, "fsaudit.session")


def test_the_checker_sees_relative_imports():
    """A guard for the guard: a relative import across parts is recognised."""
    module = PACKAGE / "analysis" / "engine.py"
    assert "fsaudit.analysis.config" in imported_modules(module)


def test_the_pytest_plugin_calls_only_the_library_api():
    """pytest_fsaudit imports nothing of fsaudit but fsaudit.api: what a caller of the
    library needs is public there, and the plugin proves it."""
    plugin = PACKAGE.parent / "pytest_fsaudit"
    imports = {path: imported_modules(path) for path in sorted(plugin.rglob("*.py"))}
    offences = [f"{path.relative_to(PACKAGE.parent)} imports {module}"
                for path, modules in imports.items() for module in sorted(modules)
                if module.startswith("fsaudit.") and module != "fsaudit.api" and not module.startswith("fsaudit.api.")]
    assert not offences, "\n".join(offences)
    assert any("fsaudit.api" in modules for modules in imports.values())   # the check saw the plugin's import
