"""The learning flow end to end: honest out-of-sample scores, no look-ahead, reproducible models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from apps.training.domain.features import CORE_V1, Bars, Feature, FeatureSet, build_features
from apps.training.domain.fitting import Hyperparams, deserialize, predict
from apps.training.domain.labels import make_labels
from apps.training.domain.pipeline import (
    EvaluationError,
    evaluate,
    predict_latest,
    train,
    walk_forward,
)


@dataclass(frozen=True)
class NextBarReturn(Feature):
    """A deliberately leaky feature: the return of the bar after t, known only in hindsight."""

    kind: ClassVar[str] = "next_bar_return"

    @property
    def column(self) -> str:
        return "next_bar_return"

    @property
    def warmup(self) -> int:
        return 0

    def compute(self, bars: Bars) -> np.ndarray:
        return np.append(np.diff(bars.log_close), np.nan)


LEAKY = FeatureSet("leaky", 1, (*CORE_V1.features, NextBarReturn()))


def _position(frame: pd.DataFrame, time: pd.Timestamp) -> int:
    return int(frame.index.get_loc(time))


def test_a_random_walk_is_unpredictable_out_of_sample(long_walk: pd.DataFrame) -> None:
    test = train(long_walk, "price_prediction", 1).metrics["test"]
    assert test["rows"] > 7_000
    assert test["accuracy"] == pytest.approx(0.5, abs=0.02)
    assert test["roc_auc"] == pytest.approx(0.5, abs=0.03)


def test_the_honesty_check_catches_a_feature_that_peeks_at_the_future(walk: pd.DataFrame) -> None:
    test = train(walk, "price_prediction", 1, LEAKY).metrics["test"]
    assert test["roc_auc"] > 0.95
    assert test["accuracy"] > 0.85


def test_training_never_reads_a_bar_of_the_test_window(walk: pd.DataFrame) -> None:
    honest = train(walk, "price_prediction", 3)
    changed = walk.copy()
    test_start = _position(walk, honest.windows["test"].start)
    changed.iloc[test_start:, :4] *= np.linspace(1.0, 3.0, len(walk) - test_start)[:, None]
    again = train(changed, "price_prediction", 3)
    assert again.sha256 == honest.sha256
    assert again.threshold == honest.threshold
    assert again.metrics["validation"] == honest.metrics["validation"]
    assert again.metrics["test"] != honest.metrics["test"]


def test_the_model_saw_nothing_after_the_validation_labels(walk: pd.DataFrame) -> None:
    result = train(walk, "price_prediction", 6)
    last_validation_row = _position(walk, result.windows["validation"].end)
    assert result.seen_until == walk.index[last_validation_row + 6]
    assert result.seen_until < result.windows["test"].start


def test_the_same_data_and_seed_give_the_same_model(walk: pd.DataFrame) -> None:
    first, second = train(walk, "price_prediction", 1), train(walk, "price_prediction", 1)
    assert first.sha256 == second.sha256
    assert first.model_bytes == second.model_bytes
    assert first.metrics == second.metrics


def test_lookback_is_the_number_of_newest_bars_used_as_rows(walk: pd.DataFrame) -> None:
    result = train(walk, "price_prediction", 4, lookback=3_000)
    rows = sum(w.rows for w in result.windows.values())
    assert rows + 2 * 4 == 3_000 - 4
    assert result.windows["train"].start == walk.index[-3_000]
    assert result.windows["test"].end == walk.index[-1 - 4]


def test_a_train_result_records_what_was_trained(walk: pd.DataFrame) -> None:
    result = train(walk, "price_prediction", 2, hyperparams={"max_depth": 3})
    assert result.feature_set == CORE_V1.to_dict()
    assert result.hyperparams["max_depth"] == 3
    assert result.model_type == "price_prediction"
    assert result.horizon == 2
    assert deserialize(result.model_bytes).num_boosted_rounds() == result.best_iteration + 1
    assert set(result.feature_importances) == set(CORE_V1.columns)
    assert 0.5 <= result.threshold <= 0.7
    assert {"trading_sharpe", "buy_hold_total_return", "roc_auc"} <= set(result.metrics["test"])
    assert "trading_sharpe" not in result.metrics["train"]


def test_evaluating_the_test_window_reproduces_the_test_metrics(walk: pd.DataFrame) -> None:
    result = train(walk, "price_prediction", 2)
    evaluation = evaluate(
        result.model_bytes,
        walk,
        model_type="price_prediction",
        horizon=2,
        feature_set=CORE_V1,
        start=result.windows["test"].start,
        threshold=result.threshold,
    )
    assert evaluation.metrics == pytest.approx(result.metrics["test"], rel=1e-6)
    assert evaluation.window.start == result.windows["test"].start
    assert evaluation.window.end == walk.index[-1]
    # The signal returns the ledger records are those the promotion test reads on the same bars:
    # one per bar from the test split's first through the one before the newest.
    returns = evaluation.signal_returns
    assert returns is not None
    assert (returns.index[0], returns.index[-1]) == (result.windows["test"].start, walk.index[-2])
    np.testing.assert_allclose(returns.to_numpy(), result.holdout_returns, rtol=1e-6, atol=1e-12)


def test_evaluating_a_window_without_outcomes_is_refused(walk: pd.DataFrame) -> None:
    result = train(walk, "price_prediction", 5)
    with pytest.raises(EvaluationError, match="nothing to evaluate"):
        evaluate(
            result.model_bytes,
            walk,
            model_type="price_prediction",
            horizon=5,
            feature_set=CORE_V1,
            start=walk.index[-5],
        )


def test_the_latest_prediction_equals_the_full_history_one(walk: pd.DataFrame) -> None:
    result = train(walk, "price_prediction", 1)
    booster = deserialize(result.model_bytes)
    prediction = predict_latest(booster, walk, CORE_V1)
    full = predict(booster, build_features(walk, CORE_V1).to_numpy()[-1:])[0]
    assert prediction.time == walk.index[-1]
    assert prediction.value == pytest.approx(full, abs=1e-6)
    assert 0.0 < prediction.value < 1.0


def test_predicting_needs_the_feature_warmup(walk: pd.DataFrame) -> None:
    result = train(walk, "price_prediction", 1)
    with pytest.raises(ValueError, match=f"at least {CORE_V1.warmup + 1} bars"):
        predict_latest(result.model_bytes, walk.iloc[-CORE_V1.warmup :], CORE_V1)


def test_a_return_model_does_not_beat_a_zero_forecast_on_a_random_walk(walk: pd.DataFrame) -> None:
    result = train(walk, "return_prediction", 1)
    test = result.metrics["test"]
    assert test["rmse"] / test["baseline_rmse"] == pytest.approx(1.0, abs=0.02)
    assert test["directional_accuracy"] == pytest.approx(0.5, abs=0.05)
    assert result.threshold is not None


def test_a_volatility_model_reports_errors_against_the_training_mean_and_never_trades(
    walk: pd.DataFrame,
) -> None:
    result = train(walk, "volatility_prediction", 6)
    assert result.threshold is None
    assert result.holdout_returns is None
    assert "trading_sharpe" not in result.metrics["test"]
    assert result.metrics["test"]["rmse"] > 0
    assert "directional_accuracy" not in result.metrics["test"]


def test_walk_forward_predictions_ignore_every_later_bar(walk: pd.DataFrame) -> None:
    cut = 4_200
    changed = walk.copy()
    changed.iloc[cut + 1 :, :4] *= 2.0
    kwargs = {"min_train": 2_000, "step": 700, "hyperparams": Hyperparams(n_estimators=60)}
    before = walk_forward(walk, "price_prediction", 3, **kwargs).predictions
    after = walk_forward(changed, "price_prediction", 3, **kwargs).predictions
    np.testing.assert_array_equal(after[: cut + 1], before[: cut + 1])
    assert not np.allclose(after[cut + 1 :], before[cut + 1 :], equal_nan=True)


def test_walk_forward_covers_the_history_after_the_first_fold(walk: pd.DataFrame) -> None:
    result = walk_forward(walk, "price_prediction", 3, min_train=2_000, step=700)
    first = CORE_V1.warmup + 2_000 + 3
    assert np.isnan(result.predictions[:first]).all()
    assert not np.isnan(result.predictions[first:]).any()
    assert all(fold.last_seen < fold.predict.start for fold in result.folds)
    assert len(result.best_iterations) == len(result.folds)


def _walk_forward_auc(frame: pd.DataFrame, feature_set: FeatureSet) -> float:
    predictions = walk_forward(
        frame, "price_prediction", 1, feature_set, min_train=2_500, step=1_000
    ).predictions
    labels = make_labels(frame["close"].to_numpy(), "price_prediction", 1)
    scored = ~np.isnan(predictions) & ~np.isnan(labels)
    return float(roc_auc_score(labels[scored], predictions[scored]))


def test_walk_forward_scores_chance_on_a_random_walk(walk: pd.DataFrame) -> None:
    assert _walk_forward_auc(walk, CORE_V1) == pytest.approx(0.5, abs=0.04)


def test_walk_forward_would_expose_a_leaky_feature(walk: pd.DataFrame) -> None:
    assert _walk_forward_auc(walk, LEAKY) > 0.95


def test_a_lookback_below_one_bar_is_refused(walk: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="lookback must be a positive number of bars"):
        train(walk, "price_prediction", 1, lookback=0)
