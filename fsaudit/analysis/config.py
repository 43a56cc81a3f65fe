"""fsaudit.toml / [tool.fsaudit]: rules on/off, severity overrides, scope, suppressions and
roles by glob; found as ruff finds its own (docs/config.md)."""

from __future__ import annotations

import os
import pwd
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .globs import Glob, GlobError
from .roles import ROLES

SEVERITY_NAMES = ("error", "warning", "info")
# Looked for in each directory from the current one up, in this order: as ruff prefers
# ruff.toml to a pyproject.toml in the same directory, and skips a pyproject.toml
# that has no table of its own.
CONFIG_NAMES = ("fsaudit.toml", "pyproject.toml")
REPOSITORY_MARKERS = (".git", ".hg", ".svn")    # the search stops at a repository's root
# Where SARIF's rules link to (helpUri): each rule's page, as the repository holds it.
DEFAULT_HELP_URI = "https://github.com/fsaudit-ebpf/fsaudit/blob/main/fsaudit/analysis/rules/pages/{code}.md"
HELP_URI_FIELDS = ("code", "name")


class ConfigError(Exception):
    """A malformed configuration; the message names the key (exit status 2)."""


@dataclass
class Suppression:
    rule: str
    path: str       # a glob: a Glob from a config file, a plain str is relative to the cwd
    reason: str


@dataclass
class EngineConfig:
    # Globs (fsaudit.analysis.globs): Glob objects, or str relative to the current directory.
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    disabled: set[str] = field(default_factory=set)
    severity: dict[str, str] = field(default_factory=dict)
    suppressions: list[Suppression] = field(default_factory=list)
    roles: list[tuple[Glob, str]] = field(default_factory=list)    # in the order written
    include_roles: frozenset[str] = frozenset()     # --include: default exclusions brought back (roles.py)
    path: str | None = None     # the file applied (absolute), None for the defaults
    help_uri: str = DEFAULT_HELP_URI    # a rule's documentation: {code} and {name} filled in
    warnings: list[str] = field(default_factory=list)   # files found but not applied, and why

    def role_for(self, path: str) -> str | None:
        """The role the configuration gives an absolute path: that of the last `roles`
        glob naming it (or a directory above it), else None."""
        for glob, role in reversed(self.roles):
            if glob.match(path):
                return role
        return None


def _string_list(table: dict, key: str, where: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}.{key} must be a list of strings")
    return value


def _distrusted(path: Path) -> str | None:
    """Why a config file found by the search is not applied, else None:
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


def _discover(warnings: list[str]) -> tuple[dict, str, str] | None:
    """The settings of the nearest fsaudit.toml, or pyproject.toml with [tool.fsaudit], in
    the current directory or its parents up to a repository's root: (table, its name for
    messages, the file's absolute path). A file that is not to be trusted is skipped with
    a warning, and the search goes on."""
    cwd = Path(os.getcwd())
    for directory in (cwd, *cwd.parents):
        for name in CONFIG_NAMES:
            path = directory / name
            if not path.is_file():
                continue
            distrust = _distrusted(path)
            if distrust is None:
                if name == "fsaudit.toml":
                    return _load(path), str(path), str(path)
                table = _tool_table(_load(path), path)
                if table is not None:
                    return table, f"{path} [tool.fsaudit]", str(path)
            elif name == "fsaudit.toml" or _configures_fsaudit(path):
                warnings.append(f"{path} not applied: {distrust} (--config {path} applies it)")
        if any(os.path.lexists(directory / marker) for marker in REPOSITORY_MARKERS):
            return None
    return None


def _tool_table(document: dict, path: Path) -> dict | None:
    tool = document.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(f"{path}: tool must be a table")
    if "fsaudit" not in tool:
        return None
    if not isinstance(tool["fsaudit"], dict):
        raise ConfigError(f"{path}: tool.fsaudit must be a table")
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


def _given(path: Path) -> tuple[dict, str, str]:
    """The settings of the file --config names (whoever owns it: the user chose it); of a
    pyproject.toml, its [tool.fsaudit] table."""
    document = _load(path)
    if path.name != "pyproject.toml":
        return document, str(path), os.path.abspath(path)
    table = _tool_table(document, path)
    if table is None:
        raise ConfigError(f"{path}: no [tool.fsaudit] table")
    return table, f"{path} [tool.fsaudit]", os.path.abspath(path)


def _glob(text: str, base: str, origin: str, where: str | None = None, alone: bool = False) -> Glob:
    """text as a Glob written at origin; where: the key to name in an error; alone: not in
    a list, where a negation (which only takes out what an earlier glob names) is a mistake."""
    where = where or origin
    named = f"{where} {text!r}" if where.startswith("--") else f"{where}: {text!r}"
    if alone and text.startswith("!"):
        raise ConfigError(f"{named}: a negated glob on its own matches nothing")
    try:
        return Glob(text, base, origin)
    except GlobError as exc:
        raise ConfigError(f"{named}: {exc}") from None


def _globs(texts: list[str], base: str, origin: str) -> list[Glob]:
    return [_glob(text, base, origin, f"{origin}[{index}]") for index, text in enumerate(texts)]


def load_config(path: Path | None, paths: list[str], excludes: list[str]) -> EngineConfig:
    """The config file's settings, with command-line --path/--exclude added (after the
    file's globs: a later glob decides, so `--path '!x'` can take out what the file names).
    The file's relative globs start from its directory, the options' from the current one."""
    from .rules import RULES_BY_CODE

    warnings: list[str] = []
    found = _given(path) if path else _discover(warnings)
    table, where, applied = found if found else ({}, "config", None)
    known = {"path", "exclude", "disable", "severity", "suppress", "roles", "help-uri"}
    for key in table:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")
    cwd = os.getcwd()
    base = os.path.dirname(applied) if applied else cwd
    config = EngineConfig(
        include=(_globs(_string_list(table, "path", where), base, f"{where}.path")
                 + [_glob(text, cwd, "--path") for text in paths]),
        exclude=(_globs(_string_list(table, "exclude", where), base, f"{where}.exclude")
                 + [_glob(text, cwd, "--exclude") for text in excludes]),
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
        glob = _glob(item["path"], base, f"{here}.path", alone=True)
        config.suppressions.append(Suppression(item["rule"], glob, item["reason"]))
    roles = table.get("roles", {})
    if not isinstance(roles, dict):
        raise ConfigError(f"{where}.roles must be a table of GLOB = \"{'|'.join(ROLES)}\"")
    for text, role in roles.items():
        if role not in ROLES:
            raise ConfigError(f"{where}.roles.{text!r}: {role!r} is not a role ({', '.join(ROLES)})")
        config.roles.append((_glob(text, base, f"{where}.roles", alone=True), role))
    if "help-uri" in table:
        config.help_uri = _help_uri(table["help-uri"], f"{where}.help-uri")
    return config


def _help_uri(template, where: str) -> str:
    """A URL template that names a rule by {code} and {name} and nothing else."""
    if not isinstance(template, str) or not template:
        raise ConfigError(f"{where} must be a URL, with {{code}} or {{name}} where the rule goes")
    try:
        template.format(**{field: "" for field in HELP_URI_FIELDS})
    except KeyError as exc:
        raise ConfigError(f"{where}: unknown field {{{exc.args[0]}}} (known: {{code}}, {{name}})") from None
    except (IndexError, ValueError) as exc:
        raise ConfigError(f"{where}: {template!r}: {exc}") from None
    return template
