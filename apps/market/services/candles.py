"""Candle writes: closed candles validated and upserted, imported from a file, or resampled."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest, Least

from apps.core import clock
from apps.market import selectors
from apps.market.domain.candles import (
    CandleError,
    Gap,
    find_gaps,
    parse_timeframe,
    read_candles,
    resample,
    validate_candles,
)
from apps.market.errors import MarketInputError
from apps.market.models import CandleSeries, Instrument
from apps.market.services.instruments import instrument_get_or_create
from apps.market.storage import UpsertCounts, upsert_candles

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestReport:
    """What an import or fetch did: counts, the range covered and the gaps left in it."""

    instrument: Instrument
    timeframe: str
    counts: UpsertCounts
    first: datetime | None
    last: datetime | None
    gaps: list[Gap] = field(default_factory=list)
    backfilled: int = 0

    def describe(self) -> str:
        span = f"{self.first:%Y-%m-%d %H:%M} .. {self.last:%Y-%m-%d %H:%M}" if self.first else "no candles"
        missing = sum(gap.missing for gap in self.gaps)
        return (
            f"{self.instrument.symbol} {self.timeframe}: {self.counts.inserted} inserted, "
            f"{self.counts.updated} updated, {self.counts.unchanged} unchanged ({span}); "
            f"{len(self.gaps)} gap(s), {missing} candle(s) missing"
        )


def checked_timeframe(timeframe: str) -> str:
    """The timeframe's canonical name; one the candle domain does not know raises MarketInputError."""
    try:
        return parse_timeframe(timeframe).name
    except CandleError as error:
        raise MarketInputError(str(error)) from None


def ingest_report(
    instrument: Instrument, timeframe: str, counts: UpsertCounts, backfilled: int = 0
) -> IngestReport:
    """The report of a write: its counts, with the range and gaps of the series as now stored."""
    times = selectors.candle_times(instrument=instrument, timeframe=timeframe)
    return IngestReport(
        instrument=instrument,
        timeframe=timeframe,
        counts=counts,
        first=times[0] if len(times) else None,
        last=times[-1] if len(times) else None,
        gaps=find_gaps(times, timeframe) if len(times) > 1 else [],
        backfilled=backfilled,
    )


def candles_store(*, instrument: Instrument, timeframe: str, frame: pd.DataFrame) -> UpsertCounts:
    """Validate and upsert closed candles in one transaction: all of them are stored, or none.

    Only closed candles are stored, whatever their source: the candle still forming (it opened
    before :func:`apps.core.clock.now` and closes after it) is left out, since its prices will still
    change; a candle that opens in the future is an error.
    """
    timeframe = checked_timeframe(timeframe)
    try:
        validate_candles(frame)
    except CandleError as error:
        raise MarketInputError(str(error)) from None
    period = parse_timeframe(timeframe)
    off_grid = frame.index != period.floor(frame.index)
    if off_grid.any():
        raise MarketInputError(
            f"candle at {frame.index[off_grid][0]} does not open on a {timeframe} boundary"
        )
    now = pd.Timestamp(clock.now())
    if (frame.index > now).any():
        first = frame.index[frame.index > now][0]
        raise MarketInputError(f"candle at {first} opens in the future (it is {now:%Y-%m-%d %H:%M} UTC)")
    forming = frame.index + period.duration > now
    if forming.any():
        logger.info(
            "%s %s: the candle at %s is still forming; not stored",
            instrument,
            timeframe,
            frame.index[forming][0],
        )
        frame = frame[~forming]
    with transaction.atomic():
        counts = upsert_candles(instrument.pk, timeframe, frame)
        if len(frame):
            _series_record(instrument, timeframe, frame.index.min(), frame.index.max(), counts.inserted)
        return counts


def _series_record(
    instrument: Instrument, timeframe: str, first: pd.Timestamp, newest: pd.Timestamp, inserted: int
) -> None:
    """Fold a write into the series' summary row (the caller's transaction holds both)."""
    first_open, newest_open = first.to_pydatetime(), newest.to_pydatetime()
    rows = CandleSeries.objects.filter(instrument=instrument, timeframe=timeframe)
    fold = {
        "count": F("count") + inserted,
        "first_open": Least("first_open", Value(first_open)),
        "newest_open": Greatest("newest_open", Value(newest_open)),
    }
    if rows.update(**fold):
        return
    try:
        with transaction.atomic():
            CandleSeries.objects.create(
                instrument=instrument,
                timeframe=timeframe,
                first_open=first_open,
                newest_open=newest_open,
                count=inserted,
            )
    except IntegrityError:  # a concurrent first write created it: fold ours in
        rows.update(**fold)


def candles_import_file(*, path: Path, symbol: str, timeframe: str, exchange: str) -> IngestReport:
    """Import a CSV or ccxt-JSON candle file; a bad file raises MarketInputError and writes nothing."""
    timeframe = checked_timeframe(timeframe)
    if not path.is_file():
        raise MarketInputError(f"no such file: {path}")
    try:
        frame = read_candles(path)
    except CandleError as error:
        raise MarketInputError(str(error)) from None
    with transaction.atomic():
        instrument = instrument_get_or_create(
            symbol=symbol, exchange=exchange, timeframes=[timeframe], source=f"file:{path.name}"
        )
        counts = candles_store(instrument=instrument, timeframe=timeframe, frame=frame)
    return ingest_report(instrument, timeframe, counts)


def candles_resample(*, instrument: Instrument, from_timeframe: str, to_timeframe: str) -> IngestReport:
    """Build a higher timeframe from stored lower-timeframe candles (complete buckets only)."""
    source = selectors.candles_frame(instrument=instrument, timeframe=checked_timeframe(from_timeframe))
    try:
        frame = resample(source, from_timeframe, to_timeframe)
    except CandleError as error:
        raise MarketInputError(str(error)) from None
    to_timeframe = checked_timeframe(to_timeframe)
    with transaction.atomic():
        instrument_get_or_create(
            symbol=instrument.symbol, exchange=instrument.exchange, timeframes=[to_timeframe]
        )
        counts = candles_store(instrument=instrument, timeframe=to_timeframe, frame=frame)
    return ingest_report(instrument, to_timeframe, counts)
