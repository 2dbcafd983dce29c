"""PSR, DSR, the expected maximum Sharpe ratio and MinTRL: the papers' examples and independent checks.

Published examples. The figures quoted from the papers are as I recall them; every one is also the
value the formula gives for the paper's inputs, and the full-precision expected values are those of
an independent implementation (the test suite of esvhd/pypbo), so a recall error would show as a
disagreement between the two, not pass silently.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from apps.strategies.engine.metrics import bar_returns
from apps.strategies.engine.robustness.sharpe import (
    ReturnMoments,
    deflated_sharpe,
    equity_moments,
    expected_max_sharpe,
    min_track_record_length,
    probabilistic_sharpe,
    return_moments,
)


def test_the_psr_of_the_sharpe_ratio_efficient_frontier_example():
    """Bailey & López de Prado (2012): a hedge fund with an annualised Sharpe ratio of 1.585 on two years
    of monthly returns (T = 24), skewness -2.448, kurtosis 10.164: PSR(0) ~ 0.913 (pypbo: 0.9132343...)."""
    psr = probabilistic_sharpe(1.585 / math.sqrt(12), 24, skewness=-2.448, kurtosis=10.164)
    assert psr == pytest.approx(0.913, abs=5e-4)
    assert psr == pytest.approx(0.91323430688486018, rel=1e-12)


def test_the_deflated_sharpe_ratio_paper_example():
    """Bailey & López de Prado (2014): the best of N = 100 trials has an annualised Sharpe ratio of 2.5 on
    T = 1250 daily returns (250 a year), skewness -3, kurtosis 10; the trials' Sharpe ratios have an
    annualised variance of 0.5. Expected maximum SR0 ~ 0.1132 per day (1.79 a year), DSR ~ 0.9004:
    below 0.95, so not a discovery despite the Sharpe ratio of 2.5 (pypbo: 0.90039683444...)."""
    daily_sharpe, daily_variance = 2.5 / math.sqrt(250), 0.5 / 250
    assert expected_max_sharpe(100, daily_variance) == pytest.approx(0.1132, abs=5e-5)
    dsr = deflated_sharpe(
        daily_sharpe, 1250, trials=100, sharpe_variance=daily_variance, skewness=-3, kurtosis=10
    )
    assert dsr == pytest.approx(0.9004, abs=5e-5)
    assert dsr == pytest.approx(0.90039683444939034, rel=1e-12)


@pytest.mark.parametrize(
    ("sharpe", "benchmark", "per_year", "skewness", "kurtosis", "years"),
    [
        (2.0, 1.0, 250, 0.0, 3.0, 2.7311878017281761),
        (2.0, 1.0, 52, 0.0, 3.0, 2.8288335869452368),
        (3.0, 2.5, 12, -0.72, 5.78, 27.352920196040301),
    ],
)
def test_the_minimum_track_record_lengths_of_the_efficient_frontier_paper(
    sharpe, benchmark, per_year, skewness, kurtosis, years
):
    """Bailey & López de Prado (2012), figure 8: the years of daily, weekly and monthly returns needed
    at 95% confidence for an annualised Sharpe ratio of 2 against 1 (normal returns) and of 3 against
    2.5 with skewness -0.72 and kurtosis 5.78 (about 2.73, 2.83 and 27.4 years; pypbo's values)."""
    bars = min_track_record_length(
        sharpe / math.sqrt(per_year),
        skewness=skewness,
        kurtosis=kurtosis,
        benchmark=benchmark / math.sqrt(per_year),
    )
    assert bars / per_year == pytest.approx(years, rel=1e-12)


@pytest.mark.parametrize("trials", [10, 100, 1000])
def test_the_expected_maximum_matches_the_mean_maximum_of_simulated_normal_trials(trials):
    """Euler-Mascheroni approximation against 20,000 simulated maxima of ``trials`` N(0, V) Sharpe
    ratios: within 3% (the approximation is asymptotic: 2.3% high at N = 10, 0.4% at N = 1000)."""
    variance = 0.04
    rng = np.random.default_rng(7)
    maxima = np.sqrt(variance) * rng.standard_normal((20_000, trials)).max(axis=1)
    assert expected_max_sharpe(trials, variance) == pytest.approx(maxima.mean(), rel=0.03)


def test_one_trial_has_nothing_to_deflate():
    assert expected_max_sharpe(1, 0.5) == 0.0
    assert deflated_sharpe(0.1, 500, trials=1, sharpe_variance=0.5) == probabilistic_sharpe(0.1, 500)


def test_the_psr_is_the_normal_cdf_of_the_paper_statistic_computed_with_scipy():
    rng = np.random.default_rng(11)
    returns = rng.standard_t(5, 800) * 0.01 + 0.0008
    moments = return_moments(returns)
    sharpe = returns.mean() / returns.std(ddof=1)
    skewness, kurtosis = stats.skew(returns), stats.kurtosis(returns, fisher=False)
    assert (moments.sharpe, moments.skewness, moments.kurtosis) == pytest.approx((sharpe, skewness, kurtosis))
    statistic = (
        (sharpe - 0.01) * math.sqrt(799) / math.sqrt(1 - skewness * sharpe + (kurtosis - 1) / 4 * sharpe**2)
    )
    psr = probabilistic_sharpe(
        moments.sharpe, 800, skewness=moments.skewness, kurtosis=moments.kurtosis, benchmark=0.01
    )
    assert psr == pytest.approx(stats.norm.cdf(statistic), rel=1e-12)


@pytest.mark.parametrize("bars", [3, 1000, 200_000])  # 200,000: several slices of the streamed passes
def test_the_moments_of_an_equity_curve_are_those_of_its_bar_returns(bars):
    rng = np.random.default_rng(bars)
    equity = 100.0 * np.cumprod(1.0 + rng.normal(0.0002, 0.01, bars))
    equity[bars // 2 :] = np.where(rng.random(bars - bars // 2) < 0.5, equity[bars // 2 :], 0.0)  # ruin
    streamed, direct = equity_moments(equity), return_moments(bar_returns(equity))
    assert streamed.observations == direct.observations == bars - 1
    for name in ("sharpe", "skewness", "kurtosis"):
        assert getattr(streamed, name) == pytest.approx(getattr(direct, name), rel=1e-9)


def test_a_flat_equity_curve_has_no_moments():
    assert equity_moments(np.full(10, 100.0)) == ReturnMoments(9, None, None, None)
    assert equity_moments(np.array([100.0])) == ReturnMoments(0, None, None, None)


def test_a_track_record_of_the_minimum_length_has_exactly_the_confidence():
    bars = min_track_record_length(0.08, skewness=-1.0, kurtosis=6.0, benchmark=0.02, confidence=0.9)
    assert probabilistic_sharpe(0.08, bars, skewness=-1.0, kurtosis=6.0, benchmark=0.02) == pytest.approx(0.9)


def test_a_sharpe_ratio_at_or_below_the_benchmark_never_reaches_confidence():
    assert min_track_record_length(0.05, benchmark=0.05) is None
    assert min_track_record_length(-0.1) is None


def test_flat_or_short_series_have_no_sharpe_ratio():
    assert return_moments(np.zeros(10)) == return_moments(np.full(10, 0.01))
    assert return_moments(np.zeros(10)).sharpe is None
    assert return_moments(np.array([0.01])).sharpe is None
    assert probabilistic_sharpe(0.1, 1) is None


def test_flatness_is_judged_on_values_across_slices():
    # Longer than a slice of the streamed passes (65,536): constant, constant per slice, and constant
    # until a single bar far into the series.
    assert return_moments(np.full(150_000, 0.01)).sharpe is None
    steps = np.repeat([0.01, 0.02, 0.01], 50_000)
    assert return_moments(steps).sharpe == pytest.approx(steps.mean() / steps.std(ddof=1))
    late = np.zeros(150_000)
    late[140_000] = 0.05
    assert return_moments(late).kurtosis == pytest.approx(stats.kurtosis(late, fisher=False))


def test_moments_no_distribution_has_give_no_psr():
    # Every distribution has kurtosis >= 1 + skewness^2.
    assert probabilistic_sharpe(0.5, 100, skewness=3.0, kurtosis=1.0) is None


def test_invalid_inputs_are_refused():
    with pytest.raises(ValueError, match="trials"):
        expected_max_sharpe(0, 0.1)
    with pytest.raises(ValueError, match="variance"):
        expected_max_sharpe(10, -0.1)
    with pytest.raises(ValueError, match="confidence"):
        min_track_record_length(0.1, confidence=1.0)
    with pytest.raises(ValueError, match="finite"):
        return_moments(np.array([0.1, np.nan]))


@settings(max_examples=200, deadline=None)
@given(
    sharpe=st.floats(0.0, 0.5),
    observations=st.integers(10, 100_000),
    variance=st.floats(1e-6, 0.1),
    trials=st.integers(1, 10_000),
    more=st.integers(1, 10_000),
)
def test_the_deflated_sharpe_falls_as_trials_grow(sharpe, observations, variance, trials, more):
    fewer = deflated_sharpe(sharpe, observations, trials=trials, sharpe_variance=variance)
    many = deflated_sharpe(sharpe, observations, trials=trials + more, sharpe_variance=variance)
    assert many <= fewer
    assert expected_max_sharpe(trials + more, variance) > expected_max_sharpe(trials, variance)


@settings(max_examples=100, deadline=None)
@given(half=st.lists(st.integers(-1000, 1000), min_size=1, max_size=200))
def test_a_zero_mean_series_has_a_psr_of_one_half_against_zero(half):
    # Every value with its negative, in multiples of 2**-10 so that the sum is exactly 0.
    returns = np.array(half + [-v for v in half]) / 1024.0
    moments = return_moments(returns)
    if moments.sharpe is None:
        assert not any(half)
        return
    assert moments.sharpe == 0.0
    psr = probabilistic_sharpe(0.0, len(returns), skewness=moments.skewness, kurtosis=moments.kurtosis)
    assert psr == 0.5
