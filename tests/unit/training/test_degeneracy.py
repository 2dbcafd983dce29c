"""Degenerate models and the shortest lookback: useless models say so, too-short histories are named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from apps.training.domain.degeneracy import degenerate_reasons
from apps.training.domain.labels import ModelType
from apps.training.domain.pipeline import minimum_lookback, train
from apps.training.domain.splits import MIN_SPLIT_ROWS, SplitError, time_splits, time_splits_min_rows

SKILLED = {"roc_auc": 0.58, "rmse": 0.9, "baseline_rmse": 1.0}
MIXED = np.array([0.4, 0.6, 0.45, 0.7])


def _reasons(model_type: ModelType = ModelType.PRICE_PREDICTION, **changes) -> tuple[str, ...]:
    checks = {
        "model_type": model_type,
        "outputs": MIXED,
        "metrics": SKILLED,
        "metric": "roc_auc" if model_type.is_classifier else "rmse",
        "best_iteration": 30,
        "max_trees": 400,
        "early_stopping": True,
        "has_splits": True,
    }
    return degenerate_reasons(**(checks | changes))


def test_a_model_with_varied_predictions_trees_and_skill_is_not_degenerate() -> None:
    assert _reasons() == ()
    assert _reasons(ModelType.RETURN_PREDICTION, outputs=np.array([-0.01, 0.02, 0.0])) == ()
    assert _reasons(ModelType.VOLATILITY_PREDICTION, outputs=np.array([0.01, 0.02])) == ()


@pytest.mark.parametrize(
    ("model_type", "outputs", "words"),
    [
        (ModelType.PRICE_PREDICTION, [0.41, 0.49, 0.3], "predicts down for every one of the 3 test rows"),
        (ModelType.PRICE_PREDICTION, [0.5, 0.9, 0.51], "predicts up for every one of the 3 test rows"),
        (ModelType.RETURN_PREDICTION, [-0.01, -0.02, 0.0], "predicts no rise for every one"),
        (ModelType.VOLATILITY_PREDICTION, [0.02, 0.02, 0.02], "predicts 0.02 for every one of the 3"),
    ],
)
def test_a_constant_prediction_on_the_test_rows_is_degenerate(model_type, outputs, words) -> None:
    assert any(words in reason for reason in _reasons(model_type, outputs=np.array(outputs)))


def test_a_booster_without_a_split_is_degenerate() -> None:
    assert "none of its trees has a split: its output is a constant" in _reasons(has_splits=False)


def test_early_stopping_at_the_first_tree_is_degenerate_unless_one_tree_was_asked_for() -> None:
    [reason] = _reasons(best_iteration=0)
    assert "kept only the first of up to 400 trees" in reason
    assert _reasons(best_iteration=0, max_trees=1) == ()
    assert _reasons(best_iteration=0, early_stopping=False) == ()


@pytest.mark.parametrize(
    ("model_type", "metrics", "metric"),
    [
        (ModelType.PRICE_PREDICTION, {"roc_auc": 0.5}, "roc_auc"),
        (ModelType.PRICE_PREDICTION, {"accuracy": 0.54, "baseline_accuracy": 0.56}, "accuracy"),
        (ModelType.RETURN_PREDICTION, {"rmse": 1.0, "baseline_rmse": 1.0}, "rmse"),
        (ModelType.VOLATILITY_PREDICTION, {"rmse": 1.2, "baseline_rmse": 1.0}, "rmse"),
    ],
)
def test_a_test_score_no_better_than_no_skill_is_degenerate(model_type, metrics, metric) -> None:
    outputs = np.array([-0.5, 0.2, 0.7])
    [reason] = _reasons(model_type, outputs=outputs, metrics=metrics, metric=metric)
    assert f"its test {metric}" in reason
    assert "no better than no skill" in reason


@pytest.mark.parametrize(
    ("horizon", "validation_fraction", "test_fraction"), [(1, 0.15, 0.15), (6, 0.15, 0.15), (24, 0.2, 0.1)]
)
def test_the_minimum_rows_are_the_fewest_the_splits_accept(
    horizon, validation_fraction, test_fraction
) -> None:
    fractions = {"validation_fraction": validation_fraction, "test_fraction": test_fraction}
    minimum = time_splits_min_rows(horizon, **fractions)

    splits = time_splits(minimum, horizon, **fractions)
    with pytest.raises(SplitError, match=f"each needs at least {MIN_SPLIT_ROWS}"):
        time_splits(minimum - 1, horizon, **fractions)
    assert min(s.stop - s.start for s in (splits.train, splits.validation, splits.test)) == MIN_SPLIT_ROWS


def test_training_accepts_the_minimum_lookback_and_refuses_one_bar_less(walk: pd.DataFrame) -> None:
    minimum = minimum_lookback(3)

    result = train(walk, "price_prediction", 3, lookback=minimum)
    with pytest.raises(SplitError):
        train(walk, "price_prediction", 3, lookback=minimum - 1)
    assert (
        result.windows["test"].rows == MIN_SPLIT_ROWS or result.windows["validation"].rows == MIN_SPLIT_ROWS
    )


def test_a_model_of_a_constant_price_is_flagged_degenerate(walk: pd.DataFrame) -> None:
    flat = walk.assign(open=100.0, high=100.0, low=100.0, close=100.0)

    result = train(flat, "price_prediction", 1, lookback=1000)

    assert any("for every one of the 150 test rows" in reason for reason in result.degenerate_reasons)
    assert "none of its trees has a split: its output is a constant" in result.degenerate_reasons


def test_a_model_with_skill_on_its_test_split_is_not_flagged(walk: pd.DataFrame) -> None:
    # Every bar reverses the one before it: any model that reads the last return has skill.
    steps = np.abs(np.random.default_rng(5).normal(0.0, 0.01, len(walk))) * (-1.0) ** np.arange(len(walk))
    close = 100.0 * np.exp(np.cumsum(steps))
    opens = np.concatenate(([100.0], close[:-1]))
    zigzag = walk.assign(
        open=opens, close=close, high=np.maximum(opens, close) * 1.001, low=np.minimum(opens, close) * 0.999
    )

    result = train(zigzag, "price_prediction", 1, lookback=2000)

    assert result.metrics["test"]["roc_auc"] > 0.9
    assert result.degenerate_reasons == ()
