"""Monte Carlo: the block-level bootstrap against bar-by-bar paths, its draws, the trade reshuffle, and
the fan and drawdown histogram a chart draws from the same paths."""

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
from apps.strategies.engine.robustness.histogram import Histogram
from apps.strategies.engine.robustness.monte_carlo import (
    DRAWDOWN_BINS,
    FAN_POINTS,
    PERCENTILES,
    bootstrap_returns,
    fan_steps,
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


def walk_levels(returns: np.ndarray) -> np.ndarray:
    """The log equity of one path after 0, 1, ..., len(returns) bars."""
    return np.concatenate(([0.0], np.cumsum(np.log(np.maximum(1.0 + returns, 1e-12)))))


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
    steps = fan_steps(bars)
    final, drawdown, duration, sampled = bootstrap_statistics(
        returns, paths=paths, mean_block_length=mean_block_length, seed=3, steps=steps
    )
    indices = stationary_bootstrap_indices(bars, paths=paths, mean_block_length=mean_block_length, seed=3)
    expected = np.array([walk_path(returns[row]) for row in indices])
    np.testing.assert_allclose(np.expm1(final), expected[:, 0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(-np.expm1(-drawdown), expected[:, 1], rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(duration, expected[:, 2])
    levels = np.array([walk_levels(returns[row])[steps] for row in indices])
    np.testing.assert_allclose(sampled, levels, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(sampled[:, -1], final)  # the last step is the end, to the bit


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
        assert set(data["fan"]) == {"steps", "p5", "p25", "p50", "p75", "p95", "backtest"}
        assert sum(data["max_drawdown_histogram"]["counts"]) == 20


def test_the_fan_steps_are_every_step_or_evenly_spaced_ones_from_the_start_to_the_end():
    assert fan_steps(3).tolist() == [0, 1, 2, 3]
    assert fan_steps(FAN_POINTS - 1).tolist() == list(range(FAN_POINTS))
    many = fan_steps(1_000_000)
    assert len(many) == FAN_POINTS and many[0] == 0 and many[-1] == 1_000_000
    assert np.ptp(np.diff(many)) == 0  # evenly spaced: 10,000 bars apart


def test_the_bootstrap_fan_is_the_percentiles_of_the_paths_built_bar_by_bar():
    returns = series("noise", 1500, seed=6)
    result = bootstrap_returns(returns, paths=120, mean_block_length=30.0, seed=2)
    fan, steps = result.fan, fan_steps(1500)
    indices = stationary_bootstrap_indices(1500, paths=120, mean_block_length=30.0, seed=2)
    paths = 100.0 * np.expm1(np.array([walk_levels(returns[row])[steps] for row in indices]))
    assert fan.steps == tuple(steps.tolist()) and len(fan.steps) == FAN_POINTS
    for q, band in zip(PERCENTILES, np.percentile(paths, PERCENTILES, axis=0), strict=True):
        np.testing.assert_allclose(getattr(fan, f"p{q}"), band, rtol=1e-9, atol=1e-9)
    own = 100.0 * (np.cumprod(np.concatenate(([1.0], 1.0 + returns)))[steps] - 1.0)
    np.testing.assert_allclose(fan.backtest, own, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("method", ["block_bootstrap", "trade_reshuffle"])
def test_fan_bands_are_ordered_start_at_zero_and_end_at_the_final_return_percentiles(method):
    returns = series("noise", 600, seed=8) * 5.0
    if method == "block_bootstrap":
        result = bootstrap_returns(returns, paths=300, seed=4)
    else:
        result = reshuffle_trades(returns[:150], paths=300, seed=4)
    fan = result.fan
    bands = np.array([getattr(fan, f"p{q}") for q in PERCENTILES])
    assert (np.diff(bands, axis=0) >= 0).all()  # p5 <= p25 <= p50 <= p75 <= p95 at every step
    assert (bands[:, 0] == 0.0).all() and fan.backtest[0] == 0.0
    final = result.final_return_pct
    assert bands[:, -1].tolist() == pytest.approx([final.p5, final.p25, final.p50, final.p75, final.p95])
    assert fan.p50[-1] == pytest.approx(final.p50, rel=1e-12)
    # The paths spread out: the middle half is wider at the end than a tenth of the way in.
    middle = bands[3] - bands[1]
    if method == "block_bootstrap":
        assert middle[-1] > middle[10] > 0.0
    else:  # reshuffled trades all end at the backtest's return: the fan closes again
        assert middle[50] > middle[-1] == pytest.approx(0.0, abs=1e-9)


def test_the_reshuffle_fan_holds_the_backtest_in_its_own_trade_order():
    frame = random_walk(3000, seed=21)
    report = backtest_signals(frame, random_codes(3000, seed=22), RiskSettings(), commission=0.001)
    returns = trade_returns(report)
    fan = reshuffle_trades(returns, paths=100, seed=1).fan
    steps = fan_steps(len(returns))
    assert fan.steps == tuple(steps.tolist()) and fan.steps[-1] == len(returns)
    own = 100.0 * (np.cumprod(np.concatenate(([1.0], 1.0 + returns)))[steps] - 1.0)
    np.testing.assert_allclose(fan.backtest, own, rtol=1e-9, atol=1e-9)
    assert fan.backtest[-1] == pytest.approx(report.total_return_pct, rel=1e-9)


def test_the_drawdown_histogram_counts_every_path_between_the_least_and_the_deepest_drawdown():
    returns = series("noise", 800, seed=9)
    result = bootstrap_returns(returns, paths=150, mean_block_length=20.0, seed=5)
    indices = stationary_bootstrap_indices(800, paths=150, mean_block_length=20.0, seed=5)
    drawdowns = 100.0 * np.array([walk_path(returns[row])[1] for row in indices])
    histogram = result.max_drawdown_histogram
    assert len(histogram.counts) == DRAWDOWN_BINS and sum(histogram.counts) == 150
    assert histogram.edges[0] == pytest.approx(drawdowns.min(), rel=1e-9)
    assert histogram.edges[-1] == pytest.approx(drawdowns.max(), rel=1e-9)
    assert histogram.counts == tuple(np.histogram(drawdowns, bins=histogram.edges)[0].tolist())


def test_two_trades_put_every_path_in_one_drawdown_bin():
    histogram = reshuffle_trades(np.array([0.1, -0.5]), paths=400, seed=3).max_drawdown_histogram
    assert sum(histogram.counts) == 400 and max(histogram.counts) == 400
    at = histogram.counts.index(400)
    assert histogram.edges[at] <= 50.0 <= histogram.edges[at + 1]


def test_drawdowns_that_differ_only_by_rounding_make_one_bin_not_an_error():
    # Reordered trades reach the same drawdown up to float rounding; numpy refuses 20 bins over it
    # (this failed a backtest job through a real worker).
    values = 8.383561925176413 + np.array([0.0, 1.7763568394002505e-15, 3.552713678800501e-15] * 50)
    with pytest.raises(ValueError, match="Too many bins"):
        np.histogram(values, bins=DRAWDOWN_BINS)
    histogram = Histogram.of(values, DRAWDOWN_BINS)
    assert sum(histogram.counts) == 150 and max(histogram.counts) == 150
    at = histogram.counts.index(150)
    assert histogram.edges[at] <= values.min() and values.max() <= histogram.edges[at + 1]


def test_what_a_chart_draws_is_bounded_whatever_the_number_of_paths():
    returns = series("noise", 5000, seed=10)
    sizes = []
    for paths in (10, 400):
        data = bootstrap_returns(returns, paths=paths, seed=1).to_dict()
        sizes.append(len(json.dumps([data["fan"], data["max_drawdown_histogram"]])))
        assert len(data["fan"]["steps"]) == FAN_POINTS
        assert {len(values) for values in data["fan"].values()} == {FAN_POINTS}
        assert len(data["max_drawdown_histogram"]["edges"]) == DRAWDOWN_BINS + 1
    assert sizes[1] < 1.2 * sizes[0]


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
