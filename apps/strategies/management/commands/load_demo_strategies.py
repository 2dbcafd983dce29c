"""Create the demo strategies of fixtures/strategies/ (after load_demo_data); safe to run twice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.market import selectors as market
from apps.strategies import selectors
from apps.strategies.errors import StrategyInputError
from apps.strategies.services.strategies import strategy_create

FIXTURE = Path(settings.BASE_DIR) / "fixtures" / "strategies" / "demo_strategies.json"


class Command(BaseCommand):
    help = "Create the demo strategies; one that exists (same name, market and timeframe) is kept as it is."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            for entry in json.loads(FIXTURE.read_text()):
                self.stdout.write(_load(entry))


def _load(entry: dict[str, Any]) -> str:
    try:
        instrument = market.instrument_resolve(symbol=entry["symbol"], exchange=entry["exchange"])
    except market.InstrumentNotFound as error:
        raise CommandError(f"{error}; load the market data first: python manage.py load_demo_data") from None
    existing = selectors.strategy_list().filter(
        name=entry["name"], instrument=instrument, timeframe=entry["timeframe"]
    )
    if existing.exists():
        return f"kept    {existing.first().strategy_id}"
    try:
        strategy = strategy_create(
            name=entry["name"],
            type=entry["type"],
            instrument=instrument,
            timeframe=entry["timeframe"],
            parameters=entry["parameters"],
            indicators=entry["indicators"],
            rules=entry["rules"],
            status=entry["status"],
        )
    except StrategyInputError as error:
        raise CommandError(f"demo strategy {entry['name']!r}: {error} (nothing was written)") from None
    return f"created {strategy.strategy_id}"
