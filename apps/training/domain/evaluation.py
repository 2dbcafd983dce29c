"""Model metrics: classification, regression, feature importances, and a fee-paying trading check.

Metrics are flat ``dict[str, float | None]`` (``None`` where a metric is undefined, e.g. ROC AUC on
one class), ready to store as JSON and to compare between models.

The trading evaluation follows the backtest conventions of the project: a signal is computed on
the close of bar t and the position is taken at the open of bar t+1. Each signal keeps the
position long for the next ``hold`` bars (the model's horizon); a fresh signal extends it. A fill
costs ``fee`` times its notional; a position still open at the end of the window is closed at the
last close. Buy-and-hold over the same window enters at the open of its second bar (the first
moment the strategy could) and exits at the last close, paying the same fees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import numpy as np
import xgboost as xgb
from numpy.typing import NDArray
from sklearn import metrics as skm

Metrics = dict[str, float | None]

LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae", "baseline_rmse", "baseline_mae"})
DEFAULT_FEE = 0.001
PROBABILITY_GRID = tuple(round(0.5 + 0.01 * i, 2) for i in range(21))
FEE_MULTIPLES_GRID = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)


def return_threshold_grid(fee: float) -> tuple[float, ...]:
    """Predicted-return thresholds for return models: multiples of the fee per fill."""
    return tuple(k * fee for k in FEE_MULTIPLES_GRID)


def classification_metrics(
    y_true: NDArray[np.float64], proba: NDArray[np.float64], *, threshold: float = 0.5
) -> Metrics:
    """Scores of up-move probabilities against 0/1 labels, predicting "up" at ``proba >= threshold``.

    ``baseline_accuracy`` is the best constant prediction in hindsight: the accuracy of always
    predicting the window's own majority class (a stricter bar than the training majority).
    """
    y = np.asarray(y_true, dtype=np.int64)
    p = np.clip(np.asarray(proba, dtype=np.float64), 1e-7, 1 - 1e-7)
    predicted = (p >= threshold).astype(np.int64)
    two_classes = len(np.unique(y)) == 2
    return {
        "rows": float(len(y)),
        "positive_rate": float(y.mean()),
        "accuracy": float(skm.accuracy_score(y, predicted)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y, predicted)) if two_classes else None,
        "precision": float(skm.precision_score(y, predicted, zero_division=0)),
        "recall": float(skm.recall_score(y, predicted, zero_division=0)),
        "f1": float(skm.f1_score(y, predicted, zero_division=0)),
        "roc_auc": float(skm.roc_auc_score(y, p)) if two_classes else None,
        "log_loss": float(skm.log_loss(y, p, labels=[0, 1])),
        "brier": float(skm.brier_score_loss(y, p, pos_label=1)),
        "baseline_accuracy": float(max(y.mean(), 1 - y.mean())),
    }


def regression_metrics(
    y_true: NDArray[np.float64],
    y_pred: NDArray[np.float64],
    *,
    baseline: float = 0.0,
    directional: bool = True,
) -> Metrics:
    """RMSE and MAE of the predictions and of a constant ``baseline`` prediction (zero return for
    return models); ``directional_accuracy`` is the share of rows whose predicted sign is right."""
    y = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    result: Metrics = {
        "rows": float(len(y)),
        "rmse": float(np.sqrt(np.mean((pred - y) ** 2))),
        "mae": float(np.mean(np.abs(pred - y))),
        "baseline_rmse": float(np.sqrt(np.mean((baseline - y) ** 2))),
        "baseline_mae": float(np.mean(np.abs(baseline - y))),
    }
    if directional:
        result["directional_accuracy"] = float(np.mean(np.sign(pred) == np.sign(y)))
    return result


def feature_importances(booster: xgb.Booster, feature_names: Sequence[str]) -> dict[str, float]:
    """Each feature's share of the model's total split gain (sums to 1; unused features get 0)."""
    # One number per feature: lists come only from multi-target (vector-leaf) trees, never fitted here.
    gains = cast(dict[str, float], booster.get_score(importance_type="total_gain"))
    total = sum(gains.values())
    return {name: (gains.get(name, 0.0) / total if total else 0.0) for name in feature_names}


def _positions(values: NDArray[np.float64], threshold: float, hold: int) -> NDArray[np.float64]:
    """1.0 on bar k when a signal fired on one of bars k-hold .. k-1, else 0.0."""
    bars = len(values)
    fired = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-np.inf) >= threshold
    last_fired = np.maximum.accumulate(np.where(fired, np.arange(bars), -(hold + 1)))
    positions = np.zeros(bars)
    positions[1:] = (np.arange(1, bars) - last_fired[:-1]) <= hold
    return positions


def _equity_returns(
    open_: NDArray[np.float64], close: NDArray[np.float64], positions: NDArray[np.float64], fee: float
) -> NDArray[np.float64]:
    """Net return of each bar after the first, for a long-or-flat position held open to open."""
    bar_returns = np.append(open_[1:] / open_[:-1], close[-1] / open_[-1]) - 1.0
    fills = np.abs(np.diff(positions, prepend=0.0))
    fills[-1] += positions[-1]  # the close-out at the last close
    factors = (1.0 + positions * bar_returns) * (1.0 - fee) ** fills
    return factors[1:] - 1.0


def _sharpe(returns: NDArray[np.float64], periods_per_year: float) -> float:
    if len(returns) < 2:
        return 0.0
    std = float(np.std(returns, ddof=1))
    return float(np.mean(returns) / std * math.sqrt(periods_per_year)) if std > 1e-15 else 0.0


def trading_metrics(
    open_: NDArray[np.float64],
    close: NDArray[np.float64],
    values: NDArray[np.float64],
    *,
    threshold: float,
    hold: int,
    fee: float,
    periods_per_year: float,
) -> dict[str, float]:
    """Long-or-flat trading on ``values >= threshold`` over the window, against buy-and-hold.

    ``values`` are the model outputs at each bar's close (probability or predicted return); NaN
    never signals. Sharpe is annualised from per-bar net returns with ``periods_per_year``.
    """
    open_ = np.asarray(open_, dtype=np.float64)
    close = np.asarray(close, dtype=np.float64)
    if len(close) < 2:
        raise ValueError("a trading window needs at least 2 bars")
    positions = _positions(values, threshold, hold)
    strategy = _equity_returns(open_, close, positions, fee)
    buy_hold = _equity_returns(open_, close, np.append(0.0, np.ones(len(close) - 1)), fee)
    return {
        "threshold": float(threshold),
        "trading_total_return": float(np.prod(1.0 + strategy) - 1.0),
        "trading_sharpe": _sharpe(strategy, periods_per_year),
        "trading_trades": float(np.sum(np.diff(positions, prepend=0.0) > 0)),
        "trading_exposure": float(positions[1:].mean()),
        "buy_hold_total_return": float(np.prod(1.0 + buy_hold) - 1.0),
        "buy_hold_sharpe": _sharpe(buy_hold, periods_per_year),
    }


def select_threshold(
    open_: NDArray[np.float64],
    close: NDArray[np.float64],
    values: NDArray[np.float64],
    grid: Sequence[float],
    *,
    hold: int,
    fee: float,
    periods_per_year: float,
) -> float:
    """The grid value with the best trading Sharpe on this (validation) window; ties go to the lowest.

    A grid value that never trades scores 0, so when every trading threshold loses money the
    choice is one that stays flat.
    """
    scores = [
        trading_metrics(
            open_, close, values, threshold=t, hold=hold, fee=fee, periods_per_year=periods_per_year
        )["trading_sharpe"]
        for t in sorted(grid)
    ]
    return float(sorted(grid)[int(np.argmax(scores))])


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER
