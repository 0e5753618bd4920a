"""Where a pass starts and how a checkpoint moves, without a database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flowgate.customer360.crm_extract import ExtractSettings, newest_updated_ms, updated_ms, window_start
from flowgate.customer360.crm_state import Pass


def test_a_pass_starts_the_lookback_behind_the_cursor_or_at_the_beginning():
    settings = ExtractSettings(lookback=timedelta(minutes=15))
    assert window_start(None, settings) is None
    assert window_start(1_000_000_000, settings) == 1_000_000_000 - 900_000
    assert window_start(1_000_000_000, ExtractSettings(full_refresh=True)) is None
    assert window_start(5_000, ExtractSettings(lookback=timedelta(0))) == 5_000


def test_a_checkpoint_keeps_the_newest_time_seen_and_counts_pages():
    first = Pass(window_start_ms=None)
    after_one = first.after_page("c1", 2_000, 200)
    after_empty = after_one.after_page(None, None, 0)
    assert (after_one.next_after, after_one.high_ms, after_one.pages, after_one.records) == ("c1", 2_000, 1, 200)
    assert (after_empty.next_after, after_empty.high_ms, after_empty.pages) == (None, 2_000, 2)
    assert after_one.after_page("c2", 1_500, 10).high_ms == 2_000, "an older page never moves the cursor back"


def test_a_capped_query_goes_on_from_the_newest_updated_at_read():
    capped = Pass(window_start_ms=100).after_page("c50", 9_000, 10_000)
    again = capped.reanchored()
    assert (again.window_start_ms, again.next_after, again.query_results) == (9_000, None, 0)
    assert (again.pages, again.records, again.high_ms) == (1, 10_000, 9_000), "the pass's own counts go on"
    with pytest.raises(RuntimeError, match="one updatedAt"):
        Pass(window_start_ms=9_000, high_ms=9_000, query_results=10_000).reanchored()


def test_updated_at_is_read_to_the_millisecond_without_float_rounding():
    # 1767225600.123 has no exact binary float: a float round trip gives ...122.
    assert updated_ms({"updatedAt": "2026-01-01T00:00:00.123Z"}) == 1_767_225_600_123
    assert newest_updated_ms([{"updatedAt": "2026-01-01T00:00:00.001Z"},
                              {"updatedAt": "2025-12-31T23:59:59.999Z"}]) == 1_767_225_600_001
    assert newest_updated_ms([]) is None
