"""Candle frames: timeframes, validation, gap finding, resampling and parsing of exchange files.

A *candle frame* is a DataFrame indexed by each candle's open time (a tz-aware UTC DatetimeIndex
named ``open_time``, strictly increasing) with float64 columns ``open, high, low, close, volume``:
finite, prices positive, ``low <= min(open, close)``, ``high >= max(open, close)``, volume >= 0.
Every function here that returns candles returns such a frame; :func:`validate_candles` checks one.

Files come in two layouts: the CSV of the bundled data (header ``timestamp,open,high,low,close,volume``,
timestamp = open time in epoch milliseconds) and ccxt's ``fetch_ohlcv`` rows as a JSON array
``[[timestamp_ms, open, high, low, close, volume], ...]``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray

COLUMNS = ("open", "high", "low", "close", "volume")
INDEX_NAME = "open_time"
CSV_HEADER = ("timestamp", *COLUMNS)

# Epoch milliseconds from 1973 to 5138: a seconds timestamp (~1.7e9) or microseconds (~1.7e15) is
# out of range, which catches the usual unit mix-up.
_MS_RANGE = (1e11, 1e14)
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
    open_, high, low, close, volume = values.T
    step = np.diff(times)
    rules = [
        ("a price or the volume is not a finite number", ~np.isfinite(values).all(axis=1)),
        ("a price is zero or negative", (values[:, :4] <= 0.0).any(axis=1)),
        ("high is below the open or the close", high < np.maximum(open_, close)),
        ("low is above the open or the close", low > np.minimum(open_, close)),
        ("volume is negative", volume < 0.0),
        ("the time repeats the previous candle's", np.concatenate(([False], step == 0))),
        ("the time is earlier than the previous candle's", np.concatenate(([False], step < 0))),
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
    index = _utc_index(times)
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
        return _frame(np.empty(0, dtype=np.int64), np.empty((0, 5)))
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
    return _frame(buckets[starts][keep] // _NS_PER_MS, values[keep])


# --- parsing ---------------------------------------------------------------------------------------


def read_candles(path: str | Path) -> pd.DataFrame:
    """Read a ``.csv`` or ``.json`` candle file (see the module docstring for the layouts)."""
    path = Path(path)
    parsers = {".csv": parse_csv, ".json": parse_json}
    if path.suffix.lower() not in parsers:
        raise CandleError(f"{path.name}: unknown candle file type; expected one of {', '.join(parsers)}")
    try:
        return parsers[path.suffix.lower()](path.read_text(encoding="utf-8-sig"))
    except CandleError as exc:
        raise CandleError(f"{path.name}: {exc}") from None


def parse_csv(text: str) -> pd.DataFrame:
    """Parse CSV text with header ``timestamp,open,high,low,close,volume`` (epoch ms open times).

    Blank lines are ignored. Errors name the line: ``line 7: close 'n/a' is not a number``.
    """
    rows = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(rows, None)
    if header is None or tuple(cell.strip().lower() for cell in header) != CSV_HEADER:
        raise CandleError(
            f"line 1: expected the header {','.join(CSV_HEADER)}, got {','.join(header or [])!r}"
        )
    lines, cells = [], []
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(CSV_HEADER):
            raise CandleError(
                f"line {line}: expected {len(CSV_HEADER)} fields ({','.join(CSV_HEADER)}), got {len(row)}"
            )
        lines.append(line)
        cells.append(row)
    return _build(cells, [f"line {line}" for line in lines])


def parse_json(text: str) -> pd.DataFrame:
    """Parse a JSON array of ``[timestamp_ms, open, high, low, close, volume]`` rows (ccxt's OHLCV)."""
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CandleError(f"line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}") from None
    return candles_from_rows(rows)


def candles_from_rows(rows: Sequence[Sequence[float]]) -> pd.DataFrame:
    """A candle frame from ccxt ``fetch_ohlcv`` rows ``[[timestamp_ms, o, h, l, c, v], ...]``.

    Errors name the 1-based candle: ``candle 3: expected 6 values [timestamp, ...], got 5``.
    """
    if not isinstance(rows, list | tuple):
        raise CandleError(
            f"expected a list of [timestamp, open, high, low, close, volume] rows, got {type(rows).__name__}"
        )
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, list | tuple) or len(row) != len(CSV_HEADER):
            raise CandleError(
                f"candle {number}: expected {len(CSV_HEADER)} values [{', '.join(CSV_HEADER)}], got {row!r}"
            )
        for name, value in zip(CSV_HEADER, row, strict=True):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise CandleError(f"candle {number}: {name} must be a number, got {value!r}")
    return _build(rows, [f"candle {number}" for number in range(1, len(rows) + 1)])


def _build(rows: Sequence[Sequence[str | float]], places: list[str]) -> pd.DataFrame:
    """Convert parsed rows to a validated candle frame; ``places[i]`` names row i in errors."""
    try:
        table = np.array(rows, dtype=np.float64).reshape(len(rows), len(CSV_HEADER))
    except ValueError as exc:
        raise CandleError(_first_unreadable(rows, places) or f"unreadable candles: {exc}") from None
    stamps = table[:, 0]
    whole = np.isfinite(stamps) & (stamps == np.floor(stamps))
    plausible = whole & (stamps >= _MS_RANGE[0]) & (stamps < _MS_RANGE[1])
    if not plausible.all():
        i = int(np.flatnonzero(~plausible)[0])
        raise CandleError(f"{places[i]}: timestamp {rows[i][0]!r} is not an epoch time in whole milliseconds")
    times = stamps.astype(np.int64)
    values = table[:, 1:]
    problems = _row_problems(times, values)
    if problems:
        raise CandleError(
            "; ".join(_at_first_row(description, bad, places, rows) for description, bad in problems)
        )
    return _frame(times, values)


def _first_unreadable(rows: Sequence[Sequence[str | float]], places: list[str]) -> str | None:
    for place, row in zip(places, rows, strict=True):
        for name, cell in zip(CSV_HEADER, row, strict=True):
            try:
                float(cell)
            except (TypeError, ValueError):
                return f"{place}: {name} {cell!r} is not a number"
    return None


def _at_first_row(
    description: str, bad: NDArray[np.bool_], places: list[str], rows: Sequence[Sequence[str | float]]
) -> str:
    i = int(np.flatnonzero(bad)[0])
    more = int(bad.sum()) - 1
    shown = ", ".join(f"{name}={cell}" for name, cell in zip(CSV_HEADER, rows[i], strict=True))
    return f"{places[i]}: {description} ({shown})" + (f", and {more} more" if more else "")


def _frame(times_ms: NDArray[np.int64], values: NDArray[np.float64]) -> pd.DataFrame:
    index = pd.DatetimeIndex(pd.to_datetime(times_ms, unit="ms", utc=True), name=INDEX_NAME)
    return pd.DataFrame(values, index=index, columns=list(COLUMNS), dtype=np.float64)


def _utc_index(times: pd.DatetimeIndex | list[datetime]) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(times)
    if index.tz is None:
        raise CandleError("times must be time-zone aware (UTC)")
    return index.tz_convert("UTC")
