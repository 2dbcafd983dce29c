"""Run the market analysis now: `analyze_market [--symbol S] [--timeframe TF] [--no-fetch]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.market import selectors
from apps.market.domain.candles import TIMEFRAMES
from apps.market.services.analyses import analysis_request, analysis_run, analysis_slot


class Command(BaseCommand):
    help = "Analyse active instruments (or one symbol) for the current 30-minute slot."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--symbol")
        parser.add_argument("--exchange")
        parser.add_argument("--timeframe", choices=list(TIMEFRAMES))
        parser.add_argument("--no-fetch", action="store_true", help="analyse stored candles without fetching")

    def handle(
        self,
        *args: Any,
        symbol: str | None,
        exchange: str | None,
        timeframe: str | None,
        no_fetch: bool,
        **options: Any,
    ) -> None:
        if symbol:
            try:
                instruments = [selectors.instrument_resolve(symbol=symbol, exchange=exchange)]
            except selectors.InstrumentNotFound as error:
                raise CommandError(str(error)) from None
        else:
            instruments = list(selectors.instrument_list(active=True))
        slot = analysis_slot()
        for instrument in instruments:
            stored = selectors.candle_timeframes(instrument=instrument)
            if timeframe and timeframe not in stored:
                raise CommandError(
                    f"no {timeframe} candles for {instrument.symbol}; stored: {', '.join(stored) or 'none'}"
                )
            for tf in [timeframe] if timeframe else instrument.timeframes or stored:
                row = analysis_request(instrument=instrument, timeframe=tf, slot=slot)
                analysis = analysis_run(analysis_id=row.pk, fetch=not no_fetch)
                if analysis is None:
                    self.stdout.write(
                        f"{instrument.symbol} {tf}: already analysed for the slot {slot:%Y-%m-%d %H:%M}"
                    )
                else:
                    outcome = f"{analysis.summary or analysis.error} (fetch: {analysis.fetch_status})"
                    self.stdout.write(f"{instrument.symbol} {tf}: {analysis.status}; {outcome}")
