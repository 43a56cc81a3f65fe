"""The rule catalogue: codes and names are public API (CI configs and suppressions use them)."""

from __future__ import annotations

from . import buffers, errors, mechanisms, namespace, observation
from .base import Rule

RULES: list[Rule] = sorted(namespace.RULES + errors.RULES + mechanisms.RULES + buffers.RULES + observation.RULES,
                           key=lambda rule: rule.code)
RULES_BY_CODE: dict[str, Rule] = {rule.code: rule for rule in RULES}

__all__ = ["RULES", "RULES_BY_CODE", "Rule"]
