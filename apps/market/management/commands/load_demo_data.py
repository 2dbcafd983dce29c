"""Load the real market data shipped in fixtures/ (and the apps' demo objects); safe to run twice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.market.services.candles import candles_import_file

MANIFEST = Path(settings.BASE_DIR) / "fixtures" / "market" / "manifest.json"


class Command(BaseCommand):
    help = "Import the bundled BTC/ETH/LTC candles; a second run changes nothing."

    def handle(self, *args: Any, **options: Any) -> None:
        for entry in json.loads(MANIFEST.read_text()):
            report = candles_import_file(
                path=MANIFEST.parent / entry["file"],
                symbol=entry["symbol"],
                timeframe=entry["timeframe"],
                exchange=entry["exchange"],
            )
            self.stdout.write(report.describe())
