"""Why a trained model is useless, however good its numbers look: the checks behind the degenerate flag.

A model is degenerate when any of these holds on its test split (the holdout it never saw):

- **Constant prediction.** A price model predicts one class for every row (at probability 0.5, where
  its precision and recall are measured); a return model predicts one direction for every row; any
  model gives one value for every row. It trades always or never, whatever the market does.
- **No trees kept.** No tree of the booster has a split (its output is the base score), or early
  stopping kept only the first of several trees: nothing learned after it held on validation.
- **No skill.** Its test score on the promotion metric is no better than no skill: an AUC of 0.5,
  or the metric's own baseline (the majority class, the zero-return or mean-volatility forecast)
  as the evaluation computes it (``baseline_<metric>``).

The checks are pure: they read the model's outputs and metrics, never a database.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from apps.training.domain.evaluation import Metrics, higher_is_better
from apps.training.domain.labels import ModelType

_DIRECTION_OF = {
    ModelType.PRICE_PREDICTION: ("up", "down"),
    ModelType.RETURN_PREDICTION: ("a rise", "no rise"),
}


def no_skill(model_type: ModelType, metric: str, metrics: Mapping[str, float | None]) -> float | None:
    """The value of ``metric`` that a model without skill scores on the same rows, or None if unknown.

    ROC AUC: 0.5. Any other metric: its ``baseline_<metric>`` in ``metrics`` (the window's majority
    class for accuracy, predicting no change or the training mean for RMSE and MAE).
    """
    if model_type.is_classifier and metric == "roc_auc":
        return 0.5
    return metrics.get(f"baseline_{metric}")


def degenerate_reasons(
    *,
    model_type: ModelType,
    outputs: NDArray[np.float64],
    metrics: Metrics,
    metric: str,
    best_iteration: int,
    max_trees: int,
    early_stopping: bool,
    has_splits: bool,
) -> tuple[str, ...]:
    """Why the model is degenerate (empty: it is not), from its test split.

    ``outputs`` are its predictions on the test rows and ``metrics`` their scores; ``metric`` is the
    score it is judged on; ``best_iteration`` counts from 0, of at most ``max_trees``; ``has_splits``
    says whether any of its trees splits at all.
    """
    reasons = []
    values = np.asarray(outputs, dtype=np.float64)
    rows = len(values)
    if rows and np.ptp(values) == 0:
        reasons.append(f"it predicts {values[0]:.6g} for every one of the {rows} test rows")
    elif rows and model_type in _DIRECTION_OF:
        positive = values >= 0.5 if model_type.is_classifier else values > 0
        if positive.all() or not positive.any():
            yes, no = _DIRECTION_OF[model_type]
            reasons.append(
                f"it predicts {yes if positive.all() else no} for every one of the {rows} test rows"
            )
    if not has_splits:
        reasons.append("none of its trees has a split: its output is a constant")
    elif early_stopping and best_iteration == 0 and max_trees > 1:
        reasons.append(
            f"early stopping kept only the first of up to {max_trees} trees: nothing learned after it "
            "held on the validation split"
        )
    value, baseline = metrics.get(metric), no_skill(model_type, metric, metrics)
    if value is not None and baseline is not None:
        better = value > baseline if higher_is_better(metric) else value < baseline
        if not better:
            reasons.append(f"its test {metric} {value:.6g} is no better than no skill ({baseline:.6g})")
    return tuple(reasons)
