"""The live view's snapshot of the engine (fsaudit.analysis.snapshot): rows that follow their
files by serial through settling, renames and unlinks, on recorded event streams; and a real
program's file renamed, then unlinked, while the dashboard shows it."""

from __future__ import annotations

import os
import re
import time
from collections import deque

import test_live
from test_engine import D, Stream
from fsaudit.analysis.engine import Engine
from fsaudit.analysis.snapshot import FileRow, take_snapshot

pane = test_live.pane          # the fixture: a tmux pane of a private tmux server


def fed(engine: Engine, stream: Stream, since: int) -> int:
    """Feeds the engine the stream's events from since; the index to go on from."""
    for event in stream.events[since:]:
        engine.feed(event)
    return len(stream.events)


def row(snapshot, path: str) -> FileRow:
    [found] = [r for r in snapshot.files if r.path == path]
    return found


def test_rows_follow_their_file_through_settling_a_rename_and_an_unlink():
    s, engine = Stream(), Engine()
    fd = s.open(D + "/data.tmp")
    s.write(fd, D + "/data.tmp", 4096, calls=3)
    done = fed(engine, s, 0)
    first = take_snapshot(engine, keep=10)
    tmp = row(first, D + "/data.tmp")
    assert (tmp.state, tmp.writes, tmp.dirty_bytes, tmp.renamed_from) == ("dirty", 3, 3 * 4096, None)
    # exec, open and a run of 3 writes: 5 calls in 3 events.
    assert [(p.argv, p.syscalls, p.writes, p.exited) for p in first.processes] == [(("app",), 5, 3, False)]
    assert first.events == 3 and first.findings == () and first.files_reported is None

    # Synced and closed (the engine settles it), then renamed: between two rankings the row
    # follows it to its new path, with its figures of now.
    s.fsync(fd, D + "/data.tmp")
    s.close(fd, D + "/data.tmp")
    s.rename(D + "/data.tmp", D + "/data")
    done = fed(engine, s, done)
    second = take_snapshot(engine, first, keep=10, rank=False)
    [moved] = second.files
    assert (moved.serial, moved.path, moved.state, moved.renamed_from) == (tmp.serial, D + "/data", "renamed",
                                                                           D + "/data.tmp")
    assert (moved.dirty_bytes, moved.ever_synced, moved.sync_p50_us, moved.sync_max_us) == (0, True, 500, 500)

    # Unlinked: shown deleted, as it was, and kept so by the next ranking.
    s.ev("unlink", path=D + "/data")
    fd = s.open(D + "/other")
    s.write(fd, D + "/other")
    done = fed(engine, s, done)
    third = take_snapshot(engine, second, keep=10, rank=False)
    assert [(r.path, r.state, r.writes) for r in third.files] == [(D + "/data", "deleted", 3)]
    ranked = take_snapshot(engine, third, keep=10)
    assert [(r.path, r.state) for r in ranked.files] == [(D + "/data", "deleted"), (D + "/other", "dirty")]
    # keep=0, for the progress line: no rows, the files the report counts (written or synced,
    # not deleted).
    counted = take_snapshot(engine, keep=0)
    assert counted.files == () and counted.files_reported == 1
    # keep: only the busiest.
    assert [r.path for r in take_snapshot(engine, ranked, keep=1).files] == [D + "/data"]


def test_a_row_renamed_over_shows_as_it_was_until_the_next_ranking():
    s, engine = Stream(), Engine()
    s.save(D + "/data")
    done = fed(engine, s, 0)
    before = take_snapshot(engine, keep=10)
    old = row(before, D + "/data")
    s.save(D + "/data")
    fed(engine, s, done)
    after = take_snapshot(engine, before, keep=10, rank=False)
    assert after.files == before.files            # the replaced file, not deleted: as it was
    ranked = take_snapshot(engine, after, keep=10)
    [new] = ranked.files
    assert new.path == D + "/data" and new.serial != old.serial and new.state == "renamed"


def test_findings_and_counts():
    s, engine = Stream(), Engine()
    s.save(D + "/data", fsync=False)
    s.ev("lost", pid=0, count=7)
    done = fed(engine, s, 0)
    first = take_snapshot(engine, keep=10)
    [finding] = [f for f in first.findings if f.rule == "FS101"]
    assert finding.count == 1 and finding.target_path == D + "/data"
    assert first.marked[D + "/data"] == finding.severity == "error"
    assert first.lost_events == 7 and first.events == len(s.events)
    # Unchanged findings keep their rows; one counted again gets a new one.
    again = take_snapshot(engine, first, keep=10, rank=False)
    assert again.findings == first.findings and all(a is b for a, b in zip(again.findings, first.findings))
    s.save(D + "/data", fsync=False)
    fed(engine, s, done)
    later = take_snapshot(engine, again, keep=10, rank=False)
    assert [f.count for f in later.findings if f.rule == "FS101"] == [2]


def test_rows_moved_beyond_what_the_engine_keeps_are_found_by_the_next_ranking():
    s, engine = Stream(), Engine()
    engine.recent_moves = deque(maxlen=1)
    for name in ("a", "x"):
        fd = s.open(f"{D}/{name}")
        s.write(fd, f"{D}/{name}", calls=2 if name == "a" else 1)
    done = fed(engine, s, 0)
    before = take_snapshot(engine, keep=1)
    assert [r.path for r in before.files] == [D + "/a"]
    s.rename(D + "/a", D + "/b")
    s.rename(D + "/x", D + "/y")       # a second move: the first is no longer kept
    fed(engine, s, done)
    stale = take_snapshot(engine, before, keep=1, rank=False)
    assert [(r.path, r.state) for r in stale.files] == [(D + "/a", "dirty")]      # as last seen
    assert [r.path for r in take_snapshot(engine, stale, keep=1).files] == [D + "/b"]


def test_a_file_renamed_then_unlinked_while_shown_reads_renamed_then_deleted(pane, tmp_path):
    """Lock-step with the command through a FIFO: it saves (write, sync, rename), waits; once
    the dashboard shows the file renamed, it is unlinked; once shown deleted, the command ends."""
    step = tmp_path / "step"
    os.mkfifo(step)
    script = "printf data > a.tmp && sync a.tmp && mv a.tmp a && read x < step && rm a && read x < step"
    screen = test_live.traced_in_pane(pane, tmp_path, "--live", "--", "sh", "-c", script)
    labelled = re.compile(r"│ a ← a\.tmp +(\w+) ")

    def wait_for(state: str) -> None:
        deadline = time.monotonic() + 30
        while True:
            frame = screen.capture()
            if test_live.LIVE_KEYS in frame and state in labelled.findall(frame):
                return
            assert time.monotonic() < deadline and not screen.dead(), f"never shown {state}:\n{frame}"
            time.sleep(0.1)

    wait_for("renamed")
    step.write_text("\n")
    wait_for("deleted")
    step.write_text("\n")
    _, final = screen.frames_until_exit()
    assert (tmp_path / "status.txt").read_text().strip() == "0", final
    assert "deleted" in labelled.findall(final)         # the settled Files panel keeps it

