"""The features: velocity windows (history + the batch itself, replays counted once, exact
edges, ties), per-payment flags, and the same values however the rows are split."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from flowgate.fraud.features import FEATURE_NAMES, HISTORY_COLUMNS, HISTORY_WINDOW, build_features

T0 = pd.Timestamp("2026-11-29T12:00:00", tz="UTC")


def payment(tid: str, seconds: float, token: str = "tok_a", amount: float = 10.0, merchant: str = "m_1", **extra) -> dict:
    row = {"transaction_id": tid, "token": token, "event_time": T0 + pd.Timedelta(seconds=seconds),
           "amount": amount, "currency": "EUR", "mcc": "5411", "merchant_id": merchant,
           "merchant_country": "DE", "card_country": "DE", "channel": "pos"}
    return row | extra


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def history_of(*rows: dict) -> pd.DataFrame:
    return frame(*rows)[list(HISTORY_COLUMNS)]


NO_HISTORY = pd.DataFrame(columns=list(HISTORY_COLUMNS))


def test_output_is_index_aligned_float64_with_the_feature_names():
    batch = frame(payment("t2", 5), payment("t1", 0)).set_axis([10, 20])
    out = build_features(batch, NO_HISTORY)
    assert list(out.columns) == list(FEATURE_NAMES)
    assert list(out.index) == [10, 20]
    assert (out.dtypes == np.float64).all()
    assert build_features(batch.iloc[:0], NO_HISTORY).shape == (0, len(FEATURE_NAMES))


def test_a_burst_inside_one_batch_counts_the_earlier_rows_of_the_same_card():
    # Given a card-testing burst in one micro-batch (out of order), and another card
    batch = frame(payment("t3", 2, merchant="m_3"), payment("t1", 0, merchant="m_1"),
                  payment("t2", 1, merchant="m_2"), payment("x1", 1, token="tok_b"))
    out = build_features(batch, NO_HISTORY).set_index(batch["transaction_id"])
    assert out.loc[["t1", "t2", "t3", "x1"], "card_count_1m"].tolist() == [0, 1, 2, 0]
    assert out.loc[["t1", "t2", "t3"], "card_merchants_10m"].tolist() == [0, 1, 2]
    assert out.loc["t3", "card_amount_1m"] == pytest.approx(math.log1p(20.0))
    assert out.loc["t2", "log_seconds_since_last"] == pytest.approx(math.log1p(1.0))
    assert out.loc["t1", "log_seconds_since_last"] == pytest.approx(math.log1p(HISTORY_WINDOW.total_seconds()))


def test_history_and_batch_count_together():
    history = history_of(payment("h1", -3000, amount=100.0), payment("h2", -30, amount=5.0, merchant="m_2"))
    batch = frame(payment("b1", 0, amount=1.0))
    out = build_features(batch, history).iloc[0]
    assert out["card_count_1m"] == 1 and out["card_count_1h"] == 2
    assert out["card_amount_1h"] == pytest.approx(math.log1p(105.0))
    assert out["card_merchants_10m"] == 1
    assert out["log_seconds_since_last"] == pytest.approx(math.log1p(30.0))


def test_a_replayed_batch_counts_each_payment_once():
    rows = [payment("t1", 0), payment("t2", 10), payment("t3", 20)]
    first = build_features(frame(*rows), NO_HISTORY)
    # The replay finds its own rows in history (they were decided the first time).
    replay = build_features(frame(*rows), history_of(*rows))
    pd.testing.assert_frame_equal(first, replay)
    assert replay["card_count_1m"].tolist() == [0, 1, 2]


def test_window_edges_are_inclusive_at_t_minus_width_and_exclude_later_payments():
    history = history_of(payment("h_edge", -60), payment("h_out", -60.001), payment("h_later", 5),
                         payment("h_1h", -3600), payment("h_old", -3600.001))
    out = build_features(frame(payment("b", 0)), history).iloc[0]
    assert out["card_count_1m"] == 1  # exactly 60 s ago is in; a millisecond more is out; later never
    assert out["card_count_1h"] == 3  # h_edge, h_out, h_1h (exactly 1 h) in; h_old out


def test_ties_in_event_time_are_ordered_by_transaction_id():
    batch = frame(payment("b", 0), payment("a", 0), payment("c", 0))
    out = build_features(batch, NO_HISTORY).set_index(batch["transaction_id"])
    assert out.loc[["a", "b", "c"], "card_count_1m"].tolist() == [0, 1, 2]
    assert out.loc["b", "log_seconds_since_last"] == 0.0


def test_distinct_merchants_counts_each_merchant_once_in_ten_minutes():
    history = history_of(payment("h1", -700, merchant="m_old"), payment("h2", -500, merchant="m_x"),
                         payment("h3", -400, merchant="m_x"), payment("h4", -100, merchant="m_y"))
    out = build_features(frame(payment("b", 0, merchant="m_x")), history).iloc[0]
    assert out["card_merchants_10m"] == 2  # m_x twice counts once; m_old is 700 s back


def test_splitting_rows_between_history_and_batch_gives_the_same_features():
    rng = np.random.default_rng(3)
    rows = [payment(f"t{i:03d}", float(s), token=f"tok_{rng.integers(4)}", amount=float(rng.integers(1, 500)),
                    merchant=f"m_{rng.integers(6)}") for i, s in enumerate(np.sort(rng.integers(0, 5000, 120)))]
    whole = build_features(frame(*rows), NO_HISTORY)
    tail = frame(*rows[80:])
    split = build_features(tail, history_of(*rows[:80]))
    pd.testing.assert_frame_equal(whole.iloc[80:].reset_index(drop=True), split, check_exact=False, rtol=1e-12)


def test_per_transaction_features():
    batch = frame(
        payment("home", 0, amount=0.0),
        payment("casino", 0, token="t2", mcc="7995", channel="ecom", amount=999.0),
        payment("abroad", 0, token="t3", merchant_country="TH", currency="THB", channel="atm"),
        payment("us_shop", 0, token="t4", merchant_country="US", currency="EUR", channel="ecom"),
        payment("night", -8 * 3600, token="t5"),
        payment("unknown_home", 0, token="t6", card_country="ZZ", merchant_country="ZZ", currency="XOF"),
    )
    out = build_features(batch, NO_HISTORY).set_index(batch["transaction_id"])
    assert out.loc["home", "log_amount"] == 0.0 and out.loc["casino", "log_amount"] == pytest.approx(math.log1p(999))
    assert out["high_risk_mcc"].to_dict() == {"home": 0, "casino": 1, "abroad": 0, "us_shop": 0, "night": 0, "unknown_home": 0}
    assert out.loc["abroad", ["country_mismatch", "currency_mismatch", "channel_atm"]].tolist() == [1, 1, 1]
    assert out.loc["us_shop", ["country_mismatch", "currency_mismatch", "channel_ecom"]].tolist() == [1, 0, 1]
    assert out.loc["unknown_home", "currency_mismatch"] == 0  # no home currency known: no signal
    assert out.loc["night", "night_hour"] == 1 and out.loc["home", "night_hour"] == 0


def test_history_from_the_database_shape_is_accepted():
    # psycopg hands back datetimes (microsecond unit) and text ids: same features as pandas' own types.
    history = history_of(payment("h1", -10))
    from_db = history.assign(event_time=[t.to_pydatetime() for t in history["event_time"]])
    batch = frame(payment("b", 0))
    pd.testing.assert_frame_equal(build_features(batch, history), build_features(batch, from_db))


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="channel"):
        build_features(frame(payment("b", 0)).drop(columns="channel"), NO_HISTORY)


def test_a_micro_batch_is_fast_enough_for_the_stream():
    """~20 ms for 500 payments over 5,000 history rows (generous bound: shared CI cores)."""
    rng = np.random.default_rng(1)
    history = frame(*[payment(f"h{i}", -float(rng.integers(0, 3600)), token=f"tok_{rng.integers(300)}",
                              merchant=f"m_{rng.integers(20)}") for i in range(5000)])[list(HISTORY_COLUMNS)]
    batch = frame(*[payment(f"b{i}", float(rng.integers(0, 60)), token=f"tok_{rng.integers(300)}") for i in range(500)])
    build_features(batch, history)
    best = min(_timed(lambda: build_features(batch, history)) for _ in range(5))
    assert best < 0.1, f"{best * 1000:.1f} ms"


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started
