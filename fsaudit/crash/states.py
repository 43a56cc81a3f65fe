"""Which crash states to try, in the contract's order (docs/crash.md): at every
crash point the full prefix; then the minimal state; then each unsynced unit
omitted alone, directory entries first; each write torn; every unsynced
directory entry lost at once; then seeded random subsets. Strategy by
strategy over all the points, so a budget that runs out has tried the simpler
states everywhere first."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator

from .models import Timeline, drop


@dataclass(frozen=True)
class Candidate:
    point: int                 # index of the call after which the power is cut
    model: str
    lost: frozenset[int]       # units lost (after the model's closure)
    strategy: str


def crash_points(tl: Timeline) -> list[int]:
    """After each call that changes the scope, and at each acknowledgement."""
    return [op.index for op in tl.recording.ops if op.kind != "fsync" or op.index in tl.covered_at]


def candidates(tl: Timeline, models: list[str], seed: int) -> Iterator[Candidate]:
    points = crash_points(tl)

    class Context(dict):
        """(model, point) -> (required units, unsynced units), worked out when first asked:
        a budget that ends early spares the rest."""
        def __missing__(self, key):
            model, point = key
            required = tl.required(point, model)
            self[key] = value = (required, [u for u in tl.issued(point) if u not in required])
            return value

    context = Context()

    def make(model: str, point: int, lost, strategy: str) -> Candidate:
        required = context[(model, point)][0]
        return Candidate(point, model, drop(tl, point, model, set(lost), required), strategy)

    for model in models:
        for point in points:
            yield Candidate(point, model, frozenset(), "full prefix")
    for model in models:
        for point in points:
            yield make(model, point, context[(model, point)][1], "minimal")
    for model in models:
        for point in points:
            unsynced = context[(model, point)][1]
            for u in sorted(unsynced, key=lambda u: tl.units[u].kind != "entry"):
                yield make(model, point, {u}, "omit one")
    for model in models:
        for point in points:
            unsynced = set(context[(model, point)][1])
            by_op: dict[int, list[int]] = {}
            for u in sorted(unsynced):
                if tl.units[u].kind == "data":
                    by_op.setdefault(tl.units[u].op, []).append(u)
            for sectors in by_op.values():
                for keep in range(1, len(sectors)):
                    yield make(model, point, set(sectors[keep:]), "torn write")
    for model in models:
        for point in points:
            entries = {u for u in context[(model, point)][1] if tl.units[u].kind == "entry"}
            if entries:
                yield make(model, point, entries, "directory entries lost")
    rng = random.Random(seed)
    keys = [(m, p) for m in models for p in points if context[(m, p)][1]]
    while keys:
        model, point = rng.choice(keys)
        unsynced = context[(model, point)][1]
        yield make(model, point, {u for u in unsynced if rng.random() < 0.5}, "random")
