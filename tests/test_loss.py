"""Losses are never silent: with a ring buffer too small for a burst, every
event the kernel side could not deliver is counted, reported as FS902, and
the report is marked incomplete."""

from __future__ import annotations

import os

from conftest import Traced, fsaudit

BURST = 20000
# Some 25 MB of records against a 4 MiB ring buffer: delivered only because
# the tracer copies the ring out faster than it analyses.
LONG_BURST, SMALL_RING_PAGES = 250000, "1024"


def trace_burst(build, tmp_path, name: str, size: int = BURST, **env) -> Traced:
    events, report = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.json"
    proc = fsaudit("run", "--fail-on", "never", "--events", str(events), "--json", str(report), "--",
                   str(build("burst", "-static")), str(size), cwd=tmp_path, env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr
    return Traced(proc, events, report)


def kernel_records(traced: Traced) -> int:
    """Events that stand for one kernel record each (inherit and lost are fsaudit's own)."""
    return sum(1 for e in traced.events if e["syscall"] not in ("inherit", "lost"))


def test_every_lost_event_is_counted_and_reported(bpf, build, tmp_path):
    full = trace_burst(build, tmp_path, "full")
    assert full.report["counts"]["lost_events"] == 0 and full.report["complete"] is True
    assert len(full.of("fdatasync")) == BURST

    tiny = trace_burst(build, tmp_path, "tiny", FSAUDIT_RINGBUF_PAGES="1")
    lost = tiny.report["counts"]["lost_events"]
    assert lost > 0 and tiny.report["complete"] is False
    # Exact: what arrived plus what was counted lost is what the kernel saw.
    assert kernel_records(tiny) + lost == kernel_records(full)
    assert sum(e["count"] for e in tiny.of("lost")) == lost
    finding = next(f for f in tiny.report["findings"] if f["rule"] == "FS902")
    assert str(lost) in finding["message"]
    assert "incomplete" in tiny.stdout


def test_a_burst_many_times_the_ring_buffer_is_not_lost(bpf, build, tmp_path):
    traced = trace_burst(build, tmp_path, "long", LONG_BURST, FSAUDIT_RINGBUF_PAGES=SMALL_RING_PAGES)
    assert traced.report["counts"]["lost_events"] == 0 and traced.report["complete"] is True
    assert len(traced.of("fdatasync")) == LONG_BURST


def test_ring_buffer_size_must_be_a_power_of_two(bpf):
    result = fsaudit("run", "--", "true", env={**os.environ, "FSAUDIT_RINGBUF_PAGES": "3"})
    assert result.returncode == 2
    assert result.stderr.strip() == "fsaudit: FSAUDIT_RINGBUF_PAGES=3: must be a power of 2 (pages)"
