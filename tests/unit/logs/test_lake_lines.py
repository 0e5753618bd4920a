"""Lines as the lake stores them: byte for byte, or in an envelope that gives them back."""

from __future__ import annotations

import pytest

from flowgate.logs.lake import batch_objects, original_line, query_tag, stored_line
from flowgate.logs.redact import redact


@pytest.mark.parametrize("value, wrapped", [
    (b'{"timestamp":1,"body":"ok"}', False),
    (b"plain text, not JSON", False),
    (b'{"body":"bad \xff\xfe bytes"}', True),
    (b'{"body":"two\nlines"}', True),
    # A line a service wrote that starts like an envelope is wrapped too: unwrapping it as
    # one would hand back other bytes than were received.
    (b'{"flowgate_malformed":"a service wrote this","value_base64":"bm90IG1l"}', True),
])
def test_every_line_comes_back_as_received(value, wrapped):
    stored, was_wrapped = stored_line(value, partition=1, offset=42)
    assert was_wrapped is wrapped
    assert b"\n" not in stored
    assert original_line(stored) == value


def test_a_1_mib_body_is_redacted_like_a_short_one():
    # The e-mail rule used to try every position of a long run of address characters:
    # hours for a 1 MiB body, which held the stream's batch (and its replays) for as long.
    line = "x" * (1024 * 1024) + " from john.doe@example.com"
    assert redact(line, max_chars=10**7).endswith(" from [EMAIL]")


@pytest.mark.parametrize("position", [0, 1])
def test_an_envelope_look_alike_in_an_otherwise_clean_batch_comes_back_as_received(position):
    import gzip

    look_alike = b'{"flowgate_malformed":"a service wrote this","value_base64":"bm90IG1l"}'
    values = [b'{"body":"ok 1"}', b'{"body":"ok 2"}']
    values.insert(position, look_alike)
    (obj,) = batch_objects(1, [0] * 3, [0, 1, 2], [0, 0, 0], values)
    stored = gzip.decompress(obj.body).split(b"\n")[:-1]
    assert [original_line(line) for line in stored] == values and obj.malformed == 1


def test_a_batch_objects_name_carries_its_query_so_another_stream_never_overwrites_it():
    """Two checkpoints (or two streams on one bucket) both start at batch 0, and on new topics
    at offset 0: the query's tag keeps their objects apart; a replay keeps the same names."""
    args = (0, [0, 0], [0, 1], [0, 0], [b'{"a":1}', b'{"a":2}'])
    (first,), (other,), (replayed,) = (batch_objects(*args, query=query_tag(q)) for q in (
        "38b998e1-7998-42c0-8d72-49230d563425", "7eae6719-384f-42be-91df-5a1ddea13369",
        "38b998e1-7998-42c0-8d72-49230d563425"))
    assert first.key.endswith("/q38b998e1-b000000000000-p0-o0.jsonl.gz")
    assert first.key != other.key and first.key == replayed.key
