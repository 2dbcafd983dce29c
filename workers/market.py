"""Market tasks: the 30-minute analysis of every active instrument."""

from __future__ import annotations

from celery import shared_task

from apps.market import services
from apps.market.providers.base import TemporaryProviderError


@shared_task(name="market.analysis_run_all")
def analysis_run_all() -> None:
    """Beat-driven; each instrument's analysis is unique per slot, so a repeated message adds nothing."""
    services.analysis_run_all()


@shared_task(name="market.analysis_run")
def analysis_run(instrument_id: int, timeframe: str) -> None:
    """Analyse one instrument now (admin action); a second run in the same slot does nothing."""
    services.analysis_run_now(instrument_id=instrument_id, timeframe=timeframe)


@shared_task(
    name="market.candles_fetch_latest",
    autoretry_for=(TemporaryProviderError,),
    retry_backoff=30,
    max_retries=3,
)
def candles_fetch_latest(instrument_id: int, timeframe: str) -> None:
    """Fetch candles newer than the newest stored one (admin action 'fetch now')."""
    services.candles_fetch_latest_for(instrument_id=instrument_id, timeframe=timeframe)
