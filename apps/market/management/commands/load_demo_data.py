"""Load the market data shipped in fixtures/, then recent Binance candles when online; safe to rerun."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from apps.market import selectors
from apps.market.domain.candles import parse_timeframe
from apps.market.providers.base import ProviderError
from apps.market.providers.ccxt_provider import CcxtProvider
from apps.market.services.candle_fetch import candles_fetch, market_provider
from apps.market.services.candles import candles_import_file
from apps.market.services.instruments import instrument_create_from_market

MANIFEST = Path(settings.BASE_DIR) / "fixtures" / "market" / "manifest.json"
# The markets and timeframe of the brief's examples (BTCUSDT, ETHUSDT 1h), from Binance's public API.
RECENT_MARKETS = ("BTC/USDT", "ETH/USDT")
RECENT_TIMEFRAME = "1h"
# Asking whether Binance answers at all must not hold up an offline machine for the full retries.
PROBE_TIMEOUT_MS = 5000


class Command(BaseCommand):
    help = (
        "Import the bundled BTC/ETH/LTC candles (2014-2020), then fetch BTC/USDT and ETH/USDT 1h from "
        "Binance since DEMO_DATA_FETCH_SINCE when it answers; a second run adds only what is new."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--offline", action="store_true", help="only the shipped history")

    def handle(self, *args: Any, offline: bool, **options: Any) -> None:
        for entry in json.loads(MANIFEST.read_text()):
            report = candles_import_file(
                path=MANIFEST.parent / entry["file"],
                symbol=entry["symbol"],
                timeframe=entry["timeframe"],
                exchange=entry["exchange"],
            )
            self.stdout.write(report.describe())
        since = settings.DEMO_DATA_FETCH_SINCE
        if offline or since is None:
            reason = "--offline" if offline else "DEMO_DATA_FETCH_SINCE is empty"
            self.stdout.write(
                f"Recent Binance candles: not fetched ({reason}); the shipped history is loaded."
            )
            return
        self._fetch_recent(since)

    def _fetch_recent(self, since: datetime) -> None:
        probe = CcxtProvider(
            "binance",
            urls_override=settings.CCXT_URLS_OVERRIDE.get("binance"),
            timeout_ms=min(settings.CCXT_TIMEOUT_MS, PROBE_TIMEOUT_MS),
            max_retries=0,
        )
        try:
            markets = [probe.load_market(symbol) for symbol in RECENT_MARKETS]
        except ProviderError as error:
            self.stdout.write(
                f"Offline: Binance did not answer ({str(error)[:120]}); the shipped history is loaded "
                "(BTCUSD, ETHUSD, LTCUSD to 2019-2020): run this command again when online."
            )
            return
        provider = market_provider("binance")
        step = parse_timeframe(RECENT_TIMEFRAME).duration.to_pytimedelta()
        for market in markets:
            instrument = instrument_create_from_market(market=market, timeframes=[RECENT_TIMEFRAME])
            newest = selectors.newest_candle_time(instrument=instrument, timeframe=RECENT_TIMEFRAME)
            start = max(since, newest + step) if newest is not None else since
            try:
                report = candles_fetch(
                    instrument=instrument,
                    timeframe=RECENT_TIMEFRAME,
                    since=start,
                    provider=provider,
                    backfill=False,
                )
            except ProviderError as error:
                self.stdout.write(
                    f"{instrument.symbol} {RECENT_TIMEFRAME}: Binance stopped answering ({error})"
                )
                continue
            self.stdout.write(f"{report.describe()} [Binance]")
