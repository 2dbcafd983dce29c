"""Market tasks: the 30-minute analysis, one task per instrument and timeframe, and fetches on demand."""

from __future__ import annotations

from celery import shared_task

from apps.core.dispatch import job_dispatch
from apps.market.providers.base import TemporaryProviderError
from apps.market.services import analyses, candle_fetch
from workers.periodic import once_per_slot


@shared_task(name="market.analysis_run_all")
@once_per_slot
def analysis_run_all() -> None:
    """Beat-driven: one analysis row per active instrument and timeframe for the slot, each sent to
    a worker of its own (a slot's row is unique, so a repeated message adds nothing)."""
    for analysis in analyses.analysis_requests():
        job_dispatch(analysis_run, analysis)


@shared_task(name="market.analysis_run")
def analysis_run(analysis_id: int) -> None:
    """Fetch, analyse and store one analysis row; a redelivered message does nothing."""
    analyses.analysis_run(analysis_id=analysis_id)


@shared_task(
    name="market.candles_fetch_latest",
    autoretry_for=(TemporaryProviderError,),
    retry_backoff=30,
    max_retries=3,
)
def candles_fetch_latest(instrument_id: int, timeframe: str) -> None:
    """Fetch candles newer than the newest stored one (admin action 'fetch now')."""
    candle_fetch.candles_fetch_latest_for(instrument_id=instrument_id, timeframe=timeframe)
