"""The 30-minute market analysis: a row per instrument, timeframe and slot, and the run that fills it."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction

from apps.core import clock
from apps.core.jobs import job_claimed, job_complete, job_fail
from apps.core.models import JobStatus
from apps.market import selectors
from apps.market.commentary import commentary_for
from apps.market.domain.analysis import MarketInsights, analyse
from apps.market.domain.candles import parse_timeframe
from apps.market.models import Instrument, MarketAnalysis, MarketEvent, Signal
from apps.market.providers.base import CandleProvider, ProviderError
from apps.market.services.candle_fetch import candles_fetch_latest

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
