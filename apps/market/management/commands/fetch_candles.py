"""Fetch candles from an exchange through ccxt: `fetch_candles --exchange binance --symbol BTCUSDT ...`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from apps.market.domain.candles import CandleError, parse_timeframe
from apps.market.providers.base import FetchProgress, ProviderError
from apps.market.services.candle_fetch import candles_fetch, market_provider
from apps.market.services.instruments import instrument_create_from_market


def _date(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"--since/--until {text!r} is not a date like 2024-01-01 or 2024-01-01T12:00"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Fetch final candles from a ccxt exchange (public endpoints, no key) and store them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--exchange", default="binance")
        parser.add_argument("--symbol", required=True)
        parser.add_argument("--timeframe", required=True)
        parser.add_argument("--since", required=True, type=_date)
        parser.add_argument("--until", type=_date, default=None)

    def handle(
        self,
        *args: Any,
        exchange: str,
        symbol: str,
        timeframe: str,
        since: datetime,
        until: datetime | None,
        **options: Any,
    ) -> None:
        try:
            parse_timeframe(timeframe)
            provider = market_provider(exchange)
            market = provider.load_market(symbol)
        except (CandleError, ProviderError) as error:
            raise CommandError(f"{error} (nothing was fetched)") from None
        instrument = instrument_create_from_market(market=market, timeframes=[timeframe])
        with tqdm(total=1000, unit="‰", desc=f"{market.symbol} {timeframe}", file=self.stderr._out) as bar:

            def progress(step: FetchProgress) -> None:
                bar.n = int(step.fraction * 1000)
                bar.set_postfix(candles=step.candles, pages=step.pages)
                bar.refresh()

            try:
                report = candles_fetch(
                    instrument=instrument,
                    timeframe=timeframe,
                    since=since,
                    until=until,
                    provider=provider,
                    progress=progress,
                )
            except ProviderError as error:
                raise CommandError(f"{type(error).__name__}: {error} (nothing was stored)") from None
        self.stdout.write(
            report.describe() + (f"; {report.backfilled} backfilled" if report.backfilled else "")
        )
