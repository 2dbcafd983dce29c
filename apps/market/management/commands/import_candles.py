"""Import candles from a CSV or ccxt-JSON file: `import_candles PATH --symbol S --timeframe TF`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.market.errors import MarketInputError
from apps.market.services.candles import candles_import_file


class Command(BaseCommand):
    help = (
        "Import candles from a file: CSV with a header naming timestamp,open,high,low,close,volume "
        "(timestamp = open time in epoch milliseconds), or ccxt's JSON rows. The whole file is "
        "imported or, at the first bad row, nothing (exit status 1 with the line and the reason). "
        "Importing a file again changes only the candles that differ."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--symbol", required=True, help="e.g. BTCUSDT or GOOG")
        parser.add_argument("--timeframe", required=True, help="1m 5m 15m 30m 1h 4h 1d 1w")
        parser.add_argument("--exchange", default="binance", help="ccxt exchange id (default binance)")
        parser.add_argument(
            "--ccxt-symbol",
            help="BASE/QUOTE of a new instrument whose symbol cannot be split into its currencies, "
            "e.g. --symbol GOOG --ccxt-symbol GOOG/USD (BTCUSDT splits by itself)",
        )

    def handle(
        self,
        *args: Any,
        path: Path,
        symbol: str,
        timeframe: str,
        exchange: str,
        ccxt_symbol: str | None,
        **options: Any,
    ) -> None:
        try:
            report = candles_import_file(
                path=path, symbol=symbol, timeframe=timeframe, exchange=exchange, ccxt_symbol=ccxt_symbol
            )
        except MarketInputError as error:
            raise CommandError(f"{error} (nothing was imported)") from None
        self.stdout.write(report.describe())
