"""Luck against an edge through the app: a 500-combination optimisation, its trials in the ledger,
the best parameters backtested and put up for activation.

The series are the engine scenario tests' (``tests/unit/strategies/test_robustness_scenarios.py``):
a seeded random walk whose best of 500 SMA crossovers looks good in-sample, and a seeded series with
a planted trend edge. Here they are candles in the database and every step is the app's service.
"""

from __future__ import annotations

import pytest

from apps.market.services.candles import candles_store
from apps.market.services.instruments import instrument_get_or_create
from apps.strategies.errors import StrategyInputError
from apps.strategies.models import DecisionKind, StrategyStatus
from apps.strategies.services.backtests import backtest_create, backtest_run
from apps.strategies.services.optimizations import (
    optimization_chunk_run,
    optimization_create,
    optimization_finish,
)
from apps.strategies.services.strategies import strategy_create, strategy_update
from apps.strategies.services.trials import deflation_verdict
from tests.unit.strategies.candles import random_walk
from tests.unit.strategies.test_robustness_scenarios import RULES, SPACE, trend_planted


def _search(settings, frame, symbol):
    """Store ``frame`` as a market, optimise SMA crossovers over the 500-combination grid (in-sample,
    no costs, as the engine scenario does), then adopt the best parameters as a new version and
    backtest them."""
    settings.STRATEGY_OPTIMIZE_CHUNK_TRIALS = 500
    settings.STRATEGY_MONTE_CARLO_PATHS = 50
    instrument = instrument_get_or_create(symbol=symbol, exchange="test", ccxt_symbol=f"{symbol[:3]}/USD")
    candles_store(instrument=instrument, timeframe="1h", frame=frame)
    strategy = strategy_create(
        name="SMA",
        type="trend_following",
        instrument=instrument,
        timeframe="1h",
        parameters={"fast": 10, "slow": 50},
        indicators=["SMA"],
        rules=RULES,
    )
    run = optimization_create(strategy=strategy, space=SPACE, folds=0, commission=0.0)
    assert run.n_trials == 500
    optimization_chunk_run(run_id=run.pk, chunk_index=0)
    run = optimization_finish(run_id=run.pk)
    strategy = strategy_update(
        strategy=strategy, by=None, parameters={**run.best_params}, reason="the search's best"
    )
    backtest = backtest_create(strategy=strategy, start=frame.index[0], end=frame.index[-1], commission=0.0)
    backtest = backtest_run(backtest_id=backtest.pk)
    assert backtest.version == strategy.current_version
    return strategy, run, backtest


def test_the_best_of_500_on_a_random_walk_looks_good_and_every_gate_refuses_it(settings, db):
    strategy, run, backtest = _search(settings, random_walk(3000, seed=13), "RWKUSD")
    robustness = run.robustness
    assert run.summary["in_sample_objective"] > 2.0  # an annual Sharpe ratio that looks good
    assert robustness["best"]["trials"] == 500
    assert robustness["best"]["psr"] > 0.95  # it passes the test that ignores the search
    assert robustness["deflated_sharpe"] < 0.95  # but not the one that counts the 500 tries
    assert robustness["pbo"]["pbo"] > 0.5
    assert deflation_verdict(deflated_sharpe=robustness["deflated_sharpe"], pbo=robustness["pbo"]["pbo"])
    assert backtest.robustness["trials"] == 501
    assert backtest.robustness["deflated_sharpe"] < 0.95
    with pytest.raises(
        StrategyInputError, match=r"deflated Sharpe ratio 0\.\d+ is below the minimum of 0\.95"
    ):
        strategy_update(strategy=strategy, by=None, status=StrategyStatus.ACTIVE)
    strategy.refresh_from_db()
    assert strategy.status == StrategyStatus.DRAFT
    refusal = strategy.decisions.get(kind=DecisionKind.REFUSED)
    assert refusal.numbers["trials"] == 501
    assert refusal.numbers["deflated_sharpe"] < 0.95 <= refusal.numbers["min_deflated_sharpe"]


def test_a_planted_edge_passes_every_gate(settings, db):
    strategy, run, backtest = _search(settings, trend_planted(4000, seed=0, edge=0.15), "EDGUSD")
    robustness = run.robustness
    assert run.summary["in_sample_objective"] > 5.0
    assert robustness["deflated_sharpe"] >= 0.95
    assert robustness["pbo"]["pbo"] < 0.1
    assert (
        deflation_verdict(deflated_sharpe=robustness["deflated_sharpe"], pbo=robustness["pbo"]["pbo"]) is None
    )
    assert backtest.robustness["deflated_sharpe"] >= 0.95
    strategy = strategy_update(strategy=strategy, by=None, status=StrategyStatus.ACTIVE)
    assert strategy.status == StrategyStatus.ACTIVE
    activated = strategy.decisions.get(kind=DecisionKind.ACTIVATED)
    assert activated.numbers["backtest"] == backtest.pk
    assert activated.numbers["deflated_sharpe"] >= 0.95
