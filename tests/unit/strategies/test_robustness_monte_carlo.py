"""Monte Carlo: the block-level bootstrap against bar-by-bar paths, its draws, and the trade reshuffle."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from apps.strategies.engine.backtest import RiskSettings, backtest_signals
from apps.strategies.engine.robustness.block_bootstrap import (
    BootstrapError,
    bootstrap_statistics,
    default_mean_block_length,
    stationary_bootstrap_indices,
)
from apps.strategies.engine.robustness.monte_carlo import (
    bootstrap_returns,
    reshuffle_trades,
    trade_returns,
)

from .candles import random_codes, random_walk


def walk_path(returns: np.ndarray) -> tuple[float, float, int]:
    """Final return, maximum drawdown (fractions) and longest drawdown in bars of one path, bar by bar,
    with the report's definitions: the duration runs from the last bar at a high to the first bar back
    at or above it (or to the last bar)."""
    equity, peak, peak_at, worst, longest, under = 1.0, 1.0, 0, 0.0, 0, False
    for bar, r in enumerate(returns, start=1):
        equity *= max(1.0 + r, 1e-12)
        if equity >= peak:
            if under:
                longest = max(longest, bar - peak_at)
            peak, peak_at, under = equity, bar, False
        else:
            under = True
            worst = max(worst, 1.0 - equity / peak)
    if under:
        longest = max(longest, len(returns) - peak_at)
    return equity - 1.0, worst, longest


def series(kind: str, bars: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0005, 0.01, bars)
    if kind == "idle":  # a strategy out of the market most of the time: flat runs tie with their high
        returns[rng.random(bars) < 0.6] = 0.0
    elif kind == "rising":  # mostly at new highs: the duration search does most of the work
        returns = np.abs(returns)
        returns[rng.random(bars) < 0.2] *= -0.5
    elif kind == "ruinous":
        returns[bars // 2] = -1.0
    return returns


@pytest.mark.parametrize(
    ("kind", "bars", "mean_block_length", "paths"),
    [
        ("noise", 1, 1.0, 5),
        ("noise", 7, 1.0, 30),
        ("noise", 300, 3.0, 40),
        ("idle", 500, 12.0, 40),
        ("idle", 3000, 64.0, 30),
        ("rising", 2000, 20.0, 30),
        ("rising", 5000, 300.0, 20),
        ("noise", 4000, 5000.0, 20),  # blocks longer than the series: wrapped rotations
        ("ruinous", 800, 40.0, 20),
    ],
)
def test_block_level_statistics_equal_building_each_path_bar_by_bar(kind, bars, mean_block_length, paths):
    returns = series(kind, bars, seed=bars)
    final, drawdown, duration = bootstrap_statistics(
        returns, paths=paths, mean_block_length=mean_block_length, seed=3
    )
    indices = stationary_bootstrap_indices(bars, paths=paths, mean_block_length=mean_block_length, seed=3)
    expected = np.array([walk_path(returns[row]) for row in indices])
    np.testing.assert_allclose(np.expm1(final), expected[:, 0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(-np.expm1(-drawdown), expected[:, 1], rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(duration, expected[:, 2])


def test_each_path_is_a_chain_of_circular_blocks():
    indices = stationary_bootstrap_indices(50, paths=20, mean_block_length=8.0, seed=1)
    assert indices.shape == (20, 50)
    assert ((indices >= 0) & (indices < 50)).all()
    # Every bar continues the previous one (wrapping round) or starts a new block anywhere.
    continues = indices[:, 1:] == (indices[:, :-1] + 1) % 50
    assert 0.75 < continues.mean() < 0.95  # about 1 - 1/8


def test_the_bootstrap_preserves_the_mean():
    returns = np.random.default_rng(4).normal(0.001, 0.01, 2000)
    indices = stationary_bootstrap_indices(2000, paths=400, mean_block_length=25.0, seed=9)
    path_means = returns[indices].mean(axis=1)
    error = 4.0 * path_means.std() / math.sqrt(len(path_means))
    assert path_means.mean() == pytest.approx(returns.mean(), abs=error)


@pytest.mark.parametrize("mean_block_length", [1.0, 5.0, 20.0])
def test_blocks_have_the_requested_mean_length(mean_block_length):
    bars, paths = 20_000, 30
    indices = stationary_bootstrap_indices(bars, paths=paths, mean_block_length=mean_block_length, seed=2)
    starts = (indices[:, 1:] != (indices[:, :-1] + 1) % bars).sum() + paths
    # The last block of each path is cut short; with about 1,000 blocks a path that bias is small.
    assert bars * paths / starts == pytest.approx(mean_block_length, rel=0.03)


def test_the_same_seed_gives_the_same_paths_and_another_seed_others():
    returns = series("noise", 1000, seed=5)
    first = bootstrap_returns(returns, paths=50, mean_block_length=10.0, seed=7)
    assert bootstrap_returns(returns, paths=50, mean_block_length=10.0, seed=7) == first
    assert bootstrap_returns(returns, paths=50, mean_block_length=10.0, seed=8) != first


def test_a_path_does_not_depend_on_how_many_paths_are_drawn():
    few = stationary_bootstrap_indices(5000, paths=3, mean_block_length=50.0, seed=4)
    many = stationary_bootstrap_indices(5000, paths=300, mean_block_length=50.0, seed=4)
    np.testing.assert_array_equal(few, many[:3])


def test_the_default_block_length_is_the_square_root_of_the_bars():
    assert default_mean_block_length(1_000_000) == 1000.0
    assert default_mean_block_length(1) == 1.0
    result = bootstrap_returns(series("noise", 400, seed=1), paths=10)
    assert result.mean_block_length == 20.0 and result.duration_unit == "bars"


def test_a_ruinous_series_is_ruined_on_every_path_that_samples_its_crash():
    returns = series("noise", 400, seed=3) * 0.1
    returns[200] = -0.9
    result = bootstrap_returns(returns, paths=300, mean_block_length=20.0, seed=1, ruin_drawdown=0.8)
    indices = stationary_bootstrap_indices(400, paths=300, mean_block_length=20.0, seed=1)
    assert result.probability_of_ruin == pytest.approx(np.mean((indices == 200).any(axis=1)))


def test_reshuffled_trades_end_where_the_backtest_ended_in_every_order():
    frame = random_walk(3000, seed=21)
    report = backtest_signals(frame, random_codes(3000, seed=22), RiskSettings(), commission=0.001)
    returns = trade_returns(report)
    assert np.prod(1.0 + returns) == pytest.approx(report.final_equity / report.initial_capital, rel=1e-12)
    result = reshuffle_trades(returns, paths=200, seed=1)
    final = result.final_return_pct
    assert final.p5 == pytest.approx(report.total_return_pct, rel=1e-9)
    assert final.p95 == pytest.approx(report.total_return_pct, rel=1e-9)
    assert result.max_drawdown_pct.p5 <= result.max_drawdown_pct.p95
    assert result.duration_unit == "trades"


def test_trade_returns_stay_exact_when_the_equity_shrinks_by_orders_of_magnitude():
    # 1% commission on thousands of random trades leaves about 4e-12 of the capital: a running sum of
    # pnl would have cancelled down to noise long before.
    frame = random_walk(20_000, seed=23)
    codes = random_codes(20_000, seed=24, density=0.5)
    report = backtest_signals(frame, codes, RiskSettings(), commission=0.01)
    returns = trade_returns(report)
    assert report.final_equity < 1e-10 * report.initial_capital
    assert np.isfinite(returns).all() and (returns > -1).all()
    assert np.prod(1.0 + returns) == pytest.approx(report.final_equity / report.initial_capital, rel=1e-9)


def test_two_trades_in_either_order():
    # Up 10% then down 50%: a 50% drawdown, under water for the last trade. Down then up: 50%, and the
    # path never recovers, under water for both trades. Either way it ends at 1.1 * 0.5 - 1 = -45%.
    result = reshuffle_trades(np.array([0.1, -0.5]), paths=400, seed=3, ruin_drawdown=0.4)
    assert result.final_return_pct.p5 == pytest.approx(-45.0)
    assert result.final_return_pct.p95 == pytest.approx(-45.0)
    assert result.max_drawdown_pct.p5 == pytest.approx(50.0)
    assert result.max_drawdown_pct.p95 == pytest.approx(50.0)
    assert (result.max_drawdown_duration.p5, result.max_drawdown_duration.p95) == (1.0, 2.0)
    assert result.probability_of_ruin == 1.0
    assert reshuffle_trades(np.array([0.1, -0.5]), paths=10, ruin_drawdown=0.6).probability_of_ruin == 0.0


def test_winning_trades_never_draw_down():
    result = reshuffle_trades(np.array([0.01, 0.02, 0.03]), paths=50)
    assert result.max_drawdown_pct.p95 == 0.0 and result.max_drawdown_duration.p95 == 0.0


def test_the_results_are_json_ready():
    returns = series("noise", 300, seed=2)
    for result in (bootstrap_returns(returns, paths=20), reshuffle_trades(returns[:40], paths=20)):
        data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
        assert set(data["max_drawdown_pct"]) == {"p5", "p25", "p50", "p75", "p95"}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bootstrap_returns(np.array([]), paths=10), "non-empty"),
        (lambda: bootstrap_returns(np.array([0.1, np.nan]), paths=10), "finite"),
        (lambda: bootstrap_returns(np.zeros(10), paths=0), "paths"),
        (lambda: bootstrap_returns(np.zeros(10), paths=5, mean_block_length=0.5), "block length"),
        (lambda: bootstrap_returns(np.zeros(10), paths=5, ruin_drawdown=1.0), "ruin_drawdown"),
        (lambda: reshuffle_trades(np.array([]), paths=5), "no trades"),
    ],
)
def test_invalid_inputs_are_refused(call, message):
    with pytest.raises(BootstrapError, match=message):
        call()
