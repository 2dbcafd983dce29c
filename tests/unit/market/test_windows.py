"""The fast window primitives agree with pandas' rolling and ewm on arbitrary finite series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from apps.market.domain import windows

series = arrays(np.float64, st.integers(0, 300), elements=st.floats(-1e6, 1e6, allow_nan=False))
windows_n = st.integers(1, 70)


@settings(max_examples=150, deadline=None)
@given(x=series, n=windows_n)
def test_window_sum_mean_max_and_min_equal_pandas_rolling(x, n):
    rolling = pd.Series(x).rolling(n, min_periods=n)
    scale = 1e-9 * max(1.0, float(np.abs(x).max(initial=0.0))) * n
    np.testing.assert_allclose(windows.window_sum(x, n), rolling.sum().to_numpy(), rtol=1e-9, atol=scale)
    np.testing.assert_allclose(windows.window_mean(x, n), rolling.mean().to_numpy(), rtol=1e-9, atol=scale)
    np.testing.assert_array_equal(windows.window_max(x, n), rolling.max().to_numpy())
    np.testing.assert_array_equal(windows.window_min(x, n), rolling.min().to_numpy())


def _block_sums(x: np.ndarray, n: int) -> np.ndarray:
    """Each window summed as the blocks define it (see windows' docstring): the suffix of the block
    it starts in, summed from that block's end backward, plus the next block's prefix summed forward;
    a window that is one block, summed forward."""
    out = np.full(len(x), np.nan)
    for t in range(n - 1, len(x)):
        start = t - n + 1
        block_end = start // n * n + n - 1
        suffix, prefix = 0.0, 0.0
        if block_end == t:
            for i in range(start, t + 1):
                prefix += x[i]
            out[t] = prefix
            continue
        for i in range(block_end, start - 1, -1):
            suffix += x[i]
        for i in range(block_end + 1, t + 1):
            prefix += x[i]
        out[t] = suffix + prefix
    return out


@settings(max_examples=100, deadline=None)
@given(x=series, n=windows_n)
def test_window_sums_are_their_block_definition_to_the_bit(x, n):
    # Whatever order the kernel does its additions in, each window's sum is this one: a prefix of a
    # series gives a prefix of its sums, and no sum depends on values outside its window's two blocks.
    expected = _block_sums(x, n)
    np.testing.assert_array_equal(windows.window_sum(x, n), expected)
    assert np.array_equal(windows.window_sum(x[: len(x) // 2], n), expected[: len(x) // 2], equal_nan=True)


@settings(max_examples=100, deadline=None)
@given(x=series, n=st.integers(1, 40))
def test_weighted_mean_and_mean_absolute_deviation_equal_their_definitions(x, n):
    weights = np.arange(1, n + 1) / (n * (n + 1) / 2)
    rolling = pd.Series(x).rolling(n, min_periods=n)
    wma = rolling.apply(lambda w: (weights * w).sum(), raw=True).to_numpy()
    mad = rolling.apply(lambda w: np.abs(w - w.mean()).mean(), raw=True).to_numpy()
    scale = 1e-9 * max(1.0, float(np.abs(x).max(initial=0.0)))
    np.testing.assert_allclose(windows.window_linear_weighted_mean(x, n), wma, rtol=1e-9, atol=scale)
    np.testing.assert_allclose(windows.window_mean_abs_deviation(x, n), mad, rtol=1e-9, atol=scale)


@settings(max_examples=150, deadline=None)
@given(x=series, alpha=st.floats(1e-4, 1.0))
def test_exponential_smoothing_equals_pandas_ewm_without_adjustment(x, alpha):
    expected = pd.Series(x).ewm(alpha=alpha, adjust=False).mean().to_numpy()
    actual = windows.exponential_smoothing(x, alpha, x[0] if len(x) else 0.0)
    np.testing.assert_allclose(
        actual, expected, rtol=1e-9, atol=1e-9 * max(1.0, float(np.abs(x).max(initial=0.0)))
    )


@pytest.mark.parametrize("alpha", [2 / 3, 0.1, 2 / 201, 2 / 10_001])
def test_exponential_smoothing_stays_accurate_over_a_million_bars(alpha):
    x = 10_000.0 * np.exp(np.cumsum(np.random.default_rng(5).normal(0.0, 0.01, 1_000_000)))
    expected = pd.Series(x).ewm(alpha=alpha, adjust=False).mean().to_numpy()
    np.testing.assert_allclose(windows.exponential_smoothing(x, alpha, x[0]), expected, rtol=1e-12)


def test_exponential_smoothing_starts_from_the_given_value():
    smoothed = windows.exponential_smoothing(np.array([10.0, 10.0]), 0.5, initial=2.0)
    np.testing.assert_allclose(smoothed, [6.0, 8.0])


def test_window_sums_of_a_long_trending_series_lose_no_precision():
    """A cumulative-sum difference would be off by ~1e-6 here; pairwise doubling is not."""
    x = np.linspace(1e6, 2e6, 1_000_000)
    sums = windows.window_sum(x, 20)
    expected = 20 * x[:-19] + np.arange(20).sum() * (x[1] - x[0])
    np.testing.assert_allclose(sums[19:], expected, rtol=1e-14)


def test_window_std_is_the_population_standard_deviation():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(windows.window_std(x, 4), [np.nan, np.nan, np.nan, np.std(x)])


def test_lag_delays_and_pads_with_nan():
    np.testing.assert_array_equal(windows.lag(np.array([1.0, 2.0, 3.0]), 2), [np.nan, np.nan, 1.0])
    assert np.isnan(windows.lag(np.array([1.0]), 3)).all()


@pytest.mark.parametrize(
    "function",
    [
        windows.window_sum,
        windows.window_mean,
        windows.window_max,
        windows.window_min,
        windows.window_std,
        windows.window_linear_weighted_mean,
        windows.window_mean_abs_deviation,
    ],
)
def test_windows_longer_than_the_series_are_all_nan(function):
    assert np.isnan(function(np.arange(5.0), 6)).all()
    assert function(np.empty(0), 3).shape == (0,)


def test_exponential_smoothing_can_work_in_place_and_start_late():
    x = np.random.default_rng(3).normal(size=1000)
    expected = windows.exponential_smoothing(x, 0.1, initial=5.0, start=7)
    assert np.isnan(expected[:7]).all()
    assert expected[7] == pytest.approx(0.9 * 5.0 + 0.1 * x[7])
    in_place = x.copy()
    assert windows.exponential_smoothing(in_place, 0.1, initial=5.0, start=7, out=in_place) is in_place
    np.testing.assert_array_equal(in_place, expected)


@pytest.mark.parametrize(
    "function",
    [
        windows.window_sum,
        windows.window_max,
        windows.window_min,
        windows.window_linear_weighted_mean,
        windows.window_mean_abs_deviation,
    ],
)
def test_window_functions_leave_their_input_untouched(function):
    x = np.random.default_rng(4).normal(size=500)
    original = x.copy()
    function(x, 13)
    np.testing.assert_array_equal(x, original)


@pytest.mark.parametrize("n", [1, 2, 3, 20, 55])
def test_window_mean_and_std_are_pandas_rolling_ones_to_the_bit(n):
    """The compiled copy of pandas' rolling algorithms, on a long walk with a frozen stretch, values
    of both signs and a series shorter than the window."""
    rng = np.random.default_rng(11)
    walk = 10_000 * np.exp(np.cumsum(rng.normal(0, 0.01, 20_000)))
    walk[5_000:5_100] = walk[5_000]
    signed = np.cumsum(rng.normal(0, 1, 5_000))
    signed[100:200] = 3.0
    for x in (walk, signed, walk[:2], walk[:0]):
        mean, std = windows.window_mean_std_into(x, n, np.empty(len(x)), np.empty(len(x)))
        rolling = pd.Series(x).rolling(n, min_periods=n)
        np.testing.assert_array_equal(mean, rolling.mean().to_numpy())
        np.testing.assert_array_equal(std, rolling.std(ddof=0).to_numpy())
        np.testing.assert_array_equal(windows.window_std(x, n), std)
