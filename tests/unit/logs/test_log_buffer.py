"""The forwarder's disk buffer: whole chunk files, in order, never above the limit; the
oldest waiting chunk dropped and counted, a chunk being sent never."""

from __future__ import annotations

import pytest

from flowgate.logs.buffer import (
    CorruptChunk, DiskBuffer, chunk_line_count, chunk_size, decode_chunk, encode_chunk, read_chunk_file,
    write_chunk_file,
)

ODD_LINES = [b"", b"plain", b"with\nnewline", b"\xff\xfe invalid utf-8", b"x" * 100_000]


def lines(tag: str, n: int = 10, width: int = 90) -> list[bytes]:
    return [f"{tag}-{i:04d}".encode().ljust(width, b".") for i in range(n)]


def test_any_bytes_round_trip_through_a_chunk(tmp_path):
    assert decode_chunk(encode_chunk(ODD_LINES)) == ODD_LINES
    path = tmp_path / "0000000000000001.chunk"
    size = write_chunk_file(path, ODD_LINES)
    assert size == path.stat().st_size == chunk_size(ODD_LINES)
    assert read_chunk_file(path) == ODD_LINES and chunk_line_count(path) == len(ODD_LINES)
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("cut", [3, 12, 30, -1])
def test_a_truncated_chunk_is_refused_not_misread(cut):
    data = encode_chunk(lines("a", 3))
    with pytest.raises(CorruptChunk):
        decode_chunk(data[:cut])


def test_chunks_come_out_oldest_first(tmp_path):
    buffer = DiskBuffer(tmp_path, 1_000_000)
    for tag in "abc":
        buffer.append(lines(tag))
    out = []
    while (chunk := buffer.take_oldest()) is not None:
        out.append(chunk.lines_to_send()[0][:1])
        buffer.delivered(chunk)
    assert out == [b"a", b"b", b"c"]
    assert buffer.stats().used_bytes == 0 and buffer.disk_bytes() == 0


def test_a_full_buffer_drops_the_oldest_waiting_chunk_and_counts_its_lines(tmp_path):
    size = chunk_size(lines("a"))
    buffer = DiskBuffer(tmp_path, 3 * size)
    for tag in "abcde":
        buffer.append(lines(tag))
        assert buffer.disk_bytes() <= 3 * size
    stats = buffer.stats()
    assert (stats.dropped_chunks, stats.dropped_lines) == (2, 20)
    assert stats.max_used_bytes <= 3 * size
    kept = [buffer.take_oldest().lines_to_send()[0][:1] for _ in range(3)]
    assert kept == [b"c", b"d", b"e"]


def test_a_chunk_being_sent_is_never_dropped(tmp_path):
    size = chunk_size(lines("a"))
    buffer = DiskBuffer(tmp_path, 2 * size)
    buffer.append(lines("a"))
    sending = buffer.take_oldest()
    buffer.append(lines("b"))
    buffer.append(lines("c"))  # room only by dropping b: a is being sent
    assert sending.path.exists()
    assert buffer.take_oldest().lines_to_send()[0][:1] == b"c"
    assert buffer.stats().dropped_lines == 10


def test_when_only_sending_chunks_remain_the_new_chunk_is_dropped_not_the_limit(tmp_path):
    size = chunk_size(lines("a"))
    buffer = DiskBuffer(tmp_path, size)
    buffer.append(lines("a"))
    buffer.take_oldest()
    assert buffer.append(lines("b")) is None
    assert buffer.stats().dropped_lines == 10 and buffer.disk_bytes() == size


def test_a_requeued_chunk_goes_back_to_the_head_with_only_its_undelivered_lines(tmp_path):
    buffer = DiskBuffer(tmp_path, 1_000_000)
    buffer.append(lines("a"))
    buffer.append(lines("b"))
    first = buffer.take_oldest()
    buffer.requeue(first, first.lines_to_send()[7:])
    again = buffer.take_oldest()
    assert again is first and again.lines_to_send() == lines("a")[7:]
    # Dropped now, it counts only the 3 lines never delivered.
    buffer.requeue(again, again.lines_to_send())
    buffer.limit_bytes = chunk_size(lines("c"))
    buffer.append(lines("c"))
    assert buffer.stats().dropped_lines == 3 + 10


def test_a_restart_resumes_the_backlog_in_order_and_removes_half_written_files(tmp_path):
    buffer = DiskBuffer(tmp_path, 1_000_000)
    for tag in "ab":
        buffer.append(lines(tag))
    (tmp_path / "0000000000000009.chunk.tmp").write_bytes(b"FGLC1\n half")  # a crash mid-write
    reopened = DiskBuffer(tmp_path, 1_000_000)
    stats = reopened.stats()
    assert (stats.recovered_chunks, stats.recovered_lines, stats.discarded_partial) == (2, 20, 1)
    assert reopened.take_oldest().lines_to_send() == lines("a")
    reopened.append(lines("c"))  # numbered after the recovered ones
    assert reopened.take_oldest().lines_to_send() == lines("b")
    assert reopened.take_oldest().lines_to_send() == lines("c")


def test_a_restart_with_a_smaller_limit_drops_the_oldest_at_once(tmp_path):
    buffer = DiskBuffer(tmp_path, 1_000_000)
    for tag in "abc":
        buffer.append(lines(tag))
    reopened = DiskBuffer(tmp_path, chunk_size(lines("a")))
    assert reopened.stats().dropped_chunks == 2 and reopened.disk_bytes() == chunk_size(lines("a"))
    assert reopened.take_oldest().lines_to_send() == lines("c")
