"""Metrics and the trading evaluation, checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from apps.training.domain.evaluation import (
    PROBABILITY_GRID,
    classification_metrics,
    feature_importances,
    higher_is_better,
    regression_metrics,
    select_threshold,
    trading_metrics,
)
from apps.training.domain.fitting import fit

OPEN = np.array([100.0, 100.0, 110.0, 121.0, 121.0])
CLOSE = np.array([100.0, 110.0, 121.0, 121.0, 133.1])
SIGNALS = np.array([0.9, 0.1, 0.1, 0.9, 0.1])
HOURLY = 24 * 365.25


def test_classification_metrics_match_hand_computed_values() -> None:
    metrics = classification_metrics(np.array([1, 1, 0, 0, 1]), np.array([0.9, 0.4, 0.2, 0.6, 0.7]))
    assert metrics == pytest.approx(
        {
            "rows": 5.0,
            "positive_rate": 0.6,
            "accuracy": 0.6,
            "balanced_accuracy": (2 / 3 + 1 / 2) / 2,
            "precision": 2 / 3,
            "recall": 2 / 3,
            "f1": 2 / 3,
            "roc_auc": 5 / 6,
            "log_loss": -np.mean(np.log([0.9, 0.4, 0.8, 0.4, 0.7])),
            "brier": 0.172,
            "baseline_accuracy": 0.6,
        }
    )


def test_auc_and_balanced_accuracy_are_undefined_on_a_single_class() -> None:
    metrics = classification_metrics(np.ones(4), np.array([0.2, 0.6, 0.7, 0.9]))
    assert metrics["roc_auc"] is None
    assert metrics["balanced_accuracy"] is None
    assert metrics["baseline_accuracy"] == 1.0


def test_regression_metrics_compare_against_a_zero_return_baseline() -> None:
    metrics = regression_metrics(np.array([0.02, -0.01, 0.03]), np.array([0.01, 0.01, 0.01]))
    assert metrics == pytest.approx(
        {
            "rows": 3.0,
            "rmse": np.sqrt((0.0001 + 0.0004 + 0.0004) / 3),
            "mae": 0.05 / 3,
            "baseline_rmse": np.sqrt((0.0004 + 0.0001 + 0.0009) / 3),
            "baseline_mae": 0.06 / 3,
            "directional_accuracy": 2 / 3,
        }
    )


def test_volatility_metrics_have_no_direction() -> None:
    metrics = regression_metrics(
        np.array([0.02, 0.01]), np.array([0.01, 0.01]), baseline=0.015, directional=False
    )
    assert "directional_accuracy" not in metrics
    assert metrics["baseline_mae"] == pytest.approx(0.005)


def test_a_signal_at_a_close_is_traded_from_the_next_open_with_fees_on_every_fill() -> None:
    metrics = trading_metrics(OPEN, CLOSE, SIGNALS, threshold=0.5, hold=1, fee=0.01, periods_per_year=HOURLY)
    assert metrics["trading_total_return"] == pytest.approx(1.1**2 * 0.99**4 - 1)
    assert metrics["trading_trades"] == 2
    assert metrics["trading_exposure"] == 0.5


def test_each_signal_holds_the_position_for_hold_bars() -> None:
    metrics = trading_metrics(OPEN, CLOSE, SIGNALS, threshold=0.5, hold=2, fee=0.01, periods_per_year=HOURLY)
    assert metrics["trading_total_return"] == pytest.approx(1.1**3 * 0.99**4 - 1)
    assert metrics["trading_exposure"] == 0.75


def test_buy_and_hold_enters_at_the_second_open_and_exits_at_the_last_close() -> None:
    metrics = trading_metrics(OPEN, CLOSE, SIGNALS, threshold=0.5, hold=1, fee=0.01, periods_per_year=HOURLY)
    assert metrics["buy_hold_total_return"] == pytest.approx(133.1 / 100.0 * 0.99**2 - 1)


def test_no_signal_means_no_trade_no_return_and_zero_sharpe() -> None:
    metrics = trading_metrics(
        OPEN, CLOSE, np.full(5, np.nan), threshold=0.5, hold=3, fee=0.01, periods_per_year=1
    )
    assert (metrics["trading_total_return"], metrics["trading_trades"], metrics["trading_sharpe"]) == (
        0.0,
        0.0,
        0.0,
    )


def _foresight_window(bars: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    open_ = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, bars)))
    close = np.append(open_[1:], open_[-1])
    # The value at bar t's close knows whether bar t+1 (open to next open) will gain.
    gains = np.append(open_[2:] > open_[1:-1], False)
    return open_, close, np.append(np.where(gains, 0.8, 0.55), 0.5)


def test_the_threshold_is_the_one_with_the_best_sharpe_on_the_given_window() -> None:
    open_, close, values = _foresight_window()
    chosen = select_threshold(
        open_, close, values, PROBABILITY_GRID, hold=1, fee=0.0, periods_per_year=HOURLY
    )
    assert chosen == 0.56


def test_when_every_trading_threshold_loses_the_choice_stays_flat() -> None:
    open_, close, values = _foresight_window()
    losers = np.where(values == 0.55, 0.6, 0.1)
    chosen = select_threshold(
        open_, close, losers, PROBABILITY_GRID, hold=1, fee=0.0, periods_per_year=HOURLY
    )
    assert chosen == 0.61


def test_feature_importances_are_shares_of_the_total_gain() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2_000, 3))
    y = (x[:, 2] > 0).astype(float)
    booster = fit(
        x[:1_500], y[:1_500], x[1_500:], y[1_500:], classifier=True, feature_names=["a", "b", "c"]
    ).booster
    shares = feature_importances(booster, ["a", "b", "c"])
    assert sum(shares.values()) == pytest.approx(1.0)
    assert max(shares, key=shares.get) == "c"


@pytest.mark.parametrize(
    ("metric", "higher"), [("roc_auc", True), ("trading_sharpe", True), ("log_loss", False)]
)
def test_loss_like_metrics_improve_downwards(metric: str, higher: bool) -> None:
    assert higher_is_better(metric) is higher
