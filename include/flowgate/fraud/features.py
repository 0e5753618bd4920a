"""The fraud model's features: pure pandas/numpy, the same code for training and the stream.

One function, :func:`build_features`, so a feature can never mean one thing when the
model learns it and another when the stream scores with it (training/serving skew).

Velocity features look at the card's *earlier* payments inside sliding event-time
windows. "Earlier" is a total order: event time, then transaction id (two payments in
the same millisecond still have one first). A window of width ``w`` ending at ``t``
holds the earlier payments with ``t - w <= event_time``. The earlier payments come from

- ``history``: the card's payments already decided (the stream reads them from
  ``fraud.decisions``, training passes an empty frame), and
- the batch itself: a card-testing burst often lands in one micro-batch.

A payment in both (a replayed micro-batch) counts once. No window is longer than
:data:`HISTORY_WINDOW`, the span the stream reads back: a feature computed on a long
training frame and on a micro-batch plus its history come out the same.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

# Velocity windows (name suffix -> width). The longest is HISTORY_WINDOW.
_COUNT_WINDOWS = {"1m": timedelta(minutes=1), "1h": timedelta(hours=1)}
_MERCHANT_WINDOW = ("10m", timedelta(minutes=10))
HISTORY_WINDOW: timedelta = timedelta(hours=1)

FEATURE_NAMES: tuple[str, ...] = (
    "log_amount",            # log1p(amount): amounts span cents to thousands
    "card_count_1m",         # earlier payments of the card in the last minute
    "card_amount_1m",        # log1p(sum of their amounts)
    "card_count_1h",
    "card_amount_1h",        # log1p(sum of the card's amounts in the last hour)
    "card_merchants_10m",    # distinct merchants among the card's payments in the last 10 minutes
    "log_seconds_since_last",  # log1p(seconds since the card's previous payment), capped at HISTORY_WINDOW
    "high_risk_mcc",         # gambling, quasi-cash, money transfer, ...: where stolen cards cash out
    "country_mismatch",      # merchant country != card country
    "currency_mismatch",     # currency != the card country's home currency
    "channel_ecom",          # card not present
    "channel_atm",
    "night_hour",            # 00:00-05:59 UTC (a rough proxy: no local time on the event)
)

# Merchant category codes where fraud cashes out (ISO 18245).
HIGH_RISK_MCC = frozenset({
    "4829",  # money transfer
    "6051",  # quasi-cash: crypto, money orders, foreign currency
    "6211",  # securities brokers
    "6540",  # stored-value card loads
    "7801", "7802", "7995",  # gambling (online, horse racing, betting)
    "5967",  # direct marketing, inbound teleservices (adult)
})

# Home currency of a card's issuing country; unknown countries give no mismatch signal.
HOME_CURRENCY = {
    "AT": "EUR", "BE": "EUR", "DE": "EUR", "ES": "EUR", "FI": "EUR", "FR": "EUR", "GR": "EUR",
    "IE": "EUR", "IT": "EUR", "LU": "EUR", "NL": "EUR", "PT": "EUR",
    "GB": "GBP", "CH": "CHF", "US": "USD", "CA": "CAD", "AU": "AUD", "JP": "JPY", "SE": "SEK",
    "NO": "NOK", "DK": "DKK", "PL": "PLN", "CZ": "CZK", "BR": "BRL", "MX": "MXN", "IN": "INR",
    "NG": "NGN", "RU": "RUB", "TR": "TRY", "TH": "THB", "ID": "IDR", "VN": "VND", "PH": "PHP",
    "CN": "CNY", "AE": "AED", "ZA": "ZAR", "SG": "SGD", "HK": "HKD", "KR": "KRW",
}

BATCH_COLUMNS = ("transaction_id", "token", "event_time", "amount", "currency", "mcc", "merchant_id",
                 "merchant_country", "card_country", "channel")
HISTORY_COLUMNS = ("transaction_id", "token", "event_time", "amount", "merchant_id")

_NIGHT_END_HOUR = 6
_MAX_GAP_S = HISTORY_WINDOW.total_seconds()


def build_features(batch: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """The model's input for each row of ``batch``: index aligned, columns FEATURE_NAMES, float64."""
    _require(batch, BATCH_COLUMNS, "batch")
    if batch.empty:
        return pd.DataFrame(np.zeros((0, len(FEATURE_NAMES))), index=batch.index, columns=list(FEATURE_NAMES))
    history = history if history is not None and len(history) else None
    if history is not None:
        _require(history, HISTORY_COLUMNS, "history")
    values = velocity_features(batch, history) | transaction_features(batch)
    matrix = np.column_stack([values[name] for name in FEATURE_NAMES]).astype(np.float64, copy=False)
    return pd.DataFrame(matrix, index=batch.index, columns=list(FEATURE_NAMES))


def transaction_features(batch: pd.DataFrame) -> dict[str, np.ndarray]:
    """What one payment says on its own. On object arrays, not Series: a micro-batch is a
    hundred rows, where pandas' per-call overhead was most of the cost."""
    amount = batch["amount"].to_numpy(dtype=np.float64)
    card_country, currency = _strings(batch["card_country"]), _strings(batch["currency"])
    channel, mcc = _strings(batch["channel"]), _strings(batch["mcc"])
    hour = _utc(batch["event_time"]).hour.to_numpy()
    home = [HOME_CURRENCY.get(country) for country in card_country]
    return {
        "log_amount": np.log1p(np.clip(amount, 0.0, None)),
        "high_risk_mcc": np.fromiter((code in HIGH_RISK_MCC for code in mcc), np.float64, len(mcc)),
        "country_mismatch": (_strings(batch["merchant_country"]) != card_country).astype(np.float64),
        "currency_mismatch": np.fromiter(
            (expected is not None and expected != paid for expected, paid in zip(home, currency, strict=True)),
            np.float64, len(home)),
        "channel_ecom": (channel == "ecom").astype(np.float64),
        "channel_atm": (channel == "atm").astype(np.float64),
        "night_hour": (hour < _NIGHT_END_HOUR).astype(np.float64),
    }


def velocity_features(batch: pd.DataFrame, history: pd.DataFrame | None) -> dict[str, np.ndarray]:
    """Per-card counts, sums and distinct merchants over the windows, for each batch row.

    Vectorised: the batch and history are put in one order (card, event time,
    transaction id); a window's first row is found by binary search, counts are index
    differences and sums differences of a cumulative sum.
    """
    parts = [batch] + ([history] if history is not None else [])
    tx_ids = np.concatenate([_strings(p["transaction_id"]) for p in parts])
    tid_codes, unique_tids = pd.factorize(tx_ids, sort=True)  # code order = transaction id order
    # Once per transaction id (the batch comes first, so its copy of a replayed row wins).
    _, first = np.unique(tid_codes, return_index=True)
    keep = np.sort(first)
    tid_rank = tid_codes[keep]
    token = np.concatenate([_strings(p["token"]) for p in parts])[keep]
    times = np.concatenate([_ns(p["event_time"]) for p in parts])[keep]
    amount = np.concatenate([p["amount"].to_numpy(dtype=np.float64) for p in parts])[keep]
    merchant = np.concatenate([_strings(p["merchant_id"]) for p in parts])[keep]

    token_code, _ = pd.factorize(token)
    order = np.lexsort((tid_rank, times, token_code))
    token_s, times_s, amount_s = token_code[order], times[order], amount[order]
    unique_times = np.unique(times_s)
    stride = np.int64(len(unique_times) + 1)
    key_s = token_s.astype(np.int64) * stride + np.searchsorted(unique_times, times_s)  # non-decreasing

    # Where each batch row sits in that order.
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    rows = position[pd.Index(unique_tids[tid_rank]).get_indexer(tx_ids[:len(batch)])]
    row_times, row_tokens = times_s[rows], token_s[rows].astype(np.int64)

    def window_start(width: timedelta) -> np.ndarray:
        lower = np.searchsorted(unique_times, row_times - _td_ns(width), side="left")
        return np.searchsorted(key_s, row_tokens * stride + lower, side="left")

    cumulative = np.concatenate(([0.0], np.cumsum(amount_s)))
    out: dict[str, np.ndarray] = {}
    for suffix, width in _COUNT_WINDOWS.items():
        start = window_start(width)
        out[f"card_count_{suffix}"] = (rows - start).astype(np.float64)
        out[f"card_amount_{suffix}"] = np.log1p(np.clip(cumulative[rows] - cumulative[start], 0.0, None))

    suffix, width = _MERCHANT_WINDOW
    out[f"card_merchants_{suffix}"] = _distinct_in_window(
        token_s, merchant[order], window_start(width), rows)

    has_previous = (rows > 0) & (token_s[np.maximum(rows - 1, 0)] == token_s[rows])
    gap_s = (times_s[rows] - times_s[np.maximum(rows - 1, 0)]) / 1e9
    gap_s = np.where(has_previous, np.minimum(gap_s, _MAX_GAP_S), _MAX_GAP_S)
    out["log_seconds_since_last"] = np.log1p(gap_s)
    return out


def _distinct_in_window(token_s: np.ndarray, merchant_s: np.ndarray, start: np.ndarray,
                        rows: np.ndarray) -> np.ndarray:
    """Distinct merchants among sorted rows [start, row) of each batch row.

    A row j in the window is the first of its merchant there iff the card's previous
    payment at that merchant lies before the window's start. The (row, j) pairs are
    enumerated explicitly: a short window holds few payments per card.
    """
    n = len(token_s)
    merchant_code, _ = pd.factorize(merchant_s)
    by_merchant = np.lexsort((np.arange(n), merchant_code, token_s))
    same = np.zeros(n, dtype=bool)
    same[1:] = (token_s[by_merchant[1:]] == token_s[by_merchant[:-1]]) & (
        merchant_code[by_merchant[1:]] == merchant_code[by_merchant[:-1]])
    previous = np.full(n, -1, dtype=np.int64)
    previous[by_merchant[1:][same[1:]]] = by_merchant[:-1][same[1:]]

    sizes = rows - start
    total = int(sizes.sum())
    if total == 0:
        return np.zeros(len(rows), dtype=np.float64)
    query = np.repeat(np.arange(len(rows)), sizes)
    offsets = np.arange(total) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    j = start[query] + offsets
    first_in_window = previous[j] < start[query]
    return np.bincount(query, weights=first_in_window, minlength=len(rows)).astype(np.float64)


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} is missing column(s): {', '.join(missing)}")


def _strings(values: pd.Series) -> np.ndarray:
    """The column as an object array of str (no copy when it already is one)."""
    array = values.to_numpy()
    if array.dtype == object and pd.api.types.infer_dtype(array, skipna=False) == "string":
        return array
    return values.astype(str).to_numpy()


def _utc(values: pd.Series) -> pd.DatetimeIndex:
    if isinstance(values.dtype, pd.DatetimeTZDtype):  # the usual case, and 50x faster than to_datetime
        return pd.DatetimeIndex(values).tz_convert("UTC")
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True, cache=False))


def _ns(values: pd.Series) -> np.ndarray:
    """Event times as int64 nanoseconds since the epoch (UTC), whatever the input unit."""
    return _utc(values).as_unit("ns").asi8


def _td_ns(width: timedelta) -> np.int64:
    return np.int64(width // timedelta(microseconds=1)) * 1000
