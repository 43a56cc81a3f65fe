"""Runs of sends under the real tracer: the probe folds one thread's full sends on one
socket as it folds writes, and what the events, the report and the timeline count is
still the kernel's truth, call for call and byte for byte (tests/programs/sends.c)."""

from __future__ import annotations

ROUNDS = 2000


def truth(stdout: str) -> dict[str, tuple[int, int, int]]:
    """sends.c's own counts: name -> (fd, calls that returned > 0, their bytes)."""
    return {name: (int(fd), int(calls), int(nbytes))
            for name, fd, calls, nbytes in (line.split() for line in stdout.splitlines())}


def test_send_runs_count_every_send_and_byte(trace, build, tmp_path):
    exe = build("sends", "-pthread")
    t = trace([str(exe), str(tmp_path / "records.dat"), str(ROUNDS)], "--html", str(tmp_path / "report.html"))
    assert t.returncode == 0, t.stderr
    assert t.report["counts"]["lost_events"] == 0
    counts = truth(t.stdout)
    sent = [e for e in t.of("sendto") if isinstance(e["ret"], int) and e["ret"] > 0]
    for name in ("unix", "tcp", "udp"):
        fd, calls, nbytes = counts[name]
        events = [e for e in sent if e["fd"] == fd]
        assert (sum(e.get("calls", 1) for e in events), sum(e["ret"] for e in events)) == (calls, nbytes), name
        assert all(e.get("bytes", e["ret"]) == e["ret"] and e["kind"] == "socket" for e in events)
    # Folded: send() and sendto without an address on a connected socket, between the
    # file's writes; each sendto to an address is its own event.
    assert len([e for e in sent if e["fd"] == counts["unix"][0]]) <= ROUNDS
    assert len([e for e in sent if e["fd"] == counts["tcp"][0]]) <= ROUNDS
    assert all("calls" not in e for e in sent if e["fd"] == counts["udp"][0])
    runs = [e for e in sent if e.get("calls", 1) > 1]
    assert runs and all(e["t_first"] <= e["t"] and e["size_max"] <= e["bytes"] for e in runs)
    # The send on the shut connection failed: its own event, with its error.
    assert [e["ret"] for e in t.of("sendto", fd=counts["tcp"][0]) if not isinstance(e["ret"], int)] == ["EPIPE"]
    fd, calls, nbytes = counts["socket-writes"]
    writes = t.of("write", fd=fd, kind="socket")
    assert (sum(e["calls"] for e in writes), sum(e["bytes"] for e in writes)) == (calls, nbytes)
    # The process's calls and the timeline's sends, as the report has them.
    sends = sum(c for _, c, _ in counts.values())
    (process,) = [p for p in t.report["timeline"]["processes"]]
    marks = [m for m in process["marks"] if m["kind"] == "send"]
    assert (sum(m["count"] for m in marks), sum(m.get("bytes", 0) for m in marks)) == (
        sends, sum(b for _, _, b in counts.values()))


CLEAN_ROUNDS, PUBLISH_ROUND = 300, 100


def test_a_clean_senders_run_outlasts_other_processes_events_but_not_a_window(trace, build, tmp_path):
    """clean_sender.c: a process with nothing unsynced sends once a round while its child
    writes and fdatasyncs between the sends. Its sends stay one run across the child's
    events (one record where the probe made one a round), counted send for send; but
    not across the child's rename: the send inside the rename's FS101 window is an
    acknowledgement in its place, and the window's error stands."""
    exe = build("clean_sender")
    t = trace([str(exe), str(tmp_path), str(CLEAN_ROUNDS), str(PUBLISH_ROUND)])
    assert t.returncode == 0, t.stderr
    assert t.report["counts"]["lost_events"] == 0
    (fd, calls, nbytes), = truth(t.stdout).values()
    (parent,) = {e["pid"] for e in t.of("exec")}
    sent = [e for e in t.of("sendto", fd=fd) if e["pid"] == parent]
    assert (sum(e.get("calls", 1) for e in sent), sum(e["ret"] for e in sent)) == (calls, nbytes)
    assert len(t.of("fdatasync")) == CLEAN_ROUNDS - 2
    # A record a round before; now a run until the rename, the send inside the window on
    # its own, then (the analysis has seen the window close during the pause) a run again.
    assert [e.get("calls", 1) for e in sent][:2] == [PUBLISH_ROUND + 1, 1]
    assert len(sent) <= 10, [e.get("calls", 1) for e in sent]
    (finding,) = [f for f in t.report["findings"] if f["rule"] == "FS101"]
    assert finding["severity"] == "error", finding
