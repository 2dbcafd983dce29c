"""Strategies a test's setup needs in a given status, active included: a new strategy cannot be created
active (activation is judged on a backtest it does not have yet), so an active one is created as a draft
through the service and then set active, standing for a strategy that passed the activation gate
earlier. The gate itself is tested in strategies/test_activation_paths.py and test_research_honesty.py."""

from __future__ import annotations

from typing import Any

from apps.strategies.models import Strategy, StrategyStatus
from apps.strategies.services.strategies import strategy_create


def strategy_create_as(*, status: str = StrategyStatus.ACTIVE, **fields: Any) -> Strategy:
    """``strategy_create(**fields)`` in ``status``; active without a gate or a decision (setup only)."""
    if status != StrategyStatus.ACTIVE:
        return strategy_create(status=status, **fields)
    strategy = strategy_create(**fields)
    Strategy.objects.filter(pk=strategy.pk).update(status=StrategyStatus.ACTIVE)
    strategy.status = StrategyStatus.ACTIVE
    return strategy
