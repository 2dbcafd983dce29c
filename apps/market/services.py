"""Writes of the market app: instruments, candle imports and fetches, resampling."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest, Least

from apps.core import clock
from apps.core.jobs import job_claimed, job_complete, job_fail
from apps.core.models import JobStatus
from apps.core.symbols import normalise_symbol
from apps.market import selectors
from apps.market.commentary import commentary_for
from apps.market.domain.analysis import MarketInsights, analyse
from apps.market.domain.candles import (
    CandleError,
    Gap,
    find_gaps,
    parse_timeframe,
    read_candles,
    resample,
    validate_candles,
)
from apps.market.models import CandleSeries, Instrument, MarketAnalysis, MarketEvent, Signal
from apps.market.providers.base import CandleProvider, FetchProgress, MarketInfo, ProviderError
from apps.market.providers.ccxt_provider import CcxtProvider
from apps.market.storage import UpsertCounts, upsert_candles

logger = logging.getLogger(__name__)


class MarketInputError(ValueError):
    """Bad input to a market service (unknown symbol, timeframe, file); nothing was written."""


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


def _split_symbol(symbol: str) -> tuple[str, str]:
    for quote in ("USDT", "USDC", "BUSD", "USD", "EUR", "BTC", "ETH"):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise MarketInputError(
        f"cannot tell base and quote currencies apart in {symbol!r}; pass --ccxt-symbol BASE/QUOTE"
    )


def instrument_get_or_create(
    *,
    symbol: str,
    exchange: str,
    ccxt_symbol: str | None = None,
    timeframes: list[str] | None = None,
    source: str = "",
) -> Instrument:
    """The instrument for ``symbol`` on ``exchange``, created offline from the symbol when missing."""
    symbol = normalise_symbol(symbol)
    existing = Instrument.objects.filter(exchange=exchange, symbol=symbol).first()
    if existing:
        if timeframes and not set(timeframes) <= set(existing.timeframes):
            existing.timeframes = sorted(set(existing.timeframes) | set(timeframes), key=_timeframe_order)
            existing.save(update_fields=["timeframes"])
        return existing
    if ccxt_symbol:
        base, quote = ccxt_symbol.split("/", 1)
    else:
        base, quote = _split_symbol(symbol)
    return Instrument.objects.create(
        symbol=symbol,
        exchange=exchange,
        ccxt_symbol=f"{base}/{quote}",
        base=base,
        quote=quote,
        timeframes=sorted(set(timeframes or []), key=_timeframe_order),
        source=source,
    )


def instrument_copy_create(
    *, source: Instrument, exchange: str, timeframes: list[str], note: str
) -> Instrument:
    """A new, inactive instrument for ``source``'s market (symbol, currencies, steps and limits) under
    another exchange id, its candles written by the caller alone: a replay's. Inactive, so no
    scheduled job fetches, analyses or trains it. ``note`` is its ``source`` (where its candles come
    from). Raises IntegrityError when the exchange already lists the symbol."""
    return Instrument.objects.create(
        symbol=source.symbol,
        exchange=exchange,
        ccxt_symbol=source.ccxt_symbol,
        base=source.base,
        quote=source.quote,
        active=False,
        timeframes=sorted(set(timeframes), key=_timeframe_order),
        amount_step=source.amount_step,
        price_step=source.price_step,
        min_amount=source.min_amount,
        max_amount=source.max_amount,
        min_notional=source.min_notional,
        source=note[:200],
    )


def instrument_delete(*, instrument: Instrument) -> None:
    """Delete an instrument with its candles, series and analyses. Raises ``ProtectedError`` while
    strategies, orders or generation runs still refer to it: their owners delete those first."""
    instrument.delete()


def instrument_create_from_market(*, market: MarketInfo, timeframes: list[str]) -> Instrument:
    """Create or refresh an instrument from the exchange's own market description."""
    instrument, _ = Instrument.objects.update_or_create(
        exchange=market.exchange,
        symbol=market.symbol,
        defaults={
            "ccxt_symbol": market.ccxt_symbol,
            "base": market.base,
            "quote": market.quote,
            "amount_step": market.amount_step,
            "price_step": market.price_step,
            "min_amount": market.min_amount,
            "max_amount": market.max_amount,
            "min_notional": market.min_cost,
            "source": f"ccxt:{market.exchange}",
        },
    )
    return instrument_get_or_create(
        symbol=instrument.symbol, exchange=instrument.exchange, timeframes=timeframes
    )


def _timeframe_order(name: str) -> pd.Timedelta:
    return parse_timeframe(name).duration


def _checked_timeframe(timeframe: str) -> str:
    try:
        return parse_timeframe(timeframe).name
    except CandleError as error:
        raise MarketInputError(str(error)) from None


def _report(
    instrument: Instrument, timeframe: str, counts: UpsertCounts, backfilled: int = 0
) -> IngestReport:
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
    timeframe = _checked_timeframe(timeframe)
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
    timeframe = _checked_timeframe(timeframe)
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
    return _report(instrument, timeframe, counts)


def market_provider(exchange: str) -> CandleProvider:
    """A ccxt provider for ``exchange``; CCXT_URLS_OVERRIDE points it elsewhere (tests, proxies)."""
    return CcxtProvider(
        exchange,
        urls_override=settings.CCXT_URLS_OVERRIDE.get(exchange),
        timeout_ms=settings.CCXT_TIMEOUT_MS,
        max_retries=settings.CCXT_MAX_RETRIES,
    )


def candles_fetch(
    *,
    instrument: Instrument,
    timeframe: str,
    since: datetime,
    until: datetime | None = None,
    provider: CandleProvider | None = None,
    progress: Callable[[FetchProgress], None] | None = None,
    backfill: bool = True,
) -> IngestReport:
    """Fetch final candles from the exchange and upsert them; then try to fill the gaps left.

    Raises ProviderError (temporary or permanent) when the exchange cannot deliver; what was
    fetched before the failure is not stored (each fetch is one transaction).
    """
    timeframe = _checked_timeframe(timeframe)
    provider = provider or market_provider(instrument.exchange)
    batch = provider.fetch_ohlcv(instrument.symbol, timeframe, since, until, progress)
    counts = candles_store(instrument=instrument, timeframe=timeframe, frame=batch.candles)
    backfilled = _backfill_gaps(instrument, timeframe, provider) if backfill else 0
    return _report(instrument, timeframe, counts, backfilled)


def _backfill_gaps(instrument: Instrument, timeframe: str, provider: CandleProvider) -> int:
    """Ask the provider for each stored gap once; exchanges often have what an import lacked."""
    filled = 0
    duration = parse_timeframe(timeframe).duration
    for gap in find_gaps(selectors.candle_times(instrument=instrument, timeframe=timeframe), timeframe):
        try:
            batch = provider.fetch_ohlcv(instrument.symbol, timeframe, gap.start, gap.end + duration)
        except ProviderError as error:
            logger.warning("Backfill of %s %s %s failed: %s", instrument, timeframe, gap.start, error)
            continue
        if not batch.candles.empty:
            filled += candles_store(instrument=instrument, timeframe=timeframe, frame=batch.candles).inserted
    return filled


def candles_fetch_latest(
    *, instrument: Instrument, timeframe: str, provider: CandleProvider | None = None
) -> IngestReport:
    """Fetch what is newer than the newest stored candle (or the last 1000 bars when none is)."""
    newest = selectors.newest_candle_time(instrument=instrument, timeframe=timeframe)
    duration = parse_timeframe(timeframe).duration
    since = newest + duration if newest is not None else clock.now() - 1000 * duration
    return candles_fetch(
        instrument=instrument, timeframe=timeframe, since=since, provider=provider, backfill=False
    )


def candles_resample(*, instrument: Instrument, from_timeframe: str, to_timeframe: str) -> IngestReport:
    """Build a higher timeframe from stored lower-timeframe candles (complete buckets only)."""
    source = selectors.candles_frame(instrument=instrument, timeframe=_checked_timeframe(from_timeframe))
    try:
        frame = resample(source, from_timeframe, to_timeframe)
    except CandleError as error:
        raise MarketInputError(str(error)) from None
    to_timeframe = _checked_timeframe(to_timeframe)
    with transaction.atomic():
        instrument_get_or_create(
            symbol=instrument.symbol, exchange=instrument.exchange, timeframes=[to_timeframe]
        )
        counts = candles_store(instrument=instrument, timeframe=to_timeframe, frame=frame)
    return _report(instrument, to_timeframe, counts)


ANALYSIS_SLOT_MINUTES = 30
ANALYSIS_BARS = 500


def analysis_slot(now: datetime | None = None) -> datetime:
    """The start of the 30-minute slot ``now`` falls in (UTC)."""
    now = now or clock.now()
    return now.replace(minute=now.minute - now.minute % ANALYSIS_SLOT_MINUTES, second=0, microsecond=0)


def analysis_request(*, instrument: Instrument, timeframe: str, slot: datetime) -> MarketAnalysis:
    """The analysis row of the instrument, timeframe and slot, created PENDING if it does not exist.
    Does not run it; a row that exists (pending, running or done) is returned as it is."""
    try:
        with transaction.atomic():
            return MarketAnalysis.objects.get_or_create(
                instrument=instrument, timeframe=timeframe, slot=slot
            )[0]
    except IntegrityError:  # created by a concurrent request between our read and insert
        return MarketAnalysis.objects.get(instrument=instrument, timeframe=timeframe, slot=slot)


def analysis_requests(*, now: datetime | None = None) -> list[MarketAnalysis]:
    """The 30-minute job's rows: one per active instrument and each of its timeframes for the slot,
    created PENDING where missing. Returns those still PENDING, for the caller to send."""
    slot = analysis_slot(now)
    rows = [
        analysis_request(instrument=instrument, timeframe=timeframe, slot=slot)
        for instrument in selectors.instrument_list(active=True)
        for timeframe in instrument.timeframes or selectors.candle_timeframes(instrument=instrument)
    ]
    return [row for row in rows if row.status == JobStatus.PENDING]


def _fetch_for_analysis(analysis: MarketAnalysis, provider: CandleProvider | None) -> dict[str, object]:
    try:
        report = candles_fetch_latest(
            instrument=analysis.instrument, timeframe=analysis.timeframe, provider=provider
        )
    except ProviderError as error:
        return {"fetch_status": "failed", "fetch_message": f"{type(error).__name__}: {error}"[:500]}
    return {
        "fetch_status": "ok",
        "fetch_message": report.describe()[:500],
        "candles_fetched": report.counts.inserted,
    }


def analysis_run(
    *,
    analysis_id: int,
    fetch: bool = True,
    provider: CandleProvider | None = None,
    commentary: bool = True,
) -> MarketAnalysis | None:
    """Fetch new candles, analyse the newest one and store the analysis with its signals and events.

    Claims the row first: a second run of the same analysis (a redelivered message) returns None
    and changes nothing. A failed fetch (offline, exchange down) is recorded and the stored candles
    are analysed anyway. When an LLM provider is configured, its commentary is stored too (see
    ``apps.market.commentary``), unless ``commentary`` is False (a replay: an LLM knows what
    followed the moment replayed).
    """
    with job_claimed(model=MarketAnalysis, pk=analysis_id) as analysis:
        if analysis is None:
            return None
        instrument, timeframe = analysis.instrument, analysis.timeframe
        fetched = _fetch_for_analysis(analysis, provider) if fetch else {"fetch_status": "skipped"}
        frame = selectors.candles_frame(instrument=instrument, timeframe=timeframe, limit=ANALYSIS_BARS)
        try:
            insights = analyse(frame, parse_timeframe(timeframe).duration.total_seconds())
        except ValueError as error:
            return job_fail(job=analysis, error=str(error))
        freshness = selectors.series_freshness(instrument=instrument, timeframe=timeframe, now=clock.now())
        patterns = selectors.recent_patterns(frame)
        if freshness.stale:
            # Old data must not pass for a current view: no signals, events or commentary from it.
            return job_complete(
                job=analysis,
                **fetched,
                last_candle_time=insights.last_time.to_pydatetime(),
                last_close=insights.last_close,
                stale=True,
                freshness=freshness.describe(timeframe),
                indicators=insights.indicators,
                regime=insights.regime,
                patterns=patterns,
                summary=f"Stale data: {freshness.describe(timeframe)}; no signals derived.",
                commentary={"status": "none", "reason": "the market data is stale"},
            )
        # Asked before the transaction: an LLM call may take seconds and must not hold it open.
        remarks = {"status": "none", "reason": "no commentary was asked for"}
        if commentary:
            remarks = commentary_for(
                symbol=instrument.symbol, timeframe=timeframe, insights=insights, patterns=patterns
            )
        with transaction.atomic():
            _store_insights(analysis, insights)
            return job_complete(
                job=analysis,
                **fetched,
                last_candle_time=insights.last_time.to_pydatetime(),
                last_close=insights.last_close,
                freshness=freshness.describe(timeframe),
                indicators=insights.indicators,
                regime=insights.regime,
                patterns=patterns,
                summary=insights.summary(),
                commentary=remarks,
            )


def _store_insights(analysis: MarketAnalysis, insights: MarketInsights) -> None:
    common = {"analysis": analysis, "instrument": analysis.instrument, "timeframe": analysis.timeframe}
    Signal.objects.bulk_create(
        [
            Signal(
                **common,
                time=s.time.to_pydatetime(),
                direction=s.direction,
                strength=s.strength,
                source=s.source,
                reason=s.reason,
            )
            for s in insights.signals
        ]
    )
    # An event belongs to its bar: re-analysing the same bar in a later slot must not repeat it.
    MarketEvent.objects.bulk_create(
        [
            MarketEvent(
                **common,
                time=e.time.to_pydatetime(),
                kind=e.kind,
                magnitude=e.magnitude,
                description=e.reason,
                details=e.details,
            )
            for e in insights.events
        ],
        ignore_conflicts=True,
    )


def analysis_run_all(*, now: datetime | None = None, fetch: bool = True) -> list[MarketAnalysis]:
    """Analyse every active instrument in each of its timeframes for the slot, here and now (the
    ``analyze_market`` command; the scheduled job sends each row to a worker instead)."""
    done = []
    for row in analysis_requests(now=now):
        analysis = analysis_run(analysis_id=row.pk, fetch=fetch)
        if analysis is not None:
            done.append(analysis)
    return done


def candles_fetch_latest_for(*, instrument_id: int, timeframe: str) -> IngestReport:
    return candles_fetch_latest(instrument=Instrument.objects.get(pk=instrument_id), timeframe=timeframe)
