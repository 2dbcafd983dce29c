"""Candles fetched from the exchange: a window (then its gaps backfilled) or what is newer than the store."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from django.conf import settings

from apps.core import clock
from apps.market import selectors
from apps.market.domain.candles import parse_timeframe
from apps.market.models import Instrument
from apps.market.providers.base import CandleProvider, FetchProgress, ProviderError
from apps.market.providers.ccxt_provider import CcxtProvider
from apps.market.services.candles import IngestReport, candles_store, checked_timeframe, ingest_report

logger = logging.getLogger(__name__)


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
    timeframe = checked_timeframe(timeframe)
    provider = provider or market_provider(instrument.exchange)
    batch = provider.fetch_ohlcv(instrument.symbol, timeframe, since, until, progress)
    counts = candles_store(instrument=instrument, timeframe=timeframe, frame=batch.candles)
    backfilled = _backfill_gaps(instrument, timeframe, provider) if backfill else 0
    return ingest_report(instrument, timeframe, counts, backfilled)


def _backfill_gaps(instrument: Instrument, timeframe: str, provider: CandleProvider) -> int:
    """Ask the provider for each stored gap once; exchanges often have what an import lacked."""
    filled = 0
    duration = parse_timeframe(timeframe).duration
    for gap in selectors.candle_gaps(instrument=instrument, timeframe=timeframe):
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


def candles_fetch_latest_for(*, instrument_id: int, timeframe: str) -> IngestReport:
    """:func:`candles_fetch_latest` of the instrument with this id (the fetch task sends ids)."""
    return candles_fetch_latest(instrument=Instrument.objects.get(pk=instrument_id), timeframe=timeframe)
