"""The robustness block of a backtest and of an optimisation: contents, undefined figures, JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from apps.strategies.engine.backtest import RiskSettings, backtest_signals
from apps.strategies.engine.metrics import bar_returns, bars_per_year
from apps.strategies.engine.optimize import Costs, chunk, evaluate_chunk, grid, summarise, walk_forward_folds
from apps.strategies.engine.robustness import (
    deflated_sharpe,
    optimisation_block,
    probabilistic_sharpe,
    return_moments,
    robustness_block,
    trial_returns,
)

from .candles import random_codes, random_walk

RULES = [
    {"condition": "SMA(fast) crosses_above SMA(slow)", "action": "buy"},
    {"condition": "SMA(fast) crosses_below SMA(slow)", "action": "sell"},
]


def backtest(bars=1500, seed=41, codes=None):
    frame, risk = random_walk(bars, seed=seed), RiskSettings()
    codes = random_codes(bars, seed=seed + 1, density=0.05) if codes is None else codes
    return frame, codes, risk, backtest_signals(frame, codes, risk, commission=0.0005, timeframe="1h")


def strict_json(data):
    return json.loads(json.dumps(data, allow_nan=False))


def test_the_block_holds_every_figure_of_the_issue():
    frame, codes, risk, report = backtest()
    block = robustness_block(frame, codes, risk, report, trials=50, sharpe_variance=4e-5, paths=200, seed=1)
    data = strict_json(block.to_dict())
    returns = bar_returns(report.equity_curve.equity)
    moments = return_moments(returns)
    assert data["observations"] == len(returns) == report.bars - 1
    assert data["sharpe_per_bar"] * math.sqrt(bars_per_year("1h")) == pytest.approx(report.sharpe_ratio)
    assert data["psr"] == probabilistic_sharpe(
        moments.sharpe, len(returns), skewness=moments.skewness, kurtosis=moments.kurtosis
    )
    assert data["deflated_sharpe"] == deflated_sharpe(
        moments.sharpe,
        len(returns),
        trials=50,
        sharpe_variance=4e-5,
        skewness=moments.skewness,
        kurtosis=moments.kurtosis,
    )
    assert data["trials"] == 50 and data["sharpe_variance"] == 4e-5
    assert set(data["monte_carlo"]) == {"trade_reshuffle", "block_bootstrap"}
    assert data["monte_carlo"]["block_bootstrap"]["paths"] == 200
    for method, unit in (("trade_reshuffle", len(report.trades)), ("block_bootstrap", len(returns))):
        carlo = data["monte_carlo"][method]
        assert carlo["fan"]["steps"][-1] == unit  # what a chart of the paths draws
        assert carlo["fan"]["p50"][-1] == pytest.approx(carlo["final_return_pct"]["p50"])
        assert sum(carlo["max_drawdown_histogram"]["counts"]) == 200
    assert set(data["break_even"]) == {
        "commission_for_zero_return",
        "commission_for_buy_and_hold",
        "slippage_for_zero_return",
        "slippage_for_buy_and_hold",
    }
    assert set(data["delay"]) == {"sharpe", "delayed_sharpe", "fragile", "rule", "method"}


def test_one_trial_is_not_deflated_and_many_without_a_variance_cannot_be():
    frame, codes, risk, report = backtest()
    single = robustness_block(frame, codes, risk, report, paths=0)
    assert single.sharpe.deflated_sharpe == single.sharpe.psr
    assert single.sharpe.expected_max_sharpe == 0.0
    unknown = robustness_block(frame, codes, risk, report, trials=20, paths=0)
    assert unknown.sharpe.deflated_sharpe is None and unknown.sharpe.expected_max_sharpe is None


def test_monte_carlo_can_be_skipped():
    frame, codes, risk, report = backtest()
    data = strict_json(robustness_block(frame, codes, risk, report, paths=0).to_dict())
    assert data["monte_carlo"] == {"trade_reshuffle": None, "block_bootstrap": None}


def test_a_strategy_that_never_trades_has_undefined_figures_not_nans():
    frame, codes, risk, report = backtest(codes=np.zeros(1500, dtype=np.int8))
    data = strict_json(robustness_block(frame, codes, risk, report, paths=20).to_dict())
    for key in ("sharpe_per_bar", "skewness", "kurtosis", "psr", "deflated_sharpe", "min_track_record_bars"):
        assert data[key] is None
    assert data["monte_carlo"]["trade_reshuffle"] is None
    assert data["monte_carlo"]["block_bootstrap"]["max_drawdown_pct"]["p95"] == 0.0
    assert data["delay"]["fragile"] is None


def test_the_optimisation_block_deflates_the_adopted_trial_by_the_whole_search():
    frame = random_walk(1600, seed=43)
    costs = Costs(commission=0.0005)
    trials = chunk(grid({"fast": [3, 5, 8, 12], "slow": [20, 30, 50]}), 100)[0]
    folds = walk_forward_folds(len(frame), 2)
    summary = summarise(evaluate_chunk(frame, RULES, {}, trials, folds, costs=costs), "sharpe_ratio")
    returns = trial_returns(frame, RULES, {}, trials, costs=costs)
    block = optimisation_block(
        frame, RULES, {}, folds, summary, returns.statistics(8), costs=costs, partitions=8
    )
    sharpes = [return_moments(column).sharpe or 0.0 for column in returns.returns.T]
    best = return_moments(returns.column(summary.best_index))
    assert block.best_index == summary.best_index
    assert block.best.trials == 12
    assert block.best.sharpe_variance == pytest.approx(np.var(sharpes, ddof=1))
    assert block.best.deflated_sharpe == pytest.approx(
        deflated_sharpe(
            best.sharpe,
            best.observations,
            trials=12,
            sharpe_variance=np.var(sharpes, ddof=1),
            skewness=best.skewness,
            kurtosis=best.kurtosis,
        )
    )
    assert block.overfitting.partitions == 8 and block.overfitting.trials == 12
    assert block.walk_forward.efficiency == summary.walk_forward_efficiency
    # The ledger's totals override the search's own.
    ledger = optimisation_block(
        frame,
        RULES,
        {},
        folds,
        summary,
        returns.statistics(8),
        costs=costs,
        partitions=8,
        trials=400,
        sharpe_variance=1e-4,
    )
    assert ledger.best.trials == 400 and ledger.best.deflated_sharpe < block.best.deflated_sharpe
    data = strict_json(block.to_dict(equity_points=40))
    assert len(data["pbo"]["logits"]) == 70 and data["pbo_error"] is None
    assert sum(data["pbo"]["logit_histogram"]["counts"]) == 70


def test_a_search_cscv_cannot_judge_says_why():
    frame = random_walk(200, seed=44)
    trials = chunk(grid({"fast": [3], "slow": [20]}), 100)[0]  # one trial: nothing to compare
    folds = walk_forward_folds(len(frame), 2)
    summary = summarise(evaluate_chunk(frame, RULES, {}, trials, folds), "sharpe_ratio")
    statistics = trial_returns(frame, RULES, {}, trials).statistics()
    block = optimisation_block(frame, RULES, {}, folds, summary, statistics)
    assert block.overfitting is None and "needs at least 2, got 1" in block.overfitting_error
    assert block.best.trials == 1 and block.best.deflated_sharpe == block.best.psr
    assert strict_json(block.to_dict())["pbo"] is None
