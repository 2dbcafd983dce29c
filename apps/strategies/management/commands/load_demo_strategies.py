"""Create the demo strategies of fixtures/strategies/ (after load_demo_data); safe to run twice.

They start paused, with a decision saying why: nothing is active without evidence, and activation is
judged on a backtest of the strategy (see ``strategy_update``), which a new strategy does not have.
"""

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
from apps.strategies.models import DecisionKind
from apps.strategies.services.strategies import decision_record, strategy_create

FIXTURE = Path(settings.BASE_DIR) / "fixtures" / "strategies" / "demo_strategies.json"


DEMO_DATA = "demo data"


class Command(BaseCommand):
    help = (
        "Create the demo strategies, paused (activation needs a backtest that passes the deflated Sharpe "
        "gate); one that exists (same name, market and timeframe) is kept as it is."
    )

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
    floor = settings.STRATEGY_MIN_DEFLATED_SHARPE
    decision_record(
        strategy,
        DecisionKind.PAUSED,
        f"a demo strategy starts {strategy.status}: activation needs a backtest of it whose deflated "
        f"Sharpe ratio reaches {floor:g}; backtest it, then set it active (refused with the numbers if not)",
        {"to": strategy.status, "min_deflated_sharpe": floor},
        actor=DEMO_DATA,
    )
    return f"created {strategy.strategy_id} ({strategy.status})"
