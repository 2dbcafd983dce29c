"""Candle writes: closed candles validated and upserted, imported from a file, or resampled."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain, islice
from pathlib import Path

import pandas as pd
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest, Least
from django.utils import timezone

from apps.core import clock
from apps.market import selectors
from apps.market.domain.candle_files import CSV_CHUNK_BYTES, CandleFile
from apps.market.domain.candles import CandleError, Gap, parse_timeframe, resample, validate_candles
from apps.market.errors import MarketInputError
from apps.market.models import CandleSeries, Instrument
from apps.market.services.instruments import instrument_get_or_create
from apps.market.storage import UpsertCounts, analyze_candles, upsert_candles

logger = logging.getLogger(__name__)

# A write that inserts at least this many candles refreshes PostgreSQL's statistics once committed.
ANALYZE_AFTER_ROWS = 10_000


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
    repeats: int = 0

    def describe(self) -> str:
        span = f"{self.first:%Y-%m-%d %H:%M} .. {self.last:%Y-%m-%d %H:%M}" if self.first else "no candles"
        missing = sum(gap.missing for gap in self.gaps)
        repeats = f"; {self.repeats} repeated row(s) skipped" if self.repeats else ""
        return (
            f"{self.instrument.symbol} {self.timeframe}: {self.counts.inserted} inserted, "
            f"{self.counts.updated} updated, {self.counts.unchanged} unchanged ({span}); "
            f"{len(self.gaps)} gap(s), {missing} candle(s) missing{repeats}"
        )


def checked_timeframe(timeframe: str) -> str:
    """The timeframe's canonical name; one the candle domain does not know raises MarketInputError."""
    try:
        return parse_timeframe(timeframe).name
    except CandleError as error:
        raise MarketInputError(str(error)) from None


def ingest_report(
    instrument: Instrument, timeframe: str, counts: UpsertCounts, backfilled: int = 0, repeats: int = 0
) -> IngestReport:
    """The report of a write: its counts, with the range and gaps of the series as now stored."""
    series = selectors.series_get(instrument=instrument, timeframe=timeframe)
    return IngestReport(
        instrument=instrument,
        timeframe=timeframe,
        counts=counts,
        first=series.first_open if series else None,
        last=series.newest_open if series else None,
        gaps=selectors.candle_gaps(instrument=instrument, timeframe=timeframe),
        backfilled=backfilled,
        repeats=repeats,
    )


def candles_store(*, instrument: Instrument, timeframe: str, frame: pd.DataFrame) -> UpsertCounts:
    """Validate and upsert closed candles in one transaction: all of them are stored, or none.

    Only closed candles are stored, whatever their source: the candle still forming (it opened
    before :func:`apps.core.clock.now` and closes after it) is left out, since its prices will still
    change; a candle that opens in the future is an error. The series' summary row is updated in the
    same transaction; a bulk write refreshes the planner's statistics once committed.
    """
    timeframe = checked_timeframe(timeframe)
    try:
        validate_candles(frame)
    except CandleError as error:
        raise MarketInputError(str(error)) from None
    frame = _closed_candles(instrument, timeframe, frame, now=pd.Timestamp(clock.now()))
    with transaction.atomic():
        counts = upsert_candles(instrument.pk, timeframe, frame)
        if len(frame):
            _series_record(instrument, timeframe, frame.index.min(), frame.index.max(), counts.inserted)
        _statistics_refresh(counts.inserted)
        return counts


def _closed_candles(
    instrument: Instrument, timeframe: str, frame: pd.DataFrame, *, now: pd.Timestamp, where: str = ""
) -> pd.DataFrame:
    """The closed candles of a valid candle frame. A candle off the timeframe's grid or opening after
    ``now`` raises MarketInputError (``where`` starts its message); the one still forming is left out."""
    period = parse_timeframe(timeframe)
    off_grid = frame.index != period.floor(frame.index)
    if off_grid.any():
        raise MarketInputError(
            f"{where}candle at {frame.index[off_grid][0]} does not open on a {timeframe} boundary"
        )
    if (frame.index > now).any():
        first = frame.index[frame.index > now][0]
        raise MarketInputError(
            f"{where}candle at {first} opens in the future (it is {now:%Y-%m-%d %H:%M} UTC)"
        )
    forming = frame.index + period.duration > now
    if forming.any():
        logger.info(
            "%s %s: the candle at %s is still forming; not stored",
            instrument,
            timeframe,
            frame.index[forming][0],
        )
        frame = frame[~forming]
    return frame


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
        "updated_at": timezone.now(),  # a queryset update skips auto_now
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


def _statistics_refresh(inserted: int) -> None:
    """After a bulk write commits, refresh the planner's statistics of the candle table.

    Left to autovacuum, they stay stale for minutes, and the planner then reads a series' newest
    candles by scanning the whole table. Run on commit (of the outermost transaction: an import, a
    fetch, a replay's setup), so ANALYZE sees the new rows and holds no lock inside the write.
    """
    if inserted >= ANALYZE_AFTER_ROWS:
        transaction.on_commit(analyze_candles)


def candles_import_file(
    *,
    path: Path,
    symbol: str,
    timeframe: str,
    exchange: str,
    ccxt_symbol: str | None = None,
    chunk_bytes: int = CSV_CHUNK_BYTES,
) -> IngestReport:
    """Import a CSV or ccxt-JSON candle file whole, or not at all.

    The file is read a chunk at a time (``chunk_bytes`` of CSV text: memory does not grow with the
    file) and each chunk is validated and upserted as it comes, all in one transaction. A problem
    anywhere, on the last line too, raises MarketInputError and rolls everything back, the instrument
    as well when the import created it: nothing is left half-imported, and the corrected file can
    simply be imported again. The series' summary row is updated once, at the end. A file with no
    candle to store (empty, only a header, or only the candle still forming) is refused too, so no
    empty instrument is left behind. ``ccxt_symbol`` (``BASE/QUOTE``) names the currencies of a new
    instrument whose symbol cannot be split (``GOOG`` is ``GOOG/USD``).
    """
    timeframe = checked_timeframe(timeframe)
    if not path.is_file():
        raise MarketInputError(f"no such file: {path}")
    where = f"{path.name}: "
    # One "now" for the whole file, so that every chunk agrees on which candle is still forming.
    now = pd.Timestamp(clock.now())
    counts, first, newest = UpsertCounts(0, 0, 0), None, None
    try:
        candles = CandleFile(path, chunk_bytes=chunk_bytes)
        chunks = iter(candles)
        # The first chunk is read before the database is touched: a file that is not a candle file
        # at all, or has no candle, is refused without a query.
        head = list(islice(chunks, 1))
        if not head:
            raise MarketInputError(f"{where}the file has no candles")
        with transaction.atomic():
            instrument = instrument_get_or_create(
                symbol=symbol,
                exchange=exchange,
                ccxt_symbol=ccxt_symbol,
                timeframes=[timeframe],
                source=f"file:{path.name}",
            )
            for chunk in chain(head, chunks):
                closed = _closed_candles(instrument, timeframe, chunk, now=now, where=where)
                if closed.empty:
                    continue
                counts += upsert_candles(instrument.pk, timeframe, closed)
                first = closed.index[0] if first is None else first
                newest = closed.index[-1]
            if first is None or newest is None:  # only one candle can be forming: the file's last
                raise MarketInputError(f"{where}nothing to import: its only candle is still forming")
            _series_record(instrument, timeframe, first, newest, counts.inserted)
            _statistics_refresh(counts.inserted)
    except CandleError as error:
        raise MarketInputError(str(error)) from None
    except OSError as error:
        raise MarketInputError(f"{where}cannot read the file: {error.strerror or error}") from None
    return ingest_report(instrument, timeframe, counts, repeats=candles.repeats)


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
