"""fsaudit.toml / [tool.fsaudit]: rules on/off, severity overrides, scope, suppressions."""

from __future__ import annotations

import os
import pwd
import stat
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
    path: str | None = None     # the file applied (absolute), None for the defaults
    warnings: list[str] = field(default_factory=list)   # files found but not applied, and why


def _string_list(table: dict, key: str, where: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}.{key} must be a list of strings")
    return value


def _distrusted(path: Path) -> str | None:
    """Why a config file found in the current directory is not applied, else None:
    whoever can write it decides what fsaudit reports (one suppression turns a run
    with an error into "No findings")."""
    owners = {0, os.geteuid()}
    if os.geteuid() == 0 and os.environ.get("SUDO_UID", "").isdigit():
        owners.add(int(os.environ["SUDO_UID"]))     # `sudo fsaudit run` in one's own checkout
    link, target = path.lstat(), path.stat()
    for owner in (link.st_uid, target.st_uid):
        if owner not in owners:
            try:
                name = f"{pwd.getpwuid(owner).pw_name} (uid {owner})"
            except KeyError:
                name = f"uid {owner}"
            return f"owned by {name}, not by root or the user running fsaudit"
    if target.st_mode & 0o022:
        return f"writable by group or others (mode {stat.S_IMODE(target.st_mode):04o})"
    return None


def _find_default(warnings: list[str]) -> tuple[dict, str, str] | None:
    """The settings of fsaudit.toml, else of pyproject.toml's [tool.fsaudit], in the
    current directory: (table, its name for messages, the file's absolute path). A
    file that is not to be trusted is skipped with a warning."""
    for name in ("fsaudit.toml", "pyproject.toml"):
        path = Path(name)
        if not path.is_file():
            continue
        absolute = os.path.abspath(name)
        distrust = _distrusted(path)
        if distrust is None:
            if name == "fsaudit.toml":
                return _load(path), name, absolute
            table = _tool_table(_load(path))
            if table is not None:
                return table, "pyproject.toml [tool.fsaudit]", absolute
        elif name == "fsaudit.toml" or _configures_fsaudit(path):
            warnings.append(f"{absolute} not applied: {distrust} (--config {absolute} applies it)")
    return None


def _tool_table(document: dict) -> dict | None:
    tool = document.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError("pyproject.toml: tool must be a table")
    if "fsaudit" not in tool:
        return None
    if not isinstance(tool["fsaudit"], dict):
        raise ConfigError("pyproject.toml: tool.fsaudit must be a table")
    return tool["fsaudit"]


def _configures_fsaudit(path: Path) -> bool:
    """An untrusted pyproject.toml matters only if it has [tool.fsaudit]; its errors do not."""
    try:
        tool = tomllib.loads(path.read_text()).get("tool")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return isinstance(tool, dict) and "fsaudit" in tool


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

    warnings: list[str] = []
    found = (_load(path), str(path), os.path.abspath(path)) if path else _find_default(warnings)
    table, where, applied = found if found else ({}, "config", None)
    known = {"path", "exclude", "disable", "severity", "suppress"}
    for key in table:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")
    config = EngineConfig(include=_string_list(table, "path", where) + list(paths),
                          exclude=_string_list(table, "exclude", where) + list(excludes),
                          path=applied, warnings=warnings)
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
