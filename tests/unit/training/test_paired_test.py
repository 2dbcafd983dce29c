"""The paired promotion test: Diebold-Mariano with a Newey-West variance, checked against a hand
computation, an independent matrix form and scipy, then for its size and power on seeded series."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.signal import lfilter

from apps.training.domain.paired_test import diebold_mariano, long_run_variance, newey_west_lags


def _bartlett_matrix_variance(d: np.ndarray, lags: int) -> float:
    """The same long-run variance written as a quadratic form, ``c' W c / T`` with Bartlett weights
    ``W[i, j] = max(0, 1 - |i - j| / (L + 1))``: no autocovariance loop shared with the module."""
    centred = d - d.mean()
    gaps = np.abs(np.subtract.outer(np.arange(len(d)), np.arange(len(d))))
    weights = np.clip(1.0 - gaps / (lags + 1.0), 0.0, None)
    return float(centred @ weights @ centred) / len(d)


def _ar1(rng: np.random.Generator, phi: float, size: int) -> np.ndarray:
    return lfilter([1.0], [1.0, -phi], rng.normal(size=size))


def test_a_hand_computed_example() -> None:
    # d = [1, -1, 2, 0]: mean 0.5, centred [0.5, -1.5, 1.5, -0.5]; g0 = 5/4, g1 = -3.75/4;
    # with one lag S = g0 + 2 * (1 - 1/2) * g1 = 0.3125 and DM = 0.5 / sqrt(0.3125 / 4).
    result = diebold_mariano(np.array([1.0, -1.0, 2.0, 0.0]), np.zeros(4), lags=1)

    assert result.long_run_variance == pytest.approx(0.3125, rel=1e-12)
    assert result.statistic == pytest.approx(0.5 / math.sqrt(0.3125 / 4), rel=1e-12)
    assert result.statistic == pytest.approx(1.788854, abs=1e-6)
    assert result.p_value == pytest.approx(stats.t.sf(1.788854382, df=3), rel=1e-8)
    assert (result.observations, result.mean_difference, result.lags) == (4, 0.5, 1)


@pytest.mark.parametrize("lags", [0, 1, 4, 12])
def test_the_variance_equals_the_quadratic_form_with_bartlett_weights(lags: int) -> None:
    d = _ar1(np.random.default_rng(lags), 0.6, 250)

    assert long_run_variance(d, lags) == pytest.approx(_bartlett_matrix_variance(d, lags), rel=1e-10)


def test_without_lags_the_statistic_is_scipys_one_sample_t_with_the_population_variance() -> None:
    rng = np.random.default_rng(5)
    candidate, champion = rng.normal(0.1, 1.0, 200), rng.normal(0.0, 1.0, 200)

    result = diebold_mariano(candidate, champion, lags=0)

    t = stats.ttest_1samp(candidate - champion, 0.0).statistic
    # ttest_1samp divides by the sample standard deviation (ddof=1); DM's g0 is the population one.
    assert result.statistic == pytest.approx(t * math.sqrt(200 / 199), rel=1e-10)
    assert result.p_value == pytest.approx(stats.t.sf(result.statistic, df=199), rel=1e-10)


@pytest.mark.parametrize("seed", range(5))
def test_swapping_candidate_and_champion_flips_the_sign(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = _ar1(rng, 0.3, 150), _ar1(rng, 0.3, 150)

    forward, backward = diebold_mariano(a, b), diebold_mariano(b, a)

    assert backward.statistic == pytest.approx(-forward.statistic, rel=1e-12)
    assert backward.mean_difference == pytest.approx(-forward.mean_difference, rel=1e-12)
    assert backward.p_value == pytest.approx(1.0 - forward.p_value, abs=1e-12)


@pytest.mark.parametrize("phi", [0.0, 0.5])
def test_series_of_one_distribution_give_roughly_uniform_p_values(phi: float) -> None:
    """400 seeded pairs of independent AR(1) series of one distribution: no real difference, so the p-values
    spread over [0, 1] and about 5% fall below 0.05. With phi = 0.5 a plain t-test rejects about 18% of
    them (measured); the HAC variance keeps the rate near 5%."""
    rng = np.random.default_rng(2024)
    p_values = np.array(
        [diebold_mariano(_ar1(rng, phi, 300), _ar1(rng, phi, 300)).p_value for _ in range(400)]
    )

    assert p_values.mean() == pytest.approx(0.5, abs=0.05)
    assert 0.02 <= (p_values < 0.05).mean() <= 0.10
    assert stats.kstest(p_values, "uniform").pvalue > 0.01


def test_a_planted_improvement_is_significant_and_its_reverse_is_not() -> None:
    rng = np.random.default_rng(11)
    champion = rng.normal(0.0, 0.01, 300)
    candidate = champion + rng.normal(0.002, 0.005, 300)  # 0.4 standard deviations better a bar

    better, worse = diebold_mariano(candidate, champion), diebold_mariano(champion, candidate)

    assert better.p_value < 1e-6
    assert worse.p_value > 1 - 1e-6


def test_identical_scores_are_no_evidence() -> None:
    scores = np.random.default_rng(1).normal(size=120)

    result = diebold_mariano(scores, scores.copy())

    assert (result.statistic, result.p_value, result.mean_difference) == (None, 1.0, 0.0)


def test_the_lag_follows_newey_and_west_and_covers_overlapping_forecasts() -> None:
    assert [newey_west_lags(t) for t in (2, 100, 150, 1000, 10_000)] == [1, 4, 4, 6, 11]
    assert newey_west_lags(150, horizon=24) == 23
    assert newey_west_lags(10, horizon=24) == 9  # never more lags than rows


@pytest.mark.parametrize(
    ("candidate", "champion", "message"),
    [
        (np.zeros(5), np.zeros(4), "paired"),
        (np.zeros(1), np.zeros(1), "at least 2 rows"),
        (np.array([0.0, np.nan, 1.0]), np.zeros(3), "finite"),
    ],
)
def test_unpaired_short_or_broken_series_are_refused(
    candidate: np.ndarray, champion: np.ndarray, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        diebold_mariano(candidate, champion)
