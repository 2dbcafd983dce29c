"""Reads of the market app: instruments, candle frames for analysis, and stored analyses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.db import connection
from django.db.models import FilteredRelation, Q, QuerySet

from apps.core.symbols import normalise_symbol
from apps.market.candle_reads import empty_candle_frame, frame_postgresql
from apps.market.domain.candles import COLUMNS, INDEX_NAME, Gap, parse_timeframe
from apps.market.domain.patterns import find
from apps.market.models import Candle, CandleSeries, Instrument, MarketAnalysis, MarketEvent, Signal
from apps.market.queries import IndicatorRequest

# Extra bars loaded before an indicator window so recursive indicators have settled.
WARMUP_MARGIN_BARS = 500


class InstrumentNotFound(LookupError):
    """No instrument matches; the message lists the known symbols."""


def instrument_list(*, active: bool | None = None) -> QuerySet[Instrument]:
    instruments = Instrument.objects.all()
    return instruments if active is None else instruments.filter(active=active)


def instrument_resolve(*, symbol: str, exchange: str | None = None) -> Instrument:
    """The instrument for a symbol (``BTCUSDT`` or ``BTC/USDT``), on ``exchange`` when given."""
    return _the_one(_named(symbol, exchange), symbol, exchange)


def instrument_series_resolve(
    *, symbol: str, exchange: str | None, timeframe: str
) -> tuple[Instrument, CandleSeries | None]:
    """:func:`instrument_resolve` and the instrument's series in ``timeframe`` (None when it has no
    candles there) in one query: the market API resolves both on every request."""
    wanted = FilteredRelation("series", condition=Q(series__timeframe=timeframe))
    matches = _named(symbol, exchange).annotate(wanted_series=wanted).select_related("wanted_series")
    instrument = _the_one(matches, symbol, exchange)
    # Django leaves the attribute unset where the outer join found no series.
    return instrument, getattr(instrument, "wanted_series", None)


def _named(symbol: str, exchange: str | None) -> QuerySet[Instrument]:
    matches = Instrument.objects.filter(symbol=normalise_symbol(symbol))
    return matches.filter(exchange=exchange) if exchange else matches


def _the_one(matches: QuerySet[Instrument], symbol: str, exchange: str | None) -> Instrument:
    found = list(matches[:2])
    if len(found) == 1:
        return found[0]
    normalised = normalise_symbol(symbol)
    if len(found) > 1:
        exchanges = ", ".join(matches.values_list("exchange", flat=True))
        raise InstrumentNotFound(
            f"{normalised} is listed on several exchanges ({exchanges}); name the exchange"
        )
    known = ", ".join(sorted(set(Instrument.objects.values_list("symbol", flat=True)))) or "none yet"
    where = f" on {exchange}" if exchange else ""
    raise InstrumentNotFound(f"unknown symbol {symbol!r}{where}; known symbols: {known}")


def candle_timeframes(*, instrument: Instrument) -> list[str]:
    """The timeframes the instrument has stored candles in (from the series' summary rows)."""
    return list(CandleSeries.objects.filter(instrument=instrument).values_list("timeframe", flat=True))


def series_get(*, instrument: Instrument, timeframe: str) -> CandleSeries | None:
    """The summary row of the instrument's candles in ``timeframe``; None when none are stored."""
    return CandleSeries.objects.filter(instrument=instrument, timeframe=timeframe).first()


def newest_candle_time(*, instrument: Instrument, timeframe: str) -> datetime | None:
    series = series_get(instrument=instrument, timeframe=timeframe)
    return None if series is None else series.newest_open


def candle_span(*, instrument: Instrument, timeframe: str) -> tuple[datetime, datetime] | None:
    """Open times of the first and last stored candle, or None when there are none."""
    series = series_get(instrument=instrument, timeframe=timeframe)
    return None if series is None else (series.first_open, series.newest_open)


def candle_count(
    *, instrument: Instrument, timeframe: str, start: datetime | None = None, end: datetime | None = None
) -> int:
    """How many candles are stored, with open times in [start, end] when given. A window that holds
    the whole series (a search or a backtest of all the history, the usual request) is answered by
    the series' summary row; only a window inside it counts candles (an index range)."""
    series = series_get(instrument=instrument, timeframe=timeframe)
    if series is None or (start is not None and start > series.newest_open):
        return 0
    if end is not None and end < series.first_open:
        return 0
    if (start is None or start <= series.first_open) and (end is None or end >= series.newest_open):
        return series.count
    candles = Candle.objects.filter(instrument=instrument, timeframe=timeframe)
    if start is not None:
        candles = candles.filter(open_time__gte=start)
    if end is not None:
        candles = candles.filter(open_time__lte=end)
    return candles.count()


@dataclass(frozen=True)
class Freshness:
    """How old a series' newest closed candle is, at a moment: ``stale`` once a whole bar has closed
    since it (plus a grace for the exchange and the fetch) without reaching the store."""

    newest_open: datetime | None
    newest_close: datetime | None
    age_seconds: float | None
    stale: bool

    def describe(self, timeframe: str) -> str:
        if self.newest_close is None:
            return f"no {timeframe} candles are stored"
        minutes = (self.age_seconds or 0) / 60
        closed = f"{self.newest_close:%Y-%m-%d %H:%M} UTC"
        return f"the newest {timeframe} candle closed {closed}, {minutes:,.0f} minutes ago"


FRESHNESS_GRACE = timedelta(minutes=5)


def series_freshness(*, instrument: Instrument, timeframe: str, now: datetime) -> Freshness:
    """The age of the newest stored closed candle at ``now`` (the market clock)."""
    newest = newest_candle_time(instrument=instrument, timeframe=timeframe)
    if newest is None:
        return Freshness(None, None, None, True)
    duration = parse_timeframe(timeframe).duration.to_pytimedelta()
    closed = newest + duration
    age = now - closed
    return Freshness(newest, closed, age.total_seconds(), age > duration + FRESHNESS_GRACE)


def candle_gaps(*, instrument: Instrument, timeframe: str) -> list[Gap]:
    """The runs of missing candles in the stored series, oldest first.

    The series' summary row tells when there are none (its count fills its span), and then no
    candle is read; otherwise one query returns only the candle before each gap and the next one.
    """
    series = series_get(instrument=instrument, timeframe=timeframe)
    period = parse_timeframe(timeframe)
    if series is None or series.count == (series.newest_open - series.first_open) // period.duration + 1:
        return []
    if connection.vendor == "postgresql":
        later, step = "open_time + %s", period.duration.to_pytimedelta()
    else:  # open times are stored as text that sorts as time: 'YYYY-MM-DD HH:MM:SS'
        later, step = "datetime(open_time, %s)", f"+{int(period.duration.total_seconds())} seconds"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT open_time, next_open FROM ("  # noqa: S608  (only constant SQL is interpolated)
            "  SELECT open_time, LEAD(open_time) OVER (ORDER BY open_time) AS next_open"
            "  FROM market_candle WHERE instrument_id = %s AND timeframe = %s"
            f") AS pairs WHERE next_open > {later} ORDER BY open_time",
            [instrument.pk, timeframe, step],
        )
        pairs = cursor.fetchall()
    gaps = []
    for before, after in pairs:
        last, next_ = pd.to_datetime(before, utc=True), pd.to_datetime(after, utc=True)
        missing = (next_ - last) // period.duration - 1
        gaps.append(Gap(last + period.duration, next_ - period.duration, int(missing)))
    return gaps


def candle_times(*, instrument: Instrument, timeframe: str) -> pd.DatetimeIndex:
    """Every stored open time of the series, oldest first."""
    times = Candle.objects.filter(instrument=instrument, timeframe=timeframe).order_by("open_time")
    return pd.DatetimeIndex(list(times.values_list("open_time", flat=True)), tz="UTC")


def candles_frame(
    *,
    instrument: Instrument,
    timeframe: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Candles as a candle frame (UTC open-time index, float64 OHLCV), oldest first.

    ``start``/``end`` bound the open times (inclusive); ``limit`` keeps the newest ``limit`` of them.
    """
    candles = Candle.objects.filter(instrument=instrument, timeframe=timeframe)
    if start is not None:
        candles = candles.filter(open_time__gte=start)
    if end is not None:
        candles = candles.filter(open_time__lte=end)
    # The newest ``limit`` in one query (the index read backwards), put back oldest first.
    newest_first = limit is not None
    ordered = candles.order_by("-open_time" if newest_first else "open_time").values_list(
        "open_time", *COLUMNS
    )
    sql, params = (ordered[:limit] if newest_first else ordered).query.sql_with_params()
    if connection.vendor == "postgresql":
        return frame_postgresql(sql, params)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return _frame(rows[::-1] if newest_first else rows)


def _frame(rows: list[tuple]) -> pd.DataFrame:
    """A candle frame of (open time, *COLUMNS) rows."""
    if not rows:
        return empty_candle_frame()
    times, *columns = zip(*rows, strict=True)
    index = pd.DatetimeIndex(pd.to_datetime(list(times), utc=True), name=INDEX_NAME)
    return pd.DataFrame(
        {name: np.asarray(values, dtype=np.float64) for name, values in zip(COLUMNS, columns, strict=True)},
        index=index,
    )


def analysis_list() -> QuerySet[MarketAnalysis]:
    return MarketAnalysis.objects.select_related("instrument")


def signal_list() -> QuerySet[Signal]:
    return Signal.objects.select_related("instrument")


def event_list() -> QuerySet[MarketEvent]:
    return MarketEvent.objects.select_related("instrument")


def indicator_series(
    *,
    instrument: Instrument,
    timeframe: str,
    requests: list[IndicatorRequest],
    limit: int,
    start: datetime | None = None,
    end: datetime | None = None,
) -> tuple[pd.DatetimeIndex, dict[str, dict[str, np.ndarray]]]:
    """The newest ``limit`` bars in [start, end] of each requested indicator.

    Bars before the window are loaded only to warm the indicators up (recursive ones such as EMA
    and RSI need several times their period to settle), so the values match the full history's.
    """
    margin = max(WARMUP_MARGIN_BARS, 10 * max(r.indicator.warmup(r.params) for r in requests))
    if start is not None:
        earliest = pd.Timestamp(start) - margin * parse_timeframe(timeframe).duration
        frame = candles_frame(instrument=instrument, timeframe=timeframe, start=earliest, end=end)
        in_window = int((frame.index >= pd.Timestamp(start)).sum())
    else:
        frame = candles_frame(instrument=instrument, timeframe=timeframe, end=end, limit=limit + margin)
        in_window = len(frame)
    keep = min(limit, in_window)
    first = len(frame) - keep
    values = {
        request.label: {
            name: series[first:] for name, series in request.indicator.compute(frame, request.params).items()
        }
        for request in requests
    }
    return frame.index[first:], values


RECENT_PATTERN_BARS = 10


def detect_patterns(frame: pd.DataFrame, names: list[str] | None = None) -> list[dict]:
    """Every detection on ``frame`` as JSON-ready dicts, in the order they became known."""
    return find(frame, names).to_dicts()


def recent_patterns(frame: pd.DataFrame) -> list[dict]:
    """Detections confirmed on the newest RECENT_PATTERN_BARS bars (of a frame in time order):
    what an analysis reports. Only those rows become dicts."""
    if frame.empty:
        return []
    return find(frame).since(len(frame) - min(RECENT_PATTERN_BARS, len(frame))).to_dicts()


def pattern_detections(
    *,
    instrument: Instrument,
    timeframe: str,
    names: list[str] | None,
    limit: int,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[dict]:
    """Patterns detected on the newest ``limit`` bars in [start, end]."""
    frame = candles_frame(instrument=instrument, timeframe=timeframe, start=start, end=end, limit=limit)
    return detect_patterns(frame, names)


def newest_candles_by_series() -> list[dict]:
    """The newest candle time of each active instrument's stored timeframes (summary rows: no scan)."""
    rows = (
        CandleSeries.objects.filter(instrument__active=True)
        .values("instrument__symbol", "instrument__exchange", "timeframe", "newest_open")
        .order_by("instrument__symbol", "timeframe")
    )
    return [
        {
            "symbol": r["instrument__symbol"],
            "exchange": r["instrument__exchange"],
            "timeframe": r["timeframe"],
            "newest": r["newest_open"],
        }
        for r in rows
    ]
