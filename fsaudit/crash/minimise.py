"""The smallest set of lost units that still makes the check fail: delta
debugging (Zeller's ddmin) over the units a failing state lost."""

from __future__ import annotations

from typing import Callable


def ddmin(lost: list[int], fails: Callable[[frozenset[int]], bool], limit: int = 64) -> list[int]:
    """A 1-minimal subset of lost for which fails() holds (fails(lost) is known to),
    within `limit` tests of fails."""
    tests = [0]

    def test(subset) -> bool:
        tests[0] += 1
        return fails(frozenset(subset))

    current, n = list(lost), 2
    while len(current) >= 2 and tests[0] < limit:
        size = max(1, len(current) // n)
        parts = [current[i:i + size] for i in range(0, len(current), size)]
        reduced = False
        for part in parts:
            if tests[0] >= limit:
                break
            if test(part):
                current, n, reduced = part, 2, True
                break
        if not reduced:
            for part in parts:
                if tests[0] >= limit:
                    break
                rest = [u for u in current if u not in part]
                if rest and test(rest):
                    current, n, reduced = rest, max(n - 1, 2), True
                    break
        if not reduced:
            if n >= len(current):
                break
            n = min(len(current), n * 2)
    return current
