"""The BPF ring buffer read directly through its memory map, in bulk.

bcc's reader calls back into Python once per record, so draining costs as
much per event as the slowest consumer. Here draining is a copy of the whole
committed region (in two pieces when it wraps past the ring's end) and a walk
over the record headers: the ring is emptied
in microseconds however far analysis lags behind, and the lag waits in a
backlog (memory, then a temporary file) instead of overflowing the kernel's
buffer.
"""

from __future__ import annotations

import mmap
import os
import pickle
import select
import struct
import tempfile
from array import array
from collections import deque
from typing import IO

from .record import EV_PYCODE, EV_WRITE_RUN

BUSY_BIT, DISCARD_BIT = 1 << 31, 1 << 30   # linux/bpf.h BPF_RINGBUF_*_BIT
HEADER = struct.Struct("=II")              # len (with the bits above), page offset
SPILL_HEADER = struct.Struct("=BII")       # Backlog's file: kind, chunk size, payload size
SPILLED_CHUNK, SPILLED_RECORDS = 1, 2


class RingReader:
    """Consumes a BPF_MAP_TYPE_RINGBUF map of data_size bytes (a power-of-2 number of pages)."""

    def __init__(self, map_fd: int, data_size: int) -> None:
        page = mmap.PAGESIZE
        self._consumer = mmap.mmap(map_fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        # The data pages once: the kernel offers them twice in a row (a record that wraps reads
        # as one), but maps every page at mmap, and each mapping counts in fsaudit's RSS
        # (16 MiB more for the default ring). take() copies a region that wraps in two pieces.
        self._producer = mmap.mmap(map_fd, page + data_size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
        self._view(self._consumer, self._producer, page)
        self._epoll = select.epoll()
        self._epoll.register(map_fd, select.EPOLLIN)
        self._records = select.epoll()        # the ring alone, for wait_records()
        self._records.register(map_fd, select.EPOLLIN)

    def _view(self, consumer, producer, page: int) -> None:
        """Read the ring through consumer (its position's page) and producer (the producer's
        position's page, then the data): the kernel's maps, or a test's buffers."""
        # The positions are read and written as whole aligned words (atomic,
        # and acquire/release under x86-64's ordering). struct.pack_into
        # stores byte by byte: a producer that read a half-written consumer
        # position saw a full ring and dropped its record.
        self._consumer_pos = memoryview(consumer).cast("Q")
        self._producer_pos = memoryview(producer).cast("Q")
        self._data = memoryview(producer)[page:]
        # The data as 32-bit words: a record header's length is words[offset >> 2]
        # (records are 8-byte aligned), a third of the time of unpacking it.
        self._words = self._data.cast("I")
        self._size = len(self._data)
        self._mask = self._size - 1

    def wait(self, timeout_s: float) -> None:
        """Until the kernel forces a wake-up (once per batch of records), a file
        given to wake_on() is readable, or the timeout."""
        self._epoll.poll(timeout_s)

    def wait_records(self, timeout_s: float) -> None:
        """Like wait(), for the kernel's wake-up or the timeout only."""
        self._records.poll(timeout_s)

    def wake_on(self, fd: int) -> None:
        """Have wait() also return while fd is readable: a request from another
        process is then served at once, not after the timeout."""
        self._epoll.register(fd, select.EPOLLIN)

    def take(self) -> tuple[bytes, list[int]] | None:
        """The committed records: one copy of their region and the offset of
        each record's payload in it. Frees their space in the ring."""
        consumer, producer = self._consumer_pos[0], self._producer_pos[0]
        mask, words, header_size = self._mask, self._words, HEADER.size
        start, position, offsets = consumer & mask, consumer, []
        while position < producer:
            length = words[(position & mask) >> 2]
            if length & BUSY_BIT:   # reserved, not yet submitted: later records wait for it
                break
            if length & DISCARD_BIT:
                length &= ~DISCARD_BIT
            else:
                offsets.append(position - consumer + header_size)
            position += (length + header_size + 7) & ~7
        if position == consumer:
            return None
        end = start + position - consumer
        if end <= self._size:
            chunk = bytes(self._data[start:end])
        else:       # a record's header never straddles the end (8-byte aligned); its data may
            chunk = b"".join((self._data[start:], self._data[:end - self._size]))
        self._consumer_pos[0] = position
        return chunk, offsets

    def close(self) -> None:
        self._epoll.close()
        self._records.close()
        for view in (self._words, self._data, self._consumer_pos, self._producer_pos):
            view.release()
        self._producer.close()
        self._consumer.close()


class Backlog:
    """Records copied out of the ring and not yet analysed, oldest first: ring
    chunks (chunk, offsets from RingReader.take) and lists of ready records.

    Up to memory_limit bytes of chunks wait in memory; past that, parts go to
    an unlinked temporary file (in $TMPDIR) until analysis has read them all
    back, so memory stays bounded and nothing is dropped while the file can
    grow. A part the file refuses waits in memory after it, and `accepting`
    turns false: the caller leaves records in the ring, where the kernel
    counts what it then has to drop."""

    def __init__(self, memory_limit: int) -> None:
        self.memory_limit = memory_limit
        self.size = 0                  # bytes of chunks in memory
        self.spilled_bytes = 0         # written to the file since tracing began
        self._parts: deque = deque()   # [chunk or None, offsets or records, how many analysed]
        self._refused: deque = deque()  # parts newer than the file's that it could not take
        self._spill: IO[bytes] | None = None
        self._spill_read = self._spill_end = 0

    def __bool__(self) -> bool:
        return bool(self._parts or self._spill_end or self._refused)

    @property
    def accepting(self) -> bool:
        return not self._refused

    def add_chunk(self, chunk: bytes, offsets: list[int]) -> None:
        fits = self.size + len(chunk) <= self.memory_limit
        if self._keep([chunk, offsets, 0], fits, SPILLED_CHUNK, len(chunk),
                      lambda: chunk + array("I", offsets).tobytes()):
            self.size += len(chunk)

    def add_records(self, records: list) -> None:
        if records:
            self._keep([None, records, 0], True, SPILLED_RECORDS, 0, lambda: pickle.dumps(records))

    def _keep(self, part: list, fits: bool, kind: int, chunk_size: int, payload) -> bool:
        """Queue part after every other: in memory while it fits and nothing waits
        in the file, else in the file, else refused. True if it stays in memory."""
        if fits and not self._spill_end and not self._refused:
            self._parts.append(part)
            return True
        if not self._refused and self._write(kind, chunk_size, payload()):
            return False
        self._refused.append(part)
        return True

    def _write(self, kind: int, chunk_size: int, payload: bytes) -> bool:
        """Append a part to the file, after every part already there; False if it cannot."""
        entry = SPILL_HEADER.pack(kind, chunk_size, len(payload)) + payload
        try:
            if self._spill is None:
                self._spill = tempfile.TemporaryFile(prefix="fsaudit-backlog-")
            written = os.pwrite(self._spill.fileno(), entry, self._spill_end)
        except OSError:
            return False
        if written != len(entry):   # the file system is full
            return False
        self._spill_end += written
        self.spilled_bytes += written
        return True

    def _load(self) -> None:
        """Bring the oldest part in the file back into memory; empty the file once all are back."""
        fd = self._spill.fileno()
        kind, chunk_size, length = SPILL_HEADER.unpack(os.pread(fd, SPILL_HEADER.size, self._spill_read))
        payload = os.pread(fd, length, self._spill_read + SPILL_HEADER.size)
        self._spill_read += SPILL_HEADER.size + length
        if kind == SPILLED_CHUNK:
            chunk = payload[:chunk_size]
            self._parts.append([chunk, array("I", payload[chunk_size:]).tolist(), 0])
            self.size += len(chunk)
        else:
            self._parts.append([None, pickle.loads(payload), 0])
        if self._spill_read == self._spill_end:
            os.ftruncate(fd, 0)
            self._spill_read = self._spill_end = 0

    def next(self, count: int, unpack_all) -> list:
        """Up to count records, oldest first; ring records unpacked by unpack_all(chunk, offsets)."""
        out: list = []
        while len(out) < count:
            if not self._parts:
                if self._spill_end:
                    self._load()
                elif self._refused:
                    self._parts, self._refused = self._refused, deque()
                else:
                    break
            part = self._parts[0]
            chunk, items, done = part
            end = min(len(items), done + count - len(out))
            if chunk is None:
                out.extend(items[done:end])
            else:
                out.extend(unpack_all(chunk, items[done:end]))
            if end == len(items):
                self._parts.popleft()
                if chunk is not None:
                    self.size -= len(chunk)
            else:
                part[2] = end
        return out

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()


# Records that take no epoch of their own: they belong right after the record whose
# epoch they carry (a write run after the event it began behind, a code object before
# the event whose stack names it).
NO_EPOCH = frozenset({EV_WRITE_RUN, EV_PYCODE})
# How long a missing epoch is waited for: a record takes microseconds from its epoch
# to the ring (its program runs with preemption off), so one missing for this long
# was lost (the ring was full), and what follows it goes on.
GAP_PATIENCE_S = 0.5


def kernel_order(rec: tuple) -> tuple[int, bool]:
    # A Record's epoch and whether it is a write run, by position: the sort key of every record.
    return rec[5], rec[4] == EV_WRITE_RUN


class KernelOrder:
    """Hands records out in the kernel's order, across the batches they are read in.

    Every record of a syscall, fork, exec or exit takes the next number of one
    counter shared by all CPUs, its epoch, so the epochs have no gaps; but records
    reach the ring in the order their CPUs finished writing them, and a batch can
    end before a record whose epoch is lower than some the batch holds (a send
    handed out after a write that came after it). A record is handed out once every
    epoch before its own has been; the rest wait for the next batch. A gap that
    stays (the kernel lost the record) is passed over once the kernel has counted a
    loss, after GAP_PATIENCE_S, or at the end. A write run whose event was handed
    out long ago (its thread wrote, then made no call for a while) goes out as it
    arrives: its place has passed."""

    def __init__(self) -> None:
        self._held: list = []
        self._next = 1                    # the lowest epoch not yet handed out
        self._gap: tuple[int, float] | None = None   # the epoch waited for, since when

    def __len__(self) -> int:
        return len(self._held)

    @property
    def handed_out(self) -> int:
        """The highest epoch handed out: every record up to it has gone out."""
        return self._next - 1

    def order(self, records: list, now: float, lost: bool = False, final: bool = False) -> list:
        """The records (with those held back before) that can go out now, in order."""
        held = self._held
        held.extend(records)
        held.sort(key=kernel_order)
        expected, ready = self._next, len(held)
        for index, rec in enumerate(held):
            epoch = rec[5]
            if rec[4] in NO_EPOCH:
                if epoch >= expected:      # its event has not gone out yet
                    ready = index
                    break
            elif epoch == expected:
                expected += 1
            elif epoch > expected:
                ready = index
                break
            # a lower epoch: one an injected failure shared with a kernel event
        if ready == len(held):
            self._gap = None
        elif self._gap is None or self._gap[0] != expected:
            self._gap = (expected, now)
        if self._gap is not None and (final or lost or now - self._gap[1] >= GAP_PATIENCE_S):
            ready = len(held)
            expected = max(expected, max(rec[5] for rec in held) + 1)
            self._gap = None
        self._next = expected
        self._held = held[ready:]
        return held[:ready]

