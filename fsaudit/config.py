"""fsaudit.toml / [tool.fsaudit]: rules on/off, severity overrides, scope, suppressions."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

SEVERITY_NAMES = ("error", "warning", "info")


class ConfigError(Exception):
    """A malformed configuration; the message names the key (exit status 2)."""


@dataclass
class Suppression:
    rule: str
    path: str
    reason: str


@dataclass
class EngineConfig:
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    disabled: set[str] = field(default_factory=set)
    severity: dict[str, str] = field(default_factory=dict)
    suppressions: list[Suppression] = field(default_factory=list)


def _string_list(table: dict, key: str, where: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}.{key} must be a list of strings")
    return value


def _find_default() -> tuple[dict, str] | None:
    if Path("fsaudit.toml").is_file():
        return _load(Path("fsaudit.toml")), "fsaudit.toml"
    if Path("pyproject.toml").is_file():
        tool = _load(Path("pyproject.toml")).get("tool", {})
        if "fsaudit" in tool:
            return tool["fsaudit"], "pyproject.toml [tool.fsaudit]"
    return None


def _load(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_config(path: Path | None, paths: list[str], excludes: list[str]) -> EngineConfig:
    """The config file's settings, with command-line --path/--exclude added."""
    from .rules import RULES_BY_CODE

    found = (_load(path), str(path)) if path else _find_default()
    table, where = found if found else ({}, "config")
    known = {"path", "exclude", "disable", "severity", "suppress"}
    for key in table:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")
    config = EngineConfig(include=_string_list(table, "path", where) + list(paths),
                          exclude=_string_list(table, "exclude", where) + list(excludes))
    for code in _string_list(table, "disable", where):
        if code not in RULES_BY_CODE:
            raise ConfigError(f"{where}.disable: unknown rule {code!r}")
        config.disabled.add(code)
    severity = table.get("severity", {})
    if not isinstance(severity, dict):
        raise ConfigError(f"{where}.severity must be a table of CODE = \"error|warning|info\"")
    for code, level in severity.items():
        if code not in RULES_BY_CODE:
            raise ConfigError(f"{where}.severity: unknown rule {code!r}")
        if level not in SEVERITY_NAMES:
            raise ConfigError(f"{where}.severity.{code}: {level!r} is not one of {', '.join(SEVERITY_NAMES)}")
        config.severity[code] = level
    suppress = table.get("suppress", [])
    if not isinstance(suppress, list):
        raise ConfigError(f"{where}.suppress must be an array of tables")
    for index, item in enumerate(suppress):
        here = f"{where}.suppress[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{here} must be a table with rule, path and reason")
        for key in ("rule", "path", "reason"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise ConfigError(f"{here}.{key} is required (a non-empty string)")
        if item["rule"] not in RULES_BY_CODE:
            raise ConfigError(f"{here}.rule: unknown rule {item['rule']!r}")
        config.suppressions.append(Suppression(item["rule"], item["path"], item["reason"]))
    return config
