"""CSCV and the probability of backtest overfitting: a brute-force loop, noise, a planted winner."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata

from apps.strategies.engine.robustness.histogram import Histogram
from apps.strategies.engine.robustness.overfitting import (
    LOGIT_BINS,
    BlockSums,
    OverfittingError,
    block_sums,
    overfitting_from_blocks,
    probability_of_overfitting,
)


def brute_force(matrix: np.ndarray, partitions: int) -> dict[str, np.ndarray]:
    """The paper's procedure written as a loop over combinations, with scipy's average ranks."""
    block = len(matrix) // partitions
    matrix = matrix[len(matrix) - block * partitions :]
    blocks = np.split(matrix, partitions)
    logits, in_sample, out_of_sample = [], [], []
    for train in itertools.combinations(range(partitions), partitions // 2):
        test = [i for i in range(partitions) if i not in train]
        is_rows, oos_rows = (
            np.concatenate([blocks[i] for i in train]),
            np.concatenate([blocks[i] for i in test]),
        )
        sharpe_in = is_rows.mean(axis=0) / is_rows.std(axis=0, ddof=1)
        sharpe_out = oos_rows.mean(axis=0) / oos_rows.std(axis=0, ddof=1)
        best = int(np.argmax(sharpe_in))
        rank = rankdata(sharpe_out)[best] / (matrix.shape[1] + 1)
        logits.append(np.log(rank / (1 - rank)))
        in_sample.append(sharpe_in[best])
        out_of_sample.append(sharpe_out[best])
    return {
        "logits": np.array(logits),
        "in_sample": np.array(in_sample),
        "out_of_sample": np.array(out_of_sample),
    }


@pytest.mark.parametrize(("rows", "trials", "partitions"), [(103, 7, 6), (64, 3, 4), (250, 12, 10)])
def test_cscv_equals_a_brute_force_loop_over_combinations(rows, trials, partitions):
    matrix = np.random.default_rng(rows).normal(0.0005, 0.01, (rows, trials))
    result = probability_of_overfitting(matrix, partitions)
    expected = brute_force(matrix, partitions)
    np.testing.assert_allclose(result.logits, expected["logits"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.in_sample, expected["in_sample"], rtol=1e-12)
    np.testing.assert_allclose(result.out_of_sample, expected["out_of_sample"], rtol=1e-12)
    assert result.pbo == np.mean(expected["logits"] <= 0)
    assert result.observations == rows // partitions * partitions
    assert result.combinations == len(expected["logits"])


@pytest.mark.parametrize(("rows", "trials", "partitions"), [(103, 7, 6), (250, 12, 10), (4001, 40, 16)])
def test_cscv_from_each_trials_block_sums_equals_cscv_over_the_matrix(rows, trials, partitions):
    # What a search's workers store per trial (JSON and back) is all CSCV needs: same logits, PBO, pairs.
    matrix = np.random.default_rng(rows).normal(0.0002, 0.01, (rows, trials))
    blocks = [
        BlockSums.from_dict(json.loads(json.dumps(block_sums(column, partitions).to_dict())))
        for column in matrix.T
    ]
    expected = probability_of_overfitting(matrix, partitions)
    result = overfitting_from_blocks(blocks, partitions)
    np.testing.assert_allclose(result.logits, expected.logits, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.in_sample, expected.in_sample, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.out_of_sample, expected.out_of_sample, rtol=0, atol=1e-12)
    assert (result.pbo, result.observations, result.trials) == (expected.pbo, expected.observations, trials)
    assert blocks[0].block == rows // partitions and len(blocks[0].sums) == partitions


def test_block_sums_that_do_not_share_a_cut_are_refused():
    rng = np.random.default_rng(2)
    short, long = block_sums(rng.normal(0, 0.01, 64), 4), block_sums(rng.normal(0, 0.01, 80), 4)
    with pytest.raises(OverfittingError, match="at least 2, got 1"):
        overfitting_from_blocks([short], 4)
    with pytest.raises(OverfittingError, match="not all of one window cut into 4 blocks"):
        overfitting_from_blocks([short, long], 4)
    with pytest.raises(OverfittingError, match="not all of one window cut into 8 blocks"):
        overfitting_from_blocks([short, short], 8)
    with pytest.raises(OverfittingError, match="too few for 16 partitions"):
        block_sums(rng.normal(0, 0.01, 31), 16)


def test_tied_out_of_sample_scores_share_their_average_rank():
    # Trials 1 and 2 are copies: wherever one is picked, the copy ties with it out of sample.
    rng = np.random.default_rng(5)
    matrix = rng.normal(0, 0.01, (80, 4))
    matrix[:, 2] = matrix[:, 1]
    np.testing.assert_allclose(
        probability_of_overfitting(matrix, 8).logits, brute_force(matrix, 8)["logits"], atol=1e-12
    )


def test_a_trial_that_never_varies_over_a_half_scores_zero_there():
    rng = np.random.default_rng(9)
    noise = rng.normal(0, 0.01, (40, 2))
    matrix = np.column_stack(
        (
            np.concatenate((np.zeros(20), noise[20:, 0] + 0.02)),  # idle, then winning
            noise[:, 1] - 0.02,  # always losing
            np.full(40, 0.004),  # constant: a rounding-sized variance must not make it a star
        )
    )
    result = probability_of_overfitting(matrix, 2)
    # Combination 0 trains on the first half: trials 0 and 2 score 0, trial 1 loses, the first 0 wins.
    np.testing.assert_array_equal(result.chosen, [0, 0])
    assert result.in_sample[0] == 0.0 and result.out_of_sample[1] == 0.0
    assert np.isfinite(result.logits).all()


def test_the_degradation_slope_is_the_least_squares_slope_of_the_pairs():
    matrix = np.random.default_rng(2).normal(0.0002, 0.01, (300, 30))
    result = probability_of_overfitting(matrix, 6)
    slope = np.polyfit(result.in_sample, result.out_of_sample, 1)[0]
    assert result.degradation_slope == pytest.approx(slope)
    assert result.probability_of_loss == np.mean(result.out_of_sample < 0)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), trials=st.integers(10, 60))
def test_skill_less_trials_are_overfitted_half_the_time(seed, trials):
    # One matrix's PBO varies a lot (sd ~0.17-0.24 over seeds), so average 32 independent ones: the
    # mean's sd was measured at 0.037-0.049 (for 60 and 10 trials) over 150 seeds, 0.042 at most with
    # 32, which puts the bounds more than 4.5 standard deviations away.
    rng = np.random.default_rng(seed)
    values = [probability_of_overfitting(rng.normal(0, 0.01, (400, trials)), 8).pbo for _ in range(32)]
    assert 0.3 <= np.mean(values) <= 0.7


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), trials=st.integers(5, 100), edge=st.floats(0.4, 1.0))
def test_a_planted_dominant_trial_is_not_overfitted(seed, trials, edge):
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0, 0.01, (800, trials))
    winner = int(rng.integers(trials))
    # A Sharpe ratio of ``edge`` per bar. On a half (400 rows) noise's Sharpe ratio has a standard
    # error of 0.05 and the best of 100 reaches about 0.13, so 0.4 dominates; at 0.2 a noise trial
    # beat the planted one in-sample often enough to lift the PBO to 0.06.
    matrix[:, winner] += edge * 0.01
    result = probability_of_overfitting(matrix, 8)
    assert result.pbo <= 0.05
    assert np.mean(result.chosen == winner) >= 0.95


@pytest.mark.parametrize(("trials", "partitions"), [(3, 10), (12, 8), (40, 16)])
def test_the_logit_histogram_counts_every_combination_and_puts_the_overfitted_ones_left_of_zero(
    trials, partitions
):
    matrix = np.random.default_rng(trials).normal(0.0, 0.01, (40 * partitions, trials))
    result = probability_of_overfitting(matrix, partitions)
    histogram = result.logit_histogram()
    edges, counts = np.array(histogram.edges), np.array(histogram.counts)
    assert len(counts) == LOGIT_BINS and counts.sum() == result.combinations
    assert edges[LOGIT_BINS // 2] == 0.0 and edges[-1] == -edges[0] == np.abs(result.logits).max()
    assert (
        counts[: LOGIT_BINS // 2].sum()
        == np.sum(result.logits <= 0.0)
        == round(result.pbo * result.combinations)
    )
    for i, count in enumerate(counts):  # each bin holds its right edge: (left, right]
        inside = (result.logits > edges[i]) & (result.logits <= edges[i + 1])
        assert count == inside.sum() + (i == 0) * np.sum(result.logits == edges[0])


def test_a_logit_of_exactly_zero_counts_as_overfitted_in_the_histogram_too():
    # Three trials: a pick that lands in the middle out of sample has the relative rank 1/2, a logit of 0.
    result = probability_of_overfitting(np.random.default_rng(3).normal(0.0, 0.01, (200, 3)), 10)
    assert (result.logits == 0.0).any()
    left = sum(result.logit_histogram().counts[: LOGIT_BINS // 2])
    assert left == np.sum(result.logits <= 0.0) > np.sum(result.logits < 0.0)


def test_a_histogram_about_zero_is_symmetric_and_closed_on_the_right():
    histogram = Histogram.around_zero(np.array([-1.0, 0.0, 0.5, 1.0, 0.25]), 4)
    assert histogram.edges == (-1.0, -0.5, 0.0, 0.5, 1.0)
    assert histogram.counts == (1, 1, 2, 1)  # [-1, -0.5], (-0.5, 0], (0, 0.5], (0.5, 1]
    assert Histogram.around_zero(np.zeros(5), 2) == Histogram((-1.0, 0.0, 1.0), (5, 0))
    with pytest.raises(ValueError, match="even"):
        Histogram.around_zero(np.zeros(5), 3)


def test_the_result_is_json_ready():
    result = probability_of_overfitting(np.random.default_rng(1).normal(0, 0.01, (64, 5)), 4)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["combinations"] == 6 and len(data["logits"]) == 6
    assert sum(data["logit_histogram"]["counts"]) == 6
    assert len(data["degradation"]["in_sample"]) == len(data["degradation"]["out_of_sample"]) == 6


def test_invalid_matrices_and_partitions_are_refused():
    matrix = np.zeros((64, 4))
    for partitions in (3, 0, True, 16.0):
        with pytest.raises(OverfittingError, match="even"):
            probability_of_overfitting(matrix, partitions)
    with pytest.raises(OverfittingError, match="at least 2 columns"):
        probability_of_overfitting(np.zeros((64, 1)), 4)
    with pytest.raises(OverfittingError, match="too few"):
        probability_of_overfitting(np.zeros((31, 4)), 16)
    with pytest.raises(OverfittingError, match="finite"):
        probability_of_overfitting(np.full((64, 4), np.nan), 4)
