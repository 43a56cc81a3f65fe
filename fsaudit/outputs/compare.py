"""compare's table: one row per report document, side by side, as text or Markdown."""

from __future__ import annotations

COLUMNS = ("report", "runtime", "writes", "bytes", "size p50", "size max", "fsync", "fdatasync",
           "dir syncs", "move", "E/W/I", "findings")


def _main_process(report: dict) -> dict | None:
    """The process that wrote the most bytes to files in scope (the root on a tie):
    in a tree with a launcher or shell, the one whose runtime did the I/O."""
    processes = report["processes"]
    return max(processes, key=lambda p: p["io"]["bytes_written"]) if processes else None


def _move(io: dict) -> str:
    methods = [name for name, count in (("rename", io.get("renames", 0)), ("link", io.get("links", 0))) if count]
    return "+".join(methods) or "-"


def _value(value) -> str:
    return "-" if value is None else str(value)


def row(label: str, report: dict) -> list[str]:
    main = _main_process(report)
    io = main["io"] if main else {}
    runtime = main and main.get("runtime")
    summary = report["summary"]
    codes = sorted({f["rule"] for f in report["findings"]})
    return [label,
            " ".join(filter(None, (runtime["name"], runtime.get("version")))) if runtime else "-",
            _value(io.get("writes")), _value(io.get("bytes_written")),
            _value(io.get("write_size_p50")), _value(io.get("write_size_max")),
            _value(io.get("fsync")), _value(io.get("fdatasync")), _value(io.get("dir_syncs")), _move(io),
            f"{summary['error']}/{summary['warning']}/{summary['info']}",
            " ".join(codes) or "-"]


def render_text(rows: list[list[str]]) -> str:
    table = [list(COLUMNS)] + rows
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    numeric = {i for i, name in enumerate(COLUMNS) if name not in ("report", "runtime", "move", "findings")}
    lines = ["  ".join(cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
                       for i, cell in enumerate(r)).rstrip() for r in table]
    return "\n".join(lines) + "\n"


def render_markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"
