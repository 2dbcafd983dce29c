"""Import candles from a CSV or ccxt-JSON file: `import_candles PATH --symbol S --timeframe TF`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.market.errors import MarketInputError
from apps.market.services.candles import candles_import_file


class Command(BaseCommand):
    help = "Import candles from a file (CSV timestamp,open,high,low,close,volume or ccxt JSON rows)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--symbol", required=True, help="e.g. BTCUSDT")
        parser.add_argument("--timeframe", required=True, help="1m 5m 15m 30m 1h 4h 1d 1w")
        parser.add_argument("--exchange", default="binance", help="ccxt exchange id (default binance)")

    def handle(
        self, *args: Any, path: Path, symbol: str, timeframe: str, exchange: str, **options: Any
    ) -> None:
        try:
            report = candles_import_file(path=path, symbol=symbol, timeframe=timeframe, exchange=exchange)
        except MarketInputError as error:
            raise CommandError(f"{error} (nothing was imported)") from None
        self.stdout.write(report.describe())
