"""The forwarder's bounded on-disk buffer: log lines in chunk files, oldest first.

Every line the forwarder accepts is written to a chunk file (fsync'd, then renamed into
place, so a chunk on disk is always whole) before it is sent, and the file is deleted
only once Kafka has acknowledged all its lines. A Kafka outage therefore needs no mode
of its own: chunks simply wait on disk, and drain in order when Kafka is back.

The buffer never holds more than ``limit_bytes`` on disk. When a new chunk would not
fit, the oldest chunk that is waiting (not being sent) is dropped and its lines
counted. Chunks being sent are never dropped: some of their lines may already be on
Kafka, and dropping them would make "dropped" and "delivered" overlap.

A chunk file: ``FGLC1\\n``, the line count (u32), each line's length (u32 each), then
the lines back to back. Lengths instead of newlines: a line may hold any bytes (a
malformed line must reach the lake as it was), newlines and invalid UTF-8 included.
"""

from __future__ import annotations

import bisect
import itertools
import os
import struct
import threading
from array import array
from dataclasses import dataclass, field
from pathlib import Path

MAGIC = b"FGLC1\n"
_COUNT = struct.Struct("<I")
HEADER_BYTES = len(MAGIC) + _COUNT.size
LINE_OVERHEAD = 4  # one u32 length per line
_SUFFIX, _TMP_SUFFIX = ".chunk", ".chunk.tmp"


class CorruptChunk(ValueError):
    """A chunk file that is not whole (only a crash mid-write or a hand edit makes one)."""


# --- the chunk file format -----------------------------------------------------------

def chunk_size(lines: list[bytes]) -> int:
    """The bytes a chunk of ``lines`` takes on disk."""
    return HEADER_BYTES + sum(len(line) for line in lines) + LINE_OVERHEAD * len(lines)


def encode_chunk(lines: list[bytes]) -> bytes:
    lengths = array("I", map(len, lines))
    if lengths.itemsize != 4:  # pragma: no cover - "I" is 4 bytes on every platform we run
        raise RuntimeError("array('I') is not 32-bit here")
    if array("I", [1]).tobytes() != (1).to_bytes(4, "little"):  # pragma: no cover - big-endian host
        lengths.byteswap()
    return b"".join((MAGIC, _COUNT.pack(len(lines)), lengths.tobytes(), *lines))


def decode_chunk(data: bytes) -> list[bytes]:
    if not data.startswith(MAGIC) or len(data) < HEADER_BYTES:
        raise CorruptChunk("no chunk header")
    (count,) = _COUNT.unpack_from(data, len(MAGIC))
    body = HEADER_BYTES + LINE_OVERHEAD * count
    if len(data) < body:
        raise CorruptChunk(f"header says {count} lines, the file is too short for their lengths")
    lengths = array("I")
    lengths.frombytes(data[HEADER_BYTES:body])
    if array("I", [1]).tobytes() != (1).to_bytes(4, "little"):  # pragma: no cover
        lengths.byteswap()
    if body + sum(lengths) != len(data):
        raise CorruptChunk(f"lengths add up to {sum(lengths)} bytes, the file holds {len(data) - body}")
    view = memoryview(data)
    ends = itertools.accumulate(lengths, initial=body)
    start = next(ends)
    lines = []
    for end in ends:
        lines.append(bytes(view[start:end]))
        start = end
    return lines


def write_chunk_file(path: Path, lines: list[bytes], fsync: bool = True) -> int:
    """Write ``lines`` as a chunk at ``path``, atomically: a temporary file, fsync'd, then
    renamed (and the directory fsync'd, so the rename survives a power cut). The size."""
    data = encode_chunk(lines)
    tmp = path.with_name(path.name[: -len(_SUFFIX)] + _TMP_SUFFIX)
    with open(tmp, "wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)
    if fsync:
        _fsync_dir(path.parent)
    return len(data)


def read_chunk_file(path: Path) -> list[bytes]:
    return decode_chunk(path.read_bytes())


def chunk_line_count(path: Path) -> int:
    """The line count from a chunk's header, without reading its lines."""
    with open(path, "rb") as fh:
        head = fh.read(HEADER_BYTES)
    if not head.startswith(MAGIC) or len(head) < HEADER_BYTES:
        raise CorruptChunk(f"{path.name}: no chunk header")
    return _COUNT.unpack_from(head, len(MAGIC))[0]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- the buffer ----------------------------------------------------------------------

@dataclass(eq=False)
class Chunk:
    seq: int
    path: Path
    size: int     # bytes on disk
    count: int    # lines in the file
    lines: list[bytes] | None = field(default=None, repr=False)    # cached, if still in memory
    # After a partly failed attempt: the lines still to deliver (None: all of them).
    pending: list[bytes] | None = field(default=None, repr=False)

    @property
    def undelivered(self) -> int:
        return self.count if self.pending is None else len(self.pending)

    def lines_to_send(self) -> list[bytes]:
        if self.pending is not None:
            return self.pending
        if self.lines is not None:
            return self.lines
        return read_chunk_file(self.path)


@dataclass(frozen=True)
class BufferStats:
    used_bytes: int
    max_used_bytes: int      # the high-water mark since the buffer opened
    waiting_chunks: int
    waiting_lines: int
    sending_chunks: int
    dropped_chunks: int
    dropped_lines: int
    recovered_chunks: int    # found on disk at start (a previous run's backlog)
    recovered_lines: int
    discarded_partial: int   # half-written chunk files of a crash, removed at start


class DiskBuffer:
    """Chunk files in ``directory``, at most ``limit_bytes`` of them. Thread-safe."""

    def __init__(self, directory: Path | str, limit_bytes: int, *, fsync: bool = True, cache_chunks: int = 4):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.limit_bytes, self.fsync, self.cache_chunks = limit_bytes, fsync, cache_chunks
        self._lock = threading.Lock()          # the queues and counters
        self._append_lock = threading.Lock()   # one chunk written at a time, in sequence order
        self._waiting: list[Chunk] = []        # sorted by seq
        self._sending: dict[int, Chunk] = {}
        self._used = self._max_used = 0
        self._dropped_chunks = self._dropped_lines = 0
        self._recovered = self._recovered_lines = self._discarded = 0
        self._next_seq = 0
        self._recover()

    # --- start-up ---------------------------------------------------------------
    def _recover(self) -> None:
        """Queue a previous run's chunks (oldest first); remove half-written ones."""
        for tmp in self.directory.glob("*" + _TMP_SUFFIX):
            tmp.unlink(missing_ok=True)
            self._discarded += 1
        for path in sorted(self.directory.glob("*" + _SUFFIX)):
            try:
                seq, count = int(path.name[: -len(_SUFFIX)]), chunk_line_count(path)
            except (ValueError, CorruptChunk):
                path.unlink(missing_ok=True)
                self._discarded += 1
                continue
            chunk = Chunk(seq, path, path.stat().st_size, count)
            self._waiting.append(chunk)
            self._used += chunk.size
            self._next_seq = max(self._next_seq, seq + 1)
            self._recovered += 1
            self._recovered_lines += count
        self._max_used = self._used
        # A smaller limit than the last run's: the oldest go now, not at the next append.
        with self._lock:
            self._make_room(0)

    # --- writing ----------------------------------------------------------------
    def append(self, lines: list[bytes]) -> Chunk | None:
        """Store ``lines`` as the newest chunk, dropping the oldest waiting chunks to make
        room. None (and the lines counted as dropped) only if the chunks being sent
        leave no room for it: the limit holds whatever happens."""
        if not lines:
            return None
        size = chunk_size(lines)
        with self._append_lock:
            with self._lock:
                if not self._make_room(size):
                    self._dropped_chunks += 1
                    self._dropped_lines += len(lines)
                    return None
                self._used += size  # reserved before the write: the limit holds during it too
                self._max_used = max(self._max_used, self._used)
                seq, self._next_seq = self._next_seq, self._next_seq + 1
            path = self.directory / f"{seq:016d}{_SUFFIX}"
            try:
                write_chunk_file(path, lines, self.fsync)
            except BaseException:
                with self._lock:
                    self._used -= size
                raise
            with self._lock:
                # Keep the newest few in memory: they are the next to be sent when Kafka keeps
                # up; a backlog is read back from disk instead of filling memory.
                cached = lines if len(self._waiting) < self.cache_chunks else None
                chunk = Chunk(seq, path, size, len(lines), lines=cached)
                self._waiting.append(chunk)  # the highest seq so far: the list stays sorted
            return chunk

    def _make_room(self, size: int) -> bool:
        """Drop the oldest waiting chunks until ``size`` more bytes fit. Caller holds the lock."""
        while self._used + size > self.limit_bytes and self._waiting:
            oldest = self._waiting.pop(0)
            self._delete(oldest)
            self._dropped_chunks += 1
            self._dropped_lines += oldest.undelivered
        return self._used + size <= self.limit_bytes

    def _delete(self, chunk: Chunk) -> None:
        chunk.path.unlink(missing_ok=True)
        self._used -= chunk.size

    # --- sending ----------------------------------------------------------------
    def take_oldest(self) -> Chunk | None:
        """The oldest waiting chunk, now marked as being sent (so never dropped)."""
        with self._lock:
            if not self._waiting:
                return None
            chunk = self._waiting.pop(0)
            self._sending[chunk.seq] = chunk
            return chunk

    def peek_oldest(self) -> Chunk | None:
        with self._lock:
            return self._waiting[0] if self._waiting else None

    def delivered(self, chunk: Chunk) -> None:
        """Every line of ``chunk`` is acknowledged: its file goes."""
        with self._lock:
            self._sending.pop(chunk.seq, None)
            self._delete(chunk)

    def requeue(self, chunk: Chunk, pending: list[bytes]) -> None:
        """An attempt left ``pending`` lines unacknowledged: the chunk waits again, in its
        place (it is older than every waiting chunk), and may now be dropped."""
        with self._lock:
            self._sending.pop(chunk.seq, None)
            chunk.pending, chunk.lines = pending, None
            bisect.insort(self._waiting, chunk, key=lambda c: c.seq)

    def discard(self, chunk: Chunk, lines: int) -> None:
        """A chunk that cannot be sent (its file is corrupt): deleted, ``lines`` counted dropped."""
        with self._lock:
            self._sending.pop(chunk.seq, None)
            if chunk in self._waiting:
                self._waiting.remove(chunk)
            self._delete(chunk)
            self._dropped_chunks += 1
            self._dropped_lines += lines

    # --- figures ----------------------------------------------------------------
    def stats(self) -> BufferStats:
        with self._lock:
            return BufferStats(
                used_bytes=self._used, max_used_bytes=self._max_used, waiting_chunks=len(self._waiting),
                waiting_lines=sum(c.undelivered for c in self._waiting), sending_chunks=len(self._sending),
                dropped_chunks=self._dropped_chunks, dropped_lines=self._dropped_lines,
                recovered_chunks=self._recovered, recovered_lines=self._recovered_lines,
                discarded_partial=self._discarded)

    def disk_bytes(self) -> int:
        """What the directory really holds (for tests holding the buffer to its limit). A
        chunk the sender deletes between listing and stat counts as gone."""
        total = 0
        for path in self.directory.iterdir():
            try:
                total += path.stat().st_size if path.is_file() else 0
            except FileNotFoundError:
                continue
        return total
