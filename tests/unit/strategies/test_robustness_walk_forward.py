"""Every trial's returns and the stitched walk-forward curve, against backtests run by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from apps.strategies.engine.backtest import RiskSettings, backtest_signals
from apps.strategies.engine.metrics import bar_returns
from apps.strategies.engine.optimize import (
    Costs,
    Window,
    chunk,
    evaluate_chunk,
    grid,
    in_sample_only,
    summarise,
    walk_forward_folds,
)
from apps.strategies.engine.robustness import (
    TrialStatistics,
    stitched_out_of_sample,
    trial_returns,
    trial_statistics,
    window_statistics,
)
from apps.strategies.engine.rules import signals

from .candles import random_walk

RULES = [
    {"condition": "SMA(fast) crosses_above SMA(slow)", "action": "buy"},
    {"condition": "SMA(fast) crosses_below SMA(slow)", "action": "sell"},
]
COSTS = Costs(commission=0.0005, timeframe="1h")


@pytest.fixture(scope="module")
def frame():
    return random_walk(1200, seed=31)


def by_hand(frame, params, window):
    codes = signals(RULES, frame, params)
    return backtest_signals(
        frame.iloc[window.slice],
        codes[window.slice],
        RiskSettings(),
        commission=COSTS.commission,
        timeframe=COSTS.timeframe,
    )


def test_each_column_holds_one_trials_bar_returns(frame):
    trials = chunk(grid({"fast": [3, 5], "slow": [20, 40]}), 10)[0]
    window = Window(200, 1000)
    result = trial_returns(frame, RULES, {}, trials, window=window, costs=COSTS)
    assert result.returns.shape == (799, 4)
    np.testing.assert_array_equal(result.indices, [0, 1, 2, 3])
    for trial in trials:
        expected = bar_returns(by_hand(frame, trial["params"], window).equity_curve.equity)
        np.testing.assert_array_equal(result.column(trial["index"]), expected)
    assert result.column(99) is None


def test_a_chunk_keeps_each_trials_whole_window_statistics_beside_its_folds(frame):
    # What a worker stores with each trial equals the statistics of that trial's returns computed
    # again from scratch, so concluding the search needs no second backtest of every trial.
    trials = chunk(grid({"fast": [3, 5], "slow": [20, 40], "stop_loss_pct": [0.02, 1.5]}), 10)[0]
    window = Window(200, 1000)
    hook = window_statistics(frame, window=window, costs=COSTS, partitions=8)
    results = evaluate_chunk(
        frame, RULES, {}, trials, walk_forward_folds(len(frame), 2), costs=COSTS, whole_window=hook
    )
    returns = trial_returns(frame, RULES, {}, trials, window=window, costs=COSTS)
    stored = {
        r["index"]: TrialStatistics.from_dict(json.loads(json.dumps(r["window"])))
        for r in results
        if "window" in r
    }
    assert sorted(stored) == returns.indices.tolist() == [0, 2, 4, 6]  # the 1.5 stops are rejected
    assert all("window" not in r for r in results if "error" in r)
    for index, item in stored.items():
        expected = trial_statistics(returns.column(index), 8)
        assert item.moments == expected.moments and item.moments.observations == 799
        np.testing.assert_allclose(item.blocks.sums, expected.blocks.sums, rtol=0, atol=1e-15)
        np.testing.assert_allclose(item.blocks.squares, expected.blocks.squares, rtol=1e-14)
        assert item.blocks.block == 99 and item.blocks_error is None


def test_a_window_too_short_to_cut_keeps_its_moments_and_says_why(frame):
    item = trial_statistics(np.random.default_rng(3).normal(0, 0.01, 20), 16)
    assert item.moments.observations == 20 and item.moments.sharpe is not None
    assert item.blocks is None and "too few for 16 partitions" in item.blocks_error
    assert TrialStatistics.from_dict(json.loads(json.dumps(item.to_dict()))) == item


def test_rejected_combinations_are_skipped_with_their_reason(frame):
    trials = chunk(grid({"fast": [5], "slow": [20], "stop_loss_pct": [0.02, 1.5]}), 10)[0]
    result = trial_returns(frame, RULES, {}, trials, costs=COSTS)
    np.testing.assert_array_equal(result.indices, [0])
    assert "stop_loss_pct" in result.rejected[1]


def test_the_stitched_curve_chains_each_folds_pick_on_its_test_window(frame):
    folds = walk_forward_folds(len(frame), 3)
    trials = chunk(grid({"fast": [3, 5, 8], "slow": [20, 40]}), 100)[0]
    summary = summarise(evaluate_chunk(frame, RULES, {}, trials, folds, costs=COSTS), "sharpe_ratio")
    result = stitched_out_of_sample(frame, RULES, {}, folds, summary, costs=COSTS)
    growth, pieces = 1.0, []
    for fold, pick in zip(folds, summary.folds, strict=True):
        report = by_hand(frame, pick["best_params"], fold.test)
        pieces.append(report.equity_curve.equity * growth)
        growth *= report.final_equity / COSTS.initial_capital
    np.testing.assert_allclose(result.curve.equity, np.concatenate(pieces), rtol=1e-12)
    test_bars = np.concatenate([np.arange(f.test.start, f.test.stop) for f in folds])
    np.testing.assert_array_equal(result.curve.times, frame.index[test_bars].tz_localize(None).to_numpy())
    np.testing.assert_array_equal(result.fold_starts, np.cumsum([0] + [len(f.test) for f in folds[:-1]]))
    assert result.curve.equity[0] == COSTS.initial_capital
    assert result.total_return_pct == pytest.approx(100 * (growth - 1))
    assert result.efficiency == summary.walk_forward_efficiency
    # The identity of the backtester's curve survives the scaling.
    close = frame["close"].to_numpy()[test_bars]
    np.testing.assert_allclose(
        result.curve.cash + result.curve.position * close, result.curve.equity, rtol=1e-9
    )
    data = json.loads(json.dumps(result.to_dict(equity_points=50), allow_nan=False))
    assert [f["fold"] for f in data["folds"]] == [0, 1, 2]
    assert len(data["equity_curve"]["equity"]) == 50


def test_there_is_no_out_of_sample_curve_without_test_windows(frame):
    folds = in_sample_only(len(frame))
    trials = chunk(grid({"fast": [3, 5], "slow": [20]}), 10)[0]
    summary = summarise(evaluate_chunk(frame, RULES, {}, trials, folds, costs=COSTS), "sharpe_ratio")
    assert stitched_out_of_sample(frame, RULES, {}, folds, summary, costs=COSTS) is None
