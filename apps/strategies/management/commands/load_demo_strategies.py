"""Create the demo strategies of fixtures/strategies/ (after load_demo_data); safe to run twice.

They are created paused, with a decision saying why: nothing is active without evidence. Each is then
backtested over every candle stored for it and put up for activation through the same gate as any
strategy (``strategy_update``: the backtest's deflated Sharpe ratio against
``STRATEGY_MIN_DEFLATED_SHARPE``); the ones that pass are active, so a fresh install's autonomous loop
has something to trade on paper, and the others stay paused with the gate's refusal and its numbers.
``--paused`` skips the backtests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.core.models import JobStatus
from apps.market import selectors as market
from apps.strategies import selectors
from apps.strategies.errors import StrategyInputError
from apps.strategies.models import DecisionKind, Strategy, StrategyStatus
from apps.strategies.services.backtests import backtest_create, backtest_run
from apps.strategies.services.strategies import decision_record, strategy_create, strategy_update

FIXTURE = Path(settings.BASE_DIR) / "fixtures" / "strategies" / "demo_strategies.json"


DEMO_DATA = "demo data"


class Command(BaseCommand):
    help = (
        "Create the demo strategies paused, backtest each over its stored candles and activate the ones "
        "whose backtest passes the deflated Sharpe gate; one that exists (same name, market and "
        "timeframe) is kept as it is."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--paused", action="store_true", help="only create them, paused: no backtest, no activation"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            created = []
            for entry in json.loads(FIXTURE.read_text()):
                line, strategy = _load(entry)
                self.stdout.write(line)
                if strategy is not None:
                    created.append(strategy)
        if not options["paused"]:
            for strategy in created:
                self.stdout.write(_activate(strategy))


def _activate(strategy: Strategy) -> str:
    """Backtest ``strategy`` over every candle stored for it and ask the gate to activate it."""
    span = market.candle_span(instrument=strategy.instrument, timeframe=strategy.timeframe)
    name = f"{strategy.name} ({strategy.strategy_id})"
    if span is None:
        return f"paused  {name}: no {strategy.timeframe} candles to backtest it on"
    backtest = backtest_run(backtest_id=backtest_create(strategy=strategy, start=span[0], end=span[1]).pk)
    if backtest is None or backtest.status != JobStatus.COMPLETED:
        return f"paused  {name}: its backtest failed: {backtest.error if backtest else 'not run'}"
    figures = f"return {backtest.metrics['total_return_pct']:+.1f}% over {backtest.metrics['bars']} bars"
    try:
        strategy_update(
            strategy=strategy,
            by=None,
            status=StrategyStatus.ACTIVE,
            reason=f"{DEMO_DATA}: its backtest over the stored history passed the gate",
        )
    except StrategyInputError as refusal:
        return f"paused  {name}: {figures}; {refusal}"
    deflated = backtest.robustness.get("deflated_sharpe")
    return f"active  {name}: {figures}, deflated Sharpe ratio {deflated:.3f}"


def _load(entry: dict[str, Any]) -> tuple[str, Strategy | None]:
    try:
        instrument = market.instrument_resolve(symbol=entry["symbol"], exchange=entry["exchange"])
    except market.InstrumentNotFound as error:
        raise CommandError(f"{error}; load the market data first: python manage.py load_demo_data") from None
    existing = selectors.strategy_list().filter(
        name=entry["name"], instrument=instrument, timeframe=entry["timeframe"]
    )
    if existing.exists():
        return f"kept    {existing.first().strategy_id}", None
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
    return f"created {strategy.strategy_id} ({strategy.status})", strategy
