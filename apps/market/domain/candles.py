"""Candle frames: timeframes, validation, gap finding and resampling.

A *candle frame* is a DataFrame indexed by each candle's open time (a tz-aware UTC DatetimeIndex
named ``open_time``, strictly increasing) with float64 columns ``open, high, low, close, volume``:
finite, ``low <= min(open, close)``, ``high >= max(open, close)``, every price from
:data:`MIN_PRICE` to :data:`MAX_PRICE` and the volume from 0 to :data:`MAX_VOLUME`. Every function
here that returns candles returns such a frame; :func:`validate_candles` checks one.

**Bounds.** A price outside 1e-12 .. 1e12 or a volume above 1e18 is refused wherever candles come
from (a file, an exchange, a resample). A trillion either way covers every quoted market (bitcoin in
Indonesian rupiah is about 2e9, the cheapest tokens about 1e-9) and is what an instrument's price
step and minimum notional can hold (decimals with 12 integer digits); within these bounds
everything computed from candles stays finite (a price times a volume is at most 1e30, its square
1e60, far from float64's 1.8e308). Strategy parameters have a bound of their own (1e9, see
``apps.strategies.documents.MAX_PARAMETER_MAGNITUDE``): they are thresholds and periods, not prices.

Files of candles are read by :mod:`apps.market.domain.candle_files`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray

COLUMNS = ("open", "high", "low", "close", "volume")
INDEX_NAME = "open_time"

MIN_PRICE = 1e-12
MAX_PRICE = 1e12
MAX_VOLUME = 1e18
_NS_PER_MS = 1_000_000
# 1970-01-01 was a Thursday; weekly candles (Binance, ccxt) open on Monday 00:00 UTC.
_MONDAY_ORIGIN_NS = 4 * 86_400 * 10**9


class CandleError(ValueError):
    """Candles that are malformed or cannot be processed; the message says where and why."""


@dataclass(frozen=True)
class Timeframe:
    """A candle duration such as ``1h``. Candles open on UTC multiples of it (weeks on Mondays)."""

    name: str
    duration: pd.Timedelta

    @property
    def milliseconds(self) -> int:
        return int(self.duration / pd.Timedelta(milliseconds=1))

    def floor(self, times: pd.DatetimeIndex) -> pd.DatetimeIndex:
        """The open time of the candle of this timeframe that contains each of ``times``."""
        origin = _MONDAY_ORIGIN_NS if self.name == "1w" else 0
        ns = times.as_unit("ns").asi8
        step = self.duration.value
        floored = (ns - origin) // step * step + origin
        return pd.DatetimeIndex(floored.astype("datetime64[ns]")).tz_localize("UTC")

    def __str__(self) -> str:
        return self.name


TIMEFRAMES: dict[str, Timeframe] = {
    name: Timeframe(name, pd.Timedelta(text))
    for name, text in (
        ("1m", "1min"),
        ("5m", "5min"),
        ("15m", "15min"),
        ("30m", "30min"),
        ("1h", "1h"),
        ("4h", "4h"),
        ("1d", "1D"),
        ("1w", "7D"),
    )
}


def parse_timeframe(value: str | Timeframe) -> Timeframe:
    """``"1h"`` -> ``TIMEFRAMES["1h"]``; raises CandleError listing the valid names."""
    if isinstance(value, Timeframe):
        return value
    try:
        return TIMEFRAMES[value.strip()]
    except (KeyError, AttributeError):
        raise CandleError(f"unknown timeframe {value!r}; valid: {', '.join(TIMEFRAMES)}") from None


# --- validation ------------------------------------------------------------------------------------


def candle_problems(frame: pd.DataFrame) -> list[str]:
    """Everything wrong with ``frame`` as a candle frame, one sentence each; empty when valid."""
    if not isinstance(frame, pd.DataFrame):
        return [f"expected a DataFrame, got {type(frame).__name__}"]
    problems = []
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex) or str(index.tz) != "UTC":
        problems.append(f"the index must be a UTC DatetimeIndex of open times, got {_describe_index(index)}")
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        problems.append(f"missing columns: {', '.join(missing)} (required: {', '.join(COLUMNS)})")
    problems += [
        f"column {column} has dtype {frame[column].dtype}, expected float64"
        for column in COLUMNS
        if column in frame.columns and frame[column].dtype != np.float64
    ]
    if problems or not isinstance(index, pd.DatetimeIndex):  # (a wrong index is a problem already)
        return problems
    values = frame[list(COLUMNS)].to_numpy()
    for description, bad in _row_problems(index.as_unit("ns").asi8, values):
        first = int(np.flatnonzero(bad)[0])
        problems.append(f"{description} on {int(bad.sum())} candle(s), first at {index[first]}")
    return problems


def validate_candles(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` unchanged if it is a valid candle frame, else raise CandleError listing why."""
    problems = candle_problems(frame)
    if problems:
        raise CandleError("invalid candles: " + "; ".join(problems))
    return frame


def _describe_index(index: pd.Index) -> str:
    if isinstance(index, pd.DatetimeIndex):
        return f"a DatetimeIndex in {index.tz or 'no time zone'}"
    return f"{type(index).__name__} of {index.dtype}"


def _row_problems(
    times: NDArray[np.int64], values: NDArray[np.float64]
) -> list[tuple[str, NDArray[np.bool_]]]:
    """(description, mask of offending rows) for every failed rule; ``values`` is (n, 5) OHLCV."""
    step = np.diff(times)
    rules = [
        *value_problems(values),
        ("the time repeats the previous candle's", np.concatenate(([False], step == 0))),
        ("the time is earlier than the previous candle's", np.concatenate(([False], step < 0))),
    ]
    return [(description, bad) for description, bad in rules if bad.any()]


def value_problems(values: NDArray[np.float64]) -> list[tuple[str, NDArray[np.bool_]]]:
    """The rules of each candle's own values (see the module docstring), with the rows that break them."""
    open_, high, low, close, volume = values.T
    prices = values[:, :4]
    finite = np.isfinite(values).all(axis=1)
    out_of_bounds = ((prices > 0.0) & (prices < MIN_PRICE)) | (prices > MAX_PRICE)
    rules = [
        ("a price or the volume is not a finite number", ~finite),
        ("a price is zero or negative", (prices <= 0.0).any(axis=1)),
        (f"a price is outside {MIN_PRICE:g} .. {MAX_PRICE:g}", finite & out_of_bounds.any(axis=1)),
        ("high is below low", high < low),
        # (when high is below low, the two rules below would only repeat it)
        ("high is below the open or the close", (high >= low) & (high < np.maximum(open_, close))),
        ("low is above the open or the close", (high >= low) & (low > np.minimum(open_, close))),
        ("volume is negative", volume < 0.0),
        (f"volume is above {MAX_VOLUME:g}", finite & (volume > MAX_VOLUME)),
    ]
    return [(description, bad) for description, bad in rules if bad.any()]


# --- gaps and resampling ---------------------------------------------------------------------------


class Gap(NamedTuple):
    """A run of missing candles: open times of the first and last missing one, and how many."""

    start: pd.Timestamp
    end: pd.Timestamp
    missing: int


def find_gaps(times: pd.DatetimeIndex | list[datetime], timeframe: str | Timeframe) -> list[Gap]:
    """The runs of missing candles between consecutive ``times`` (sorted, unique open times).

    Raises CandleError if the times are unsorted, repeated, or not a whole number of candles apart.
    """
    timeframe = parse_timeframe(timeframe)
    index = utc_index(times)
    step = timeframe.duration.value
    ns = index.as_unit("ns").asi8
    deltas = np.diff(ns)
    bad = np.flatnonzero((deltas <= 0) | (deltas % step != 0))
    if len(bad):
        i = int(bad[0])
        raise CandleError(
            f"times must increase by whole {timeframe} candles: {index[i]} is followed by {index[i + 1]}"
        )
    starts = np.flatnonzero(deltas > step)
    return [
        Gap(index[i] + timeframe.duration, index[i + 1] - timeframe.duration, int(deltas[i] // step) - 1)
        for i in starts.tolist()
    ]


def resample(frame: pd.DataFrame, from_tf: str | Timeframe, to_tf: str | Timeframe) -> pd.DataFrame:
    """Aggregate candles into a longer timeframe aligned on UTC boundaries (weeks start Monday).

    Each bucket takes the first open, highest high, lowest low, last close and summed volume.
    A bucket at either end that lacks some of its candles is dropped: the last one is usually still
    forming and the first one starts mid-period. Buckets inside the series keep whatever candles
    they have, since an exchange outage leaves holes that no later data will fill.
    """
    source, target = parse_timeframe(from_tf), parse_timeframe(to_tf)
    if target.duration <= source.duration or target.duration % source.duration != pd.Timedelta(0):
        raise CandleError(f"cannot resample {source} to {target}: it must be a whole multiple of {source}")
    validate_candles(frame)
    if len(frame) == 0:
        return candle_frame(np.empty(0, dtype=np.int64), np.empty((0, 5)))
    index = cast(pd.DatetimeIndex, frame.index)  # as validate_candles found it
    off_grid = index != source.floor(index)
    if off_grid.any():
        raise CandleError(f"candle at {index[off_grid][0]} does not open on a {source} boundary")
    buckets = target.floor(index).as_unit("ns").asi8
    starts = np.flatnonzero(np.concatenate(([True], np.diff(buckets) != 0)))
    ends = np.append(starts[1:], len(frame))
    open_, high, low, close, volume = (frame[column].to_numpy() for column in COLUMNS)
    values = np.column_stack(
        (
            open_[starts],
            np.maximum.reduceat(high, starts),
            np.minimum.reduceat(low, starts),
            close[ends - 1],
            np.add.reduceat(volume, starts),
        )
    )
    keep = np.ones(len(starts), dtype=bool)
    complete = (ends - starts) == target.duration // source.duration
    keep[0] &= complete[0]
    keep[-1] &= complete[-1]
    return candle_frame(buckets[starts][keep] // _NS_PER_MS, values[keep])


def candle_frame(times_ms: NDArray[np.int64], values: NDArray[np.float64]) -> pd.DataFrame:
    """A candle frame of open times in epoch milliseconds and rows of open, high, low, close, volume."""
    index = pd.DatetimeIndex(pd.to_datetime(times_ms, unit="ms", utc=True), name=INDEX_NAME)
    return pd.DataFrame(values, index=index, columns=list(COLUMNS), dtype=np.float64)


def utc_index(times: pd.DatetimeIndex | list[datetime]) -> pd.DatetimeIndex:
    """``times`` as a UTC index; naive times are refused."""
    index = pd.DatetimeIndex(times)
    if index.tz is None:
        raise CandleError("times must be time-zone aware (UTC)")
    return index.tz_convert("UTC")
