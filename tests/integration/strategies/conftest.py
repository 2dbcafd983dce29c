"""Fixtures for strategy tests: the real BTCUSD candles, the brief's strategy document and strategies."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django.contrib.auth.base_user import AbstractBaseUser

from apps.market.models import Instrument
from apps.strategies.models import Strategy, StrategyStatus
from tests.integration.active_strategies import strategy_create_as
from tests.integration.llm.conftest import fake_llm
from tests.integration.market.conftest import BTC_HOURLY, btc_hourly

# The brief's RSI mean reversion, on the shipped BTC/USD data (the brief says BTCUSDT on Binance).
RSI_DOCUMENT: dict[str, Any] = {
    "name": "RSI Mean Reversion",
    "type": "mean_reversion",
    "symbol": "BTCUSD",
    "timeframe": "1h",
    "parameters": {
        "rsi_period": 14,
        "rsi_overbought": 70,
        "rsi_oversold": 30,
        "stop_loss_pct": 0.02,
        "take_profit_pct": 0.05,
    },
    "indicators": ["RSI", "SMA"],
    "rules": [
        {"condition": "RSI < 30", "action": "buy", "priority": 1},
        {"condition": "RSI > 70", "action": "sell", "priority": 1},
    ],
}
SMA_RULES = [
    {"condition": "SMA(fast_period) crosses_above SMA(slow_period)", "action": "buy", "priority": 1},
    {"condition": "SMA(fast_period) crosses_below SMA(slow_period)", "action": "sell", "priority": 1},
]

__all__ = ["BTC_HOURLY", "RSI_DOCUMENT", "SMA_RULES", "btc_hourly", "fake_llm", "make_strategy"]


@pytest.fixture
def rsi_document() -> dict[str, Any]:
    return copy.deepcopy(RSI_DOCUMENT)


def make_strategy(
    instrument: Instrument,
    *,
    name: str = "RSI Mean Reversion",
    type: str = "mean_reversion",
    parameters: dict[str, Any] | None = None,
    rules: list[dict[str, Any]] | None = None,
    status: str = StrategyStatus.ACTIVE,
    owner: AbstractBaseUser | None = None,
) -> Strategy:
    """A strategy on BTCUSD 1h created through the service, as the API creates it (for ``owner``; by
    default the system's, as the demo strategies are)."""
    return strategy_create_as(
        name=name,
        type=type,
        instrument=instrument,
        timeframe="1h",
        parameters=copy.deepcopy(RSI_DOCUMENT["parameters"] if parameters is None else parameters),
        indicators=["RSI"],
        rules=copy.deepcopy(RSI_DOCUMENT["rules"] if rules is None else rules),
        status=status,
        owner=owner,
    )


@pytest.fixture
def rsi_strategy(btc_hourly) -> Strategy:
    return make_strategy(btc_hourly)
