"""The optimiser's pure parts: spaces, walk-forward folds, trial evaluation, chunks and summaries."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from apps.strategies.engine.backtest import run_backtest
from apps.strategies.engine.optimize import (
    OVERFIT_RATIO,
    Costs,
    OptimizeError,
    Window,
    chunk,
    evaluate_chunk,
    evaluate_trial,
    grid,
    in_sample_only,
    random_sample,
    summarise,
    validate_space,
    walk_forward_folds,
)

from .candles import random_walk

RULES = [
    {"condition": "SMA(fast) crosses_above SMA(slow)", "action": "buy"},
    {"condition": "SMA(fast) crosses_below SMA(slow)", "action": "sell"},
]
BASE = {"fast": 10, "slow": 30}


def test_a_grid_combines_lists_and_stepped_ranges():
    trials = grid({"fast": [5, 10], "stop_loss_pct": {"min": 0.01, "max": 0.03, "step": 0.01}})
    assert trials == [
        {"fast": 5, "stop_loss_pct": 0.01},
        {"fast": 5, "stop_loss_pct": 0.02},
        {"fast": 5, "stop_loss_pct": 0.03},
        {"fast": 10, "stop_loss_pct": 0.01},
        {"fast": 10, "stop_loss_pct": 0.02},
        {"fast": 10, "stop_loss_pct": 0.03},
    ]


def test_an_integer_range_gives_integers():
    assert grid({"slow": {"min": 20, "max": 40, "step": 10}}) == [{"slow": 20}, {"slow": 30}, {"slow": 40}]
    assert all(isinstance(t["slow"], int) for t in grid({"slow": {"min": 20, "max": 40, "step": 10}}))


def test_a_grid_range_needs_a_step_and_a_bounded_size():
    with pytest.raises(OptimizeError, match="needs a step"):
        grid({"fast": {"min": 1, "max": 5}})
    with pytest.raises(OptimizeError, match="at most"):
        grid({"a": list(range(200)), "b": list(range(200))})


def test_random_samples_are_distinct_in_range_and_reproducible():
    space = {"fast": {"min": 5, "max": 50}, "stop_loss_pct": {"min": 0.01, "max": 0.05}}
    trials = random_sample(space, 20, seed=3)
    assert len({tuple(t.values()) for t in trials}) == 20
    assert all(isinstance(t["fast"], int) and 5 <= t["fast"] <= 50 for t in trials)
    assert all(0.01 <= t["stop_loss_pct"] <= 0.05 for t in trials)
    assert random_sample(space, 20, seed=3) == trials
    assert random_sample(space, 20, seed=4) != trials


def test_random_sampling_a_small_discrete_space_returns_all_of_it():
    assert random_sample({"fast": [5, 10], "slow": [20, 30]}, 10, seed=0) == grid(
        {"fast": [5, 10], "slow": [20, 30]}
    )


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"fast": [0, 5]}, "fast: period must be a whole number from 1"),
        ({"fast": {"min": 2, "max": 20000, "step": 1}}, "at most"),
        ({"fast": {"min": 1.5, "max": 20.5}}, "whole number"),
        ({"stop_loss_pct": [0.02, 2.0]}, "stop_loss_pct"),
        ({"fsat": [5]}, "'fsat' is not used by the strategy: no rule reads it, .*; valid: .*fast"),
        ({"fast": []}, "non-empty list"),
        ({"fast": {"min": 9, "max": 3}}, "min <= max"),
    ],
)
def test_it_validates_the_space_against_indicator_ranges_and_risk_limits(space, message):
    with pytest.raises(OptimizeError, match=message):
        validate_space(space, RULES)


def test_a_valid_space_passes_validation():
    validate_space({"fast": [5, 10], "slow": {"min": 20, "max": 60}, "take_profit_pct": [0.05]}, RULES)


def test_walk_forward_test_windows_are_consecutive_and_never_overlap_their_training_windows():
    folds = walk_forward_folds(1000, 5, train_fraction=0.7)
    assert len(folds) == 5
    assert folds[-1].test.stop == 1000
    for fold, following in itertools.pairwise(folds):
        assert fold.test.stop == following.test.start
    for fold in folds:
        assert fold.train.stop == fold.test.start
        assert len(fold.train) / (len(fold.train) + len(fold.test)) == pytest.approx(0.7, abs=0.01)


def test_anchored_training_windows_start_at_the_first_bar_and_grow():
    folds = walk_forward_folds(1000, 3, anchored=True)
    assert [f.train.start for f in folds] == [0, 0, 0]
    assert folds[0].train.stop < folds[1].train.stop < folds[2].train.stop == folds[2].test.start


def test_it_refuses_folds_too_small_to_trade():
    with pytest.raises(OptimizeError, match="too few"):
        walk_forward_folds(50, 10)


def test_chunks_number_the_trials_and_survive_json():
    chunks = chunk(grid({"fast": [5, 6, 7, 8, 9]}), 2)
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert chunks[2] == [{"index": 4, "params": {"fast": 9}}]
    assert json.loads(json.dumps(chunks)) == chunks


def test_evaluating_a_trial_on_a_window_matches_a_backtest_with_warmed_up_signals():
    frame = random_walk(600, seed=5)
    window = Window(300, 600)
    metrics = evaluate_trial(frame, RULES, BASE, {"fast": 5}, window, costs=Costs(commission=0.0))
    full = run_backtest(frame, RULES, {**BASE, "fast": 5}, commission=0.0)
    spanning = (full.trades.entry_bar < 300) & (full.trades.exit_bar >= 300)
    assert not spanning.any()  # so the window's trades are exactly the full run's later ones
    later = full.trades.entry_bar >= 300
    assert metrics["bars"] == 300
    assert metrics["num_trades"] == int(later.sum())
    assert metrics["expectancy_pct"] == pytest.approx(full.trades.return_pct[later].mean())


def test_a_chunk_reports_every_fold_and_records_rejected_combinations():
    frame = random_walk(800, seed=6)
    folds = walk_forward_folds(len(frame), 2)
    trials = chunk(grid({"fast": [5, 40], "slow": [20, 30]}), 10)[0]
    results = evaluate_chunk(frame, RULES, BASE, trials, folds)
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert "error" not in results[0] and len(results[0]["folds"]) == 2
    assert results[0]["folds"][1]["out_of_sample"]["bars"] == len(folds[1].test)
    assert results[0]["folds"][1]["in_sample"]["bars"] == len(folds[1].train)
    json.dumps(results, allow_nan=False)


def test_a_chunk_records_an_invalid_combination_instead_of_failing():
    frame = random_walk(300, seed=6)
    rules = [{"condition": "MACD(fast, slow, 9) > 0", "action": "buy"}]
    trials = chunk([{"fast": 12, "slow": 26}, {"fast": 30, "slow": 26}], 5)[0]
    results = evaluate_chunk(frame, rules, {}, trials, in_sample_only(len(frame)))
    assert "folds" in results[0]
    assert "must be below slow" in results[1]["error"]


def fake_result(index: int, in_sample: list[float | None], out_of_sample: list[float | None]) -> dict:
    return {
        "index": index,
        "params": {"fast": index},
        "folds": [
            {"fold": k, "in_sample": {"sharpe_ratio": i}, "out_of_sample": {"sharpe_ratio": o}}
            for k, (i, o) in enumerate(zip(in_sample, out_of_sample, strict=True))
        ],
    }


def test_the_summary_picks_per_fold_winners_in_sample_and_reports_them_out_of_sample():
    results = [fake_result(0, [1.0, 3.0], [0.9, 2.0]), fake_result(1, [2.0, 1.0], [1.5, 0.1])]
    summary = summarise(results, "sharpe_ratio")
    assert [f["best_index"] for f in summary.folds] == [1, 0]
    assert summary.in_sample_objective == pytest.approx((2.0 + 3.0) / 2)
    assert summary.out_of_sample_objective == pytest.approx((1.5 + 2.0) / 2)
    assert (summary.best_index, summary.best_params) == (0, {"fast": 0})  # mean in-sample 2.0 vs 1.5
    assert summary.walk_forward_efficiency == pytest.approx(3.5 / 5.0)
    assert summary.warning is None
    json.dumps(summary.to_dict(), allow_nan=False)


def test_the_summary_warns_when_out_of_sample_falls_far_below_in_sample():
    summary = summarise([fake_result(0, [2.0], [2.0 * OVERFIT_RATIO - 0.1])], "sharpe_ratio")
    assert "overfitted" in summary.warning
    assert summarise([fake_result(0, [2.0], [None])], "sharpe_ratio").warning is not None


def test_the_summary_ranks_undefined_objectives_last_and_counts_failures():
    results = [
        fake_result(0, [None], [None]),
        fake_result(1, [-1.0], [0.0]),
        {"index": 2, "params": {}, "error": "x"},
    ]
    summary = summarise(results, "sharpe_ratio")
    assert summary.best_index == 1
    assert summary.failed == 1


def test_the_summary_rejects_an_unknown_objective():
    with pytest.raises(OptimizeError, match="sharpe_ratio"):
        summarise([], "max_profit")


def test_an_in_sample_only_optimisation_has_no_out_of_sample_and_no_warning():
    frame = random_walk(400, seed=9)
    trials = chunk(grid({"fast": [5, 8]}), 5)[0]
    summary = summarise(evaluate_chunk(frame, RULES, BASE, trials, in_sample_only(400)), "total_return_pct")
    assert summary.out_of_sample_objective is None and summary.warning is None
    assert summary.best_index in (0, 1)
    assert np.isfinite(summary.in_sample_objective)
