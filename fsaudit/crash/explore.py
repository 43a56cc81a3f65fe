"""The whole of `fsaudit crash`: record, check the recording, try the states, minimise the failures."""

from __future__ import annotations

import os
import hashlib
import shlex
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .. import api
from .checker import Verdict, in_namespace, materialise, run_checker
from .minimise import ddmin
from .models import Timeline, build, describe_unit, drop, state_at
from .recording import Recorder, Recording, Refusal, tree_hashes
from .states import Candidate, candidates

MINIMISE_TESTS = 64        # checker runs per minimal cause, at most


@dataclass
class Failure:
    candidate: Candidate
    verdict: Verdict
    cause: list[int]
    state_dir: str | None
    count: int = 1


@dataclass
class Outcome:
    recording: Recording
    timeline: Timeline
    models: list[str]
    generated: int = 0
    distinct: int = 0
    checked: int = 0
    failed: int = 0
    budget_exhausted: bool = False
    seconds: float = 0.0
    first_failure_s: float | None = None
    failures: list[Failure] = field(default_factory=list)
    findings: list = field(default_factory=list)
    keep: str = ""
    checker: list[str] = field(default_factory=list)


def record(argv: list[str], scopes: list[str], work: str,
           outputs: api.OutputOptions) -> tuple[Recording, api.Result]:
    """Copy the scopes, run argv under the tracer with data capture, and return the
    recording once replaying it gives the scopes' real final contents."""
    # Several scopes are one model rooted at their common directory; the directories
    # between it and each scope are copied empty and never change (nothing outside is recorded).
    root = scopes[0] if len(scopes) == 1 else os.path.commonpath(scopes)
    initial = os.path.join(work, "initial")
    for scope in scopes:
        copy = os.path.normpath(os.path.join(initial, os.path.relpath(scope, root)))
        os.makedirs(os.path.dirname(copy), exist_ok=True)
        subprocess.run(["cp", "-a", "--reflink=auto", scope, copy], check=True)
    recorder = Recorder(scopes, root, initial)
    pages = os.environ.get("FSAUDIT_RINGBUF_PAGES")
    os.environ.setdefault("FSAUDIT_RINGBUF_PAGES", "16384")     # written bytes cross the ring too
    try:
        result = api.trace_command(argv, outputs, capture=recorder.capture, observe=recorder.observe)
    finally:
        if pages is None:
            os.environ.pop("FSAUDIT_RINGBUF_PAGES", None)
    recording = recorder.recording()
    timeline = build(recording)
    replayed = state_at(timeline, len(recording.ops) - 1, frozenset())
    real, mine = {}, {}
    for scope in scopes:
        rel = os.path.relpath(scope, root)
        under = "" if rel == "." else rel + "/"
        real.update({under + path: digest for path, digest in tree_hashes(scope).items()})
        mine.update({path: "dir" if content is None else _sha(content)
                     for path, content in replayed.files.items() if path.startswith(under)})
    for path in sorted(set(real) | set(mine)):
        if real.get(path) != mine.get(path):
            where = os.path.join(root, path)
            why = ("a read() on a descriptor it was also written through moves the file position unseen: "
                   "reads are not recorded" if where in recording.unsure else
                   "a write fsaudit could not place, or a buffer changed during its call")
            raise Refusal(f"replaying the recording does not give {where} as the workload left it ({why})")
    return recording, result


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def explore(recording: Recording, checker: list[str], models: list[str], *, max_states: int, seconds: float,
            jobs: int, check_timeout: float, seed: int, keep: str | None, work: str) -> Outcome:
    tl = build(recording)
    outcome = Outcome(recording, tl, models, checker=checker)
    outcome.keep = keep or os.path.join(work, "kept")
    os.makedirs(outcome.keep, exist_ok=True)
    started = time.monotonic()
    deadline = started + seconds
    verdicts: dict[str, Verdict] = {}
    counter = [0]
    ops = recording.ops

    def acked(point: int) -> bytes:
        return b"".join(op.data for op in ops[:point + 1] if op.kind == "ack")

    def identity(state, point: int) -> str:
        """States are the same to the checker when their files and what had been acknowledged are."""
        return state.digest() + _sha(acked(point))

    def check(point: int, model: str, lost: frozenset[int], keep_as: str | None = None) -> tuple[str, Verdict]:
        state = state_at(tl, point, lost)
        digest = identity(state, point)
        if digest in verdicts and keep_as is None:
            return digest, verdicts[digest]
        counter[0] += 1
        where = os.path.join(work, "states", str(counter[0]))
        materialise(state, recording.initial, where)
        with open(where + ".acked", "wb") as f:
            f.write(acked(point))
        if keep_as is not None:       # kept as it was built, before the checker's recovery writes to it
            materialise(state, recording.initial, keep_as)
            shutil.copyfile(where + ".acked", keep_as + ".acked")
        op = ops[point]
        env = {"FSAUDIT_MODEL": model, "FSAUDIT_CRASH_POINT": f"{point} {op.syscall} {op.path or ''}".strip()}
        verdict = run_checker(checker, where, recording.mounts(where), where + ".acked", env, check_timeout)
        verdicts[digest] = verdict
        shutil.rmtree(where, ignore_errors=True)
        os.unlink(where + ".acked")
        return digest, verdict

    seen: set[str] = set()
    batch: list[Candidate] = []
    failing: list[tuple[Candidate, Verdict]] = []
    random_left = max_states

    def run_batch() -> None:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(lambda c: check(c.point, c.model, c.lost), batch))
        for cand, (_, verdict) in zip(batch, results):
            outcome.checked += 1
            if not verdict.ok:
                outcome.failed += 1
                if outcome.first_failure_s is None:
                    outcome.first_failure_s = time.monotonic() - started
                failing.append((cand, verdict))
        batch.clear()

    for cand in candidates(tl, models, seed):
        if cand.strategy == "random":
            if random_left <= 0:
                break
            random_left -= 1
        if outcome.distinct >= max_states or time.monotonic() >= deadline:
            outcome.budget_exhausted = cand.strategy != "random"
            break
        outcome.generated += 1
        # Distinct per model, so each model's report says what it exposes; the checker
        # still runs once per content (check() keeps its verdicts).
        digest = cand.model + identity(state_at(tl, cand.point, cand.lost), cand.point)
        if digest in seen:
            continue
        seen.add(digest)
        outcome.distinct += 1
        batch.append(cand)
        if len(batch) >= jobs * 4:
            run_batch()
    run_batch()

    causes: dict[tuple, Failure] = {}
    for cand, verdict in failing:
        lost = sorted(cand.lost)

        def fails(subset: frozenset[int]) -> bool:
            return not check(cand.point, cand.model, drop(tl, cand.point, cand.model, set(subset)))[1].ok

        # A cause already found that this state lost too, and that fails here alone: the same cause.
        known = next((f for key, f in causes.items() if key[0] == cand.model and set(key[1]) <= set(lost)
                      and fails(frozenset(key[1]))), None)
        if known is not None:
            known.count += 1
            continue
        cause = ddmin(lost, fails, MINIMISE_TESTS) if lost and time.monotonic() < deadline else lost
        key = (cand.model, tuple(cause))
        if key in causes:
            causes[key].count += 1
            continue
        kept = os.path.join(outcome.keep, str(len(causes) + 1))
        check(cand.point, cand.model, cand.lost, keep_as=kept)
        causes[key] = Failure(cand, verdict, cause, kept)
    outcome.failures = list(causes.values())
    outcome.seconds = time.monotonic() - started
    return outcome


def rerun_command(outcome: Outcome, failure: Failure) -> str:
    """A shell command that re-runs the checker on a kept state, as crash ran it."""
    op = outcome.recording.ops[failure.candidate.point]
    work = failure.state_dir + ".run"
    env = (f"FSAUDIT_MODEL={failure.candidate.model} "
           f"FSAUDIT_CRASH_POINT={shlex.quote(f'{op.index} {op.syscall} {op.path or chr(32)}'.strip())}")
    argv = in_namespace(outcome.recording.mounts(work), [*outcome.checker, work, failure.state_dir + ".acked"])
    return (f"rm -rf {shlex.quote(work)} && cp -a {shlex.quote(failure.state_dir)} {shlex.quote(work)} && "
            f"{env} {shlex.join(argv)}")


def describe(outcome: Outcome, uid: int) -> dict:
    return describe_unit(outcome.timeline, uid)
