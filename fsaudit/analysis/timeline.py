"""The timeline of a trace, for the HTML report: per file and per process, when each write
run, sync, rename, link, unlink and send happened, collected as a bounded digest.

Fed the same events as the engine, after it (Session.feed, live and replay alike), so a
replayed log draws what the live run drew. Bounded so that 100 000 files and 500 000
events still make a page that opens in seconds:
- calls on one lane that fall in one time bucket and say the same thing (kind, process,
  error, the other name) are one mark with a count. A lane keeps every call as its own
  mark until it holds MARKS of them; then it takes buckets wide enough to merge them down
  to half of that, wider each time it fills up again; once a bucket spans the whole lane,
  renames and links from different names are merged too, and marks of different processes;
- while collecting, past WORKING_LANES file lanes (or process lanes) half of them are
  folded into counts. Kept: the lanes of each rule's first finding; then lanes findings
  name, the most severe and busiest first, up to half of those kept; then the busiest (a
  directory whose finding comes only at the end is busy with the names changed in it).
  Of lanes alike, the oldest go. A path seen again after its lane was folded gets a new
  lane from then on, and counts again among those folded. The digest keeps LANES file
  lanes and PROCESS_LANES process lanes by the same choice, named by a finding first
  (errors before warnings before infos), then the busiest, then the first seen.
What was folded or merged is counted in the digest's `aggregated`, for the page to say so.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Callable, Iterable

from .grouping import SEVERITY_RANK
from .rules.base import (COPY_SYSCALLS, LINK_SYSCALLS, OPEN_SYSCALLS, RENAME_SYSCALLS, SEND_SYSCALLS,
                         UNLINK_SYSCALLS, WRITE_SYSCALLS, is_send)

LANES = 200             # file lanes in the digest
PROCESS_LANES = 100     # process lanes in the digest
MARKS = 100             # marks per lane
WORKING_LANES = 4 * LANES       # lanes of one kind kept while collecting, before the lighter half is folded
UNRANKED = len(SEVERITY_RANK)   # the rank of a lane no finding names

# A mark is a tuple (made once per call on the hot path, where a class's __init__ took 7%
# of the collector's time): what one call or one bucket of merged calls drew.
#   (kind, t, end, count, bytes, latency_us, pid, error, injected, direction, peer)
# direction is "to" (this name went to peer) or "from" (peer came to this name), for
# renames and links; pid and peer are None when the calls merged had several.
_T = itemgetter(1)


def _parent(path: str) -> str:
    """The directory of an absolute path (os.path.dirname's answer at a third of its cost),
    or "" (no lane) for a name without one."""
    slash = path.rfind("/")
    return (path[:slash] or "/") if slash >= 0 else ""


def _merge(a: tuple, b: tuple) -> tuple:
    latency = a[5] if b[5] is None or (a[5] is not None and a[5] >= b[5]) else b[5]
    return (a[0], min(a[1], b[1]), max(a[2], b[2]), a[3] + b[3], a[4] + b[4], latency,
            a[6] if a[6] == b[6] else None, a[7], a[8], a[9], a[10] if a[10] == b[10] else None)


def _mark_document(mark: tuple) -> dict:
    kind, t, end, count, nbytes, latency, pid, error, injected, direction, peer = mark
    out = {"kind": kind, "t": t}
    if end != t:
        out["end"] = end
    out["count"] = count
    if nbytes:
        out["bytes"] = nbytes
    if latency is not None:
        out["latency_us"] = latency
    out["pid"] = pid
    if error is not None:
        out["error"] = error
    if injected:
        out["injected"] = True
    if direction is not None:
        out[direction] = peer
    return out


class Lane:
    """One file or directory, and its marks."""

    __slots__ = ("key", "is_dir", "calls", "events", "marks", "width", "coarse")

    def __init__(self, key, is_dir: bool = False) -> None:
        self.key, self.is_dir = key, is_dir
        self.calls = self.events = 0
        self.marks: list[tuple] = []
        self.width = 0.0            # seconds per bucket; 0: every call its own mark so far
        self.coarse = False         # merging across processes and other names too

    def add(self, mark: tuple) -> None:
        self.calls += mark[3]
        self.events += 1
        marks = self.marks
        width = self.width
        if width and marks:     # into the latest mark, when it says the same in the same bucket
            last = marks[-1]
            if (last[0] == mark[0] and last[7:10] == mark[7:10] and int(last[1] // width) == int(mark[1] // width)
                    and (self.coarse or (last[6] == mark[6] and last[10] == mark[10]))):
                marks[-1] = _merge(last, mark)
                return
        marks.append(mark)
        if len(marks) > MARKS:
            self._compact()

    @property
    def bytes(self) -> int:
        return sum(mark[4] for mark in self.marks)

    def _compact(self) -> None:
        """Wider buckets until the lane holds at most half of MARKS, so that the next
        compaction waits for as many new marks."""
        marks = sorted(self.marks, key=_T)
        span = max(mark[2] for mark in marks) - marks[0][1]
        width = self.width or max(span / MARKS, 1e-6)
        while True:
            buckets: dict[tuple, tuple] = {}
            coarse = self.coarse
            for mark in marks:
                key = (int(mark[1] // width), mark[0], mark[7], mark[8], mark[9])
                if not coarse:
                    key += (mark[6], mark[10])
                into = buckets.get(key)
                buckets[key] = mark if into is None else _merge(into, mark)
            marks = sorted(buckets.values(), key=_T)
            if len(marks) <= MARKS // 2 or (coarse and width > span):   # or as merged as marks can be
                break
            if width > span:
                self.coarse = True
            else:
                width *= 2
        self.marks, self.width = marks, width

    def document(self) -> dict:
        return {"path": self.key, "dir": self.is_dir, **self._drawn()}

    def _drawn(self) -> dict:
        return {"calls": self.calls, "bytes": self.bytes, "events": self.events, "bucket_s": self.width,
                "marks": [_mark_document(mark) for mark in sorted(self.marks, key=_T)]}


class ProcessLane(Lane):
    """One process: its marks, from its first event seen to its exit."""

    __slots__ = ("start", "end", "exit")

    def __init__(self, pid: int, start: float) -> None:
        super().__init__(pid)
        self.start, self.end, self.exit = start, None, None

    def document(self) -> dict:
        return {"pid": self.key, "start": self.start, "end": self.end, "exit": self.exit, **self._drawn()}


class Lanes:
    """Lanes of one kind by key, at most WORKING_LANES of them (see the module's docstring).
    flags() gives the lane keys findings name: (key -> rank of the most severe, the keys
    of each rule's first finding)."""

    def __init__(self, flags: Callable[[], tuple[dict, set]]) -> None:
        self.lanes: dict = {}
        self._flags = flags
        self.folded = self.folded_calls = self.folded_bytes = 0

    def add(self, lane: Lane) -> Lane:
        if len(self.lanes) >= WORKING_LANES:
            # Of lanes alike, the oldest go: a new one is likely to see more (a rename after its write).
            self.keep(WORKING_LANES // 2, reversed(self.lanes.values()))
        self.lanes[lane.key] = lane
        return lane

    def keep(self, limit: int, lanes: Iterable[Lane] | None = None) -> list[Lane]:
        """Fold all lanes but limit of them: the lanes of each rule's first finding; then
        those findings name, the most severe and busiest first, up to half of limit; then
        the busiest. Lanes alike stay in the order of `lanes` (default: the first seen
        first). Returns those kept: named by a finding first, then the busiest."""
        ranks, firsts = self._flags()
        lanes = list(self.lanes.values() if lanes is None else lanes)

        def weight(lane: Lane) -> tuple:
            return ranks.get(lane.key, UNRANKED), -lane.calls

        chosen = {lane.key for lane in lanes if lane.key in firsts}
        for lane in sorted(lanes, key=weight):
            if len(chosen) >= limit // 2 or lane.key not in ranks:
                break
            chosen.add(lane.key)
        for lane in sorted(lanes, key=lambda lane: -lane.calls):
            if len(chosen) >= limit:
                break
            chosen.add(lane.key)
        for lane in lanes:
            if lane.key not in chosen:
                del self.lanes[lane.key]
                self.folded += 1
                self.folded_calls += lane.calls
                self.folded_bytes += lane.bytes
        return sorted(self.lanes.values(), key=weight)


class Timeline:
    """in_scope: the engine's scope (Engine.in_scope); findings: the engine's findings so
    far (Engine.findings), read only when lanes are folded and for the digest: those made
    since the last fold, unless one was removed since (its `removed` count; a list: never)."""

    def __init__(self, in_scope: Callable[[str], bool], findings: Callable[[], list]) -> None:
        self._in_scope = in_scope
        self._findings = findings
        # The flags of the findings read so far: most of them are on disk (fsaudit.analysis.findings),
        # and a fold every few hundred lanes that read them all made --html quadratic.
        self._ranks: dict = {}
        self._firsts: set = set()
        self._rules: set = set()
        self._read = (0, 0)         # (findings read, their `removed` count then)
        self.files = Lanes(self._flags)
        self.processes = Lanes(self._flags)
        self._file_lanes, self._process_lanes = self.files.lanes, self.processes.lanes
        self.lost = Lane("lost")
        self.out_of_scope = 0       # calls on files outside the scope, not drawn
        self.start = self.end = None
        self._handlers: dict[str, Callable[[dict, float, Lane], None]] = {
            "fsync": self._sync, "fdatasync": self._sync, "sync_file_range": self._file_tick,
            "msync": self._file_tick, "truncate": self._truncate, "ftruncate": self._truncate,
            "mmap": self._mmap, "stdio_lost": self._stdio_lost, "sync": self._process_tick,
            "syncfs": self._process_tick, "exec": self._process_tick, "exit": self._exit, "fork": self._fork,
            "mkdir": self._mkdir, "mkdirat": self._mkdir,
        }
        for names, handler in ((WRITE_SYSCALLS, self._write), (COPY_SYSCALLS, self._write),
                               (SEND_SYSCALLS, self._send), (RENAME_SYSCALLS, self._rename),
                               (LINK_SYSCALLS, self._link), (UNLINK_SYSCALLS, self._unlink),
                               (OPEN_SYSCALLS, self._open)):
            self._handlers.update(dict.fromkeys(names, handler))

    def feed(self, event: dict) -> None:
        syscall = event["syscall"]
        pid = event.get("pid", 0)
        if not pid:         # the tracer's own records: lost events
            if syscall == "lost":
                self.lost.add(("lost", event["t"], event["t"], event.get("count", 0), 0, None, None, None, False,
                               None, None))
            return
        if syscall == "inherit":    # not a call: an fd the process had, recorded once tracing began
            return
        t = event["t"]
        process = self._process_lanes.get(pid) or self.processes.add(ProcessLane(pid, t))
        process.calls += event.get("calls", 1)
        if t < process.start:
            process.start = t
        if self.end is None:
            self.start = self.end = t
        elif t > self.end:
            self.end = t
        elif t < self.start:
            self.start = t
        handler = self._handlers.get(syscall)
        if handler is not None:
            handler(event, t, process)

    def digest(self) -> dict:
        self._read = (0, 0)     # all of them again: the end of observation may have changed severities
        files = self.files.keep(LANES)
        processes = self.processes.keep(PROCESS_LANES)
        drawn = files + processes + [self.lost]
        return {
            "start": self.start, "end": self.end,
            "files": [lane.document() for lane in files],
            "processes": [lane.document() for lane in processes],
            "lost": self.lost.document()["marks"],
            "aggregated": {
                "file_lanes": self.files.folded, "file_calls": self.files.folded_calls,
                "file_bytes": self.files.folded_bytes,
                "process_lanes": self.processes.folded, "process_calls": self.processes.folded_calls,
                "out_of_scope_calls": self.out_of_scope,
                "events_drawn": sum(lane.events for lane in drawn),
                "marks": sum(len(lane.marks) for lane in drawn),
            },
            "limits": {"file_lanes": LANES, "process_lanes": PROCESS_LANES, "marks_per_lane": MARKS},
        }

    def _flags(self) -> tuple[dict, set]:
        """The lane keys (paths, pids) the findings so far name: key -> the rank of the most
        severe naming it; and those of each rule's first finding."""
        findings = self._findings()
        read, removed = self._read
        if read > len(findings) or removed != getattr(findings, "removed", 0) or not read:
            self._ranks, self._firsts, self._rules, read = {}, set(), set(), 0
        ranks, firsts, rules = self._ranks, self._firsts, self._rules
        for finding in findings[read:]:
            rank = SEVERITY_RANK[finding.severity]
            keys = (finding.path, finding.target_path, finding.pid)
            if finding.rule not in rules:
                rules.add(finding.rule)
                firsts.update(keys)
            for key in keys:
                if key is not None and rank < ranks.get(key, UNRANKED):
                    ranks[key] = rank
        self._read = (len(findings), getattr(findings, "removed", 0))
        return ranks, firsts

    # Lanes.

    def _file(self, path: str | None, count: int = 1, is_dir: bool = False) -> Lane | None:
        """path's lane, or None when it is not drawn (out of scope: its calls are counted)."""
        lane = self._file_lanes.get(path)
        if lane is not None:
            if is_dir:
                lane.is_dir = True
            return lane
        if not path:
            return None
        if not self._in_scope(path):
            self.out_of_scope += count
            return None
        return self.files.add(Lane(path, is_dir))

    @staticmethod
    def _mark(kind: str, event: dict, t: float, count: int = 1, nbytes: int = 0, start: float | None = None,
              direction: str | None = None, peer: str | None = None) -> tuple:
        ret = event.get("ret")
        return (kind, t if start is None else start, t, count, nbytes, event.get("latency_us"), event["pid"],
                ret if ret.__class__ is str else None, "injected" in event, direction, peer)

    def _entry(self, directory: str, event: dict, t: float) -> None:
        """A name in directory changed: a mark on the directory's lane."""
        lane = self._file(directory, is_dir=True)
        if lane is not None:
            lane.add(("entry", t, t, 1, 0, None, event["pid"], None, False, None, None))

    # One handler per kind of call: (event, its t, the process's lane).

    def _write(self, event: dict, t: float, process: Lane) -> None:
        kind = event.get("kind")
        if kind != "file":
            if kind == "socket":
                self._send(event, t, process)
            return
        calls = event.get("calls", 1)
        lane = self._file(event.get("path"), calls)
        if lane is not None:
            ret = event.get("ret")
            nbytes = event.get("bytes") or (ret if ret.__class__ is int else 0)
            lane.add(self._mark("write", event, t, calls, nbytes, event.get("t_first")))

    def _send(self, event: dict, t: float, process: Lane) -> None:
        if is_send(event):
            process.add(self._mark("send", event, t, event.get("calls", 1), event["ret"], event.get("t_first")))

    def _sync(self, event: dict, t: float, process: Lane) -> None:
        kind = event.get("kind")
        if kind == "file" or kind == "dir":
            lane = self._file(event.get("path"), is_dir=kind == "dir")
            if lane is not None:
                lane.add(self._mark(event["syscall"], event, t))

    def _file_tick(self, event: dict, t: float, process: Lane, kind: str | None = None) -> None:
        if event.get("kind", "file") == "file":
            lane = self._file(event.get("path"))
            if lane is not None:
                lane.add(self._mark(kind or event["syscall"], event, t))

    def _truncate(self, event: dict, t: float, process: Lane) -> None:
        self._file_tick(event, t, process, "truncate")

    def _mmap(self, event: dict, t: float, process: Lane) -> None:
        if "MAP_SHARED" in event.get("flags", ()) and "PROT_WRITE" in event.get("prot", ()):
            self._file_tick(event, t, process)

    def _stdio_lost(self, event: dict, t: float, process: Lane) -> None:
        lane = self._file(event.get("path")) if event.get("kind") == "file" else None
        if lane is not None:
            lane.add(self._mark("stdio_lost", event, t, nbytes=event.get("bytes") or 0))

    def _process_tick(self, event: dict, t: float, process: Lane) -> None:
        process.add(self._mark(event["syscall"], event, t))

    def _open(self, event: dict, t: float, process: Lane) -> None:
        flags = event.get("flags", ())
        if "O_CREAT" not in flags and "O_TRUNC" not in flags:
            return
        path = event.get("path")
        if event.get("kind") != "file" or not path or event.get("ret").__class__ is str:
            return
        if "O_CREAT" in flags and (event.get("created") or "O_EXCL" in flags):
            lane = self._file(path)
            if lane is not None:
                lane.add(self._mark("create", event, t))
                self._entry(_parent(path), event, t)
        elif "O_TRUNC" in flags and event.get("existed"):
            lane = self._file(path)
            if lane is not None:
                lane.add(self._mark("truncate", event, t))

    def _mkdir(self, event: dict, t: float, process: Lane) -> None:
        path = event.get("path")
        if path and event.get("ret").__class__ is not str:
            lane = self._file(path, is_dir=True)
            if lane is not None:
                lane.add(self._mark("create", event, t))
                self._entry(_parent(path), event, t)

    def _names(self, kind: str, event: dict, t: float) -> None:
        old, new = event.get("path"), event.get("path2")
        if not old or not new:
            return
        lane = self._file(old)
        if lane is not None:
            lane.add(self._mark(kind, event, t, direction="to", peer=new))
        lane = self._file(new)
        if lane is not None:
            lane.add(self._mark(kind, event, t, direction="from", peer=old))
        if event.get("ret").__class__ is not str:
            old_dir, new_dir = _parent(old), _parent(new)
            if kind == "rename":
                self._entry(old_dir, event, t)
            if kind == "link" or new_dir != old_dir:
                self._entry(new_dir, event, t)

    def _rename(self, event: dict, t: float, process: Lane) -> None:
        self._names("rename", event, t)

    def _link(self, event: dict, t: float, process: Lane) -> None:
        self._names("link", event, t)

    def _unlink(self, event: dict, t: float, process: Lane) -> None:
        path = event.get("path")
        lane = self._file(path)
        if lane is not None:
            lane.add(self._mark("unlink", event, t))
            if event.get("ret").__class__ is not str:
                self._entry(_parent(path), event, t)

    # Processes.

    def _fork(self, event: dict, t: float, process: Lane) -> None:
        child = event.get("child")
        if child:
            lane = self._process_lanes.get(child) or self.processes.add(ProcessLane(child, t))
            if t < lane.start:
                lane.start = t

    def _exit(self, event: dict, t: float, process: Lane) -> None:
        process.end = t
        process.exit = {"code": event.get("code"), "signal": event.get("signal")}
