"""The BPF ring buffer read directly through its memory map, in bulk.

bcc's reader calls back into Python once per record, so draining costs as
much per event as the slowest consumer. Here draining is a copy of the whole
committed region (the kernel maps the data pages twice, so it is contiguous
even when it wraps) and a walk over the record headers: the ring is emptied
in microseconds however far analysis lags behind, and the lag waits in a
backlog in fsaudit's memory instead of overflowing the kernel's buffer.
"""

from __future__ import annotations

import mmap
import select
import struct
from collections import deque

BUSY_BIT, DISCARD_BIT = 1 << 31, 1 << 30   # linux/bpf.h BPF_RINGBUF_*_BIT
HEADER = struct.Struct("=II")              # len (with the bits above), page offset


class RingReader:
    """Consumes a BPF_MAP_TYPE_RINGBUF map of data_size bytes (a power-of-2 number of pages)."""

    def __init__(self, map_fd: int, data_size: int) -> None:
        page = mmap.PAGESIZE
        self._consumer = mmap.mmap(map_fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._producer = mmap.mmap(map_fd, page + 2 * data_size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
        # The positions are read and written as whole aligned words (atomic,
        # and acquire/release under x86-64's ordering). struct.pack_into
        # stores byte by byte: a producer that read a half-written consumer
        # position saw a full ring and dropped its record.
        self._consumer_pos = memoryview(self._consumer).cast("Q")
        self._producer_pos = memoryview(self._producer).cast("Q")
        self._data = memoryview(self._producer)[page:]
        self._mask = data_size - 1
        self._epoll = select.epoll()
        self._epoll.register(map_fd, select.EPOLLIN)

    def wait(self, timeout_s: float) -> None:
        """Until the kernel forces a wake-up (once per batch of records) or the timeout."""
        self._epoll.poll(timeout_s)

    def take(self, limit: int) -> tuple[bytes, list[int]] | None:
        """The committed records (at most about limit bytes of them): one copy of
        their region and the offset of each record's payload in it. Frees their
        space in the ring."""
        consumer, producer = self._consumer_pos[0], self._producer_pos[0]
        start, position, offsets = consumer & self._mask, consumer, []
        header, data = HEADER.unpack_from, self._data
        while position < producer and position - consumer < limit:
            length = header(data, position & self._mask)[0]
            if length & BUSY_BIT:   # reserved, not yet submitted: later records wait for it
                break
            if length & DISCARD_BIT:
                length &= ~DISCARD_BIT
            else:
                offsets.append(position - consumer + HEADER.size)
            position += (length + HEADER.size + 7) & ~7
        if position == consumer:
            return None
        chunk = bytes(data[start:start + position - consumer])
        self._consumer_pos[0] = position
        return chunk, offsets

    def close(self) -> None:
        self._epoll.close()
        for view in (self._data, self._consumer_pos, self._producer_pos):
            view.release()
        self._producer.close()
        self._consumer.close()


class Backlog:
    """Records copied out of the ring and not yet analysed, oldest first:
    (chunk, offsets) from RingReader.take, or lists of ready records."""

    def __init__(self) -> None:
        self._parts: deque = deque()
        self.size = 0   # bytes of ring chunks held

    def __bool__(self) -> bool:
        return bool(self._parts)

    def add_chunk(self, chunk: bytes, offsets: list[int]) -> None:
        self._parts.append([chunk, offsets, 0])
        self.size += len(chunk)

    def add_records(self, records: list) -> None:
        if records:
            self._parts.append([None, records, 0])

    def next(self, count: int, unpack_from) -> list:
        """Up to count records, oldest first; ring records unpacked by unpack_from(chunk, offset)."""
        out: list = []
        while self._parts and len(out) < count:
            part = self._parts[0]
            chunk, items, done = part
            end = min(len(items), done + count - len(out))
            if chunk is None:
                out.extend(items[done:end])
            else:
                out.extend(unpack_from(chunk, offset) for offset in items[done:end])
            if end == len(items):
                self._parts.popleft()
                if chunk is not None:
                    self.size -= len(chunk)
            else:
                part[2] = end
        return out
