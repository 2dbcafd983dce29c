"""Train, evaluate and predict models: the whole learning flow on a candle frame.

``train`` builds features and labels, splits the rows in time order with purge gaps (train,
validation, test), fits xgboost with early stopping on validation, chooses the trading threshold
on validation only, and reports metrics on all three splits; the test split is touched once, at
the end, by a model and threshold that never saw it. ``walk_forward`` produces out-of-sample
predictions over a whole history (the values of ``ML_PROBA``/``ML_RETURN`` in backtests).

Frames are candle frames as described in ``features``; bar times are required (windows and the
annualisation of Sharpe ratios use them) and bars are assumed contiguous.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from numpy.typing import NDArray

from apps.training.domain import evaluation
from apps.training.domain.degeneracy import degenerate_reasons
from apps.training.domain.evaluation import DEFAULT_FEE, Metrics
from apps.training.domain.features import CORE_V1, FeatureSet, bar_times_ns, feature_matrix
from apps.training.domain.fitting import DEFAULT_NTHREAD, Hyperparams, deserialize, fit, predict, serialize
from apps.training.domain.labels import ModelType, make_labels, parse_model_type
from apps.training.domain.signal_returns import signal_returns, squared_errors, takes_positions
from apps.training.domain.splits import Fold, time_splits, time_splits_min_rows, walk_forward_folds

_NS_PER_YEAR = 365.25 * 24 * 3600 * 1e9
# The shares of the labelled rows that ``train`` keeps for early stopping and for the honest test.
VALIDATION_FRACTION = 0.15
TEST_FRACTION = 0.15


class EvaluationError(ValueError):
    """An evaluation window with nothing to evaluate."""


@dataclass(frozen=True)
class Window:
    """A span of bars by open time (inclusive) and its number of rows."""

    start: pd.Timestamp
    end: pd.Timestamp
    rows: int


@dataclass(frozen=True)
class TrainResult:
    """Everything to store with a trained model.

    ``metrics`` has ``train``, ``validation`` and ``test`` entries; validation and test include
    the trading evaluation at ``threshold`` (``None`` for volatility models). ``seen_until`` is
    the open time of the last bar any label used in fitting or threshold choice read: honest
    evaluation windows start after it. ``holdout_returns`` are the signal returns
    (:mod:`.signal_returns`) of the test split's bars through the newest one (None for volatility
    models): what the trial ledger records of the model.
    """

    model_bytes: bytes = field(repr=False)
    sha256: str
    model_type: str
    horizon: int
    feature_set: dict[str, Any]
    hyperparams: dict[str, Any]
    best_iteration: int
    threshold: float | None
    metrics: dict[str, Metrics]
    feature_importances: dict[str, float]
    windows: dict[str, Window]
    seen_until: pd.Timestamp
    degenerate_reasons: tuple[str, ...] = ()
    holdout_returns: NDArray[np.float64] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Evaluation:
    """Metrics of a model over a window of bars it never saw, and the per-bar series a paired test
    compares, indexed by bar open time: ``signal_returns`` (None for volatility models) and the
    ``squared_errors`` of the rows whose outcome is known."""

    metrics: Metrics
    window: Window
    signal_returns: pd.Series | None = field(default=None, repr=False)
    squared_errors: pd.Series | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Prediction:
    """A model output made at the close of the bar that opened at ``time``."""

    time: pd.Timestamp
    value: float


@dataclass(frozen=True)
class WalkForwardResult:
    """Out-of-sample model outputs for every bar of the frame (NaN before the first fold's)."""

    predictions: NDArray[np.float64]
    folds: tuple[Fold, ...]
    best_iterations: tuple[int, ...]


def _timestamp(ns: int) -> pd.Timestamp:
    return pd.Timestamp(int(ns), unit="ns", tz="UTC")


def _periods_per_year(times_ns: NDArray[np.int64]) -> float:
    spacing = float(np.median(np.diff(times_ns))) if len(times_ns) > 1 else 0.0
    if spacing <= 0:
        raise ValueError("bar times must increase")
    return _NS_PER_YEAR / spacing


def _as_booster(model: xgb.Booster | bytes, nthread: int) -> xgb.Booster:
    return model if isinstance(model, xgb.Booster) else deserialize(model, nthread=nthread)


def _threshold_grid(model_type: ModelType, fee: float) -> tuple[float, ...]:
    if model_type is ModelType.PRICE_PREDICTION:
        return evaluation.PROBABILITY_GRID
    return evaluation.return_threshold_grid(fee)


def _ml_metrics(
    model_type: ModelType, y: NDArray[np.float64], outputs: NDArray[np.float64], volatility_baseline: float
) -> Metrics:
    if model_type is ModelType.PRICE_PREDICTION:
        return evaluation.classification_metrics(y, outputs)
    if model_type is ModelType.RETURN_PREDICTION:
        return evaluation.regression_metrics(y, outputs, baseline=0.0)
    return evaluation.regression_metrics(y, outputs, baseline=volatility_baseline, directional=False)


class _Prepared:
    """The frame trimmed to the rows in use, its features, labels and times."""

    def __init__(
        self,
        frame: pd.DataFrame,
        model_type: ModelType,
        horizon: int,
        feature_set: FeatureSet,
        lookback: int | None,
    ) -> None:
        if lookback is not None and lookback < 1:
            raise ValueError(f"lookback must be a positive number of bars, got {lookback}")
        warmup = feature_set.warmup
        start = 0 if lookback is None else max(0, len(frame) - lookback - warmup)
        self.frame = frame.iloc[start:]
        self.first_row = warmup
        self.features = feature_matrix(self.frame, feature_set)
        self.labels = make_labels(self.frame["close"].to_numpy(), model_type, horizon)
        self.times_ns = bar_times_ns(self.frame)
        self.open = self.frame["open"].to_numpy(dtype=np.float64)
        self.close = self.frame["close"].to_numpy(dtype=np.float64)

    def window(self, rows: slice) -> Window:
        start, end = self.times_ns[rows.start], self.times_ns[rows.stop - 1]
        return Window(_timestamp(start), _timestamp(end), rows.stop - rows.start)


def _shift(rows: slice, offset: int) -> slice:
    return slice(rows.start + offset, rows.stop + offset)


def minimum_lookback(
    horizon: int, *, validation_fraction: float = VALIDATION_FRACTION, test_fraction: float = TEST_FRACTION
) -> int:
    """The fewest bars ``train`` accepts as ``lookback`` with these split settings: the labelled rows
    its three splits and two purge gaps need (``splits.time_splits_min_rows``) plus the ``horizon``
    newest bars, which have no label yet. The feature set's warm-up is read from older bars, on top."""
    rows = time_splits_min_rows(horizon, validation_fraction=validation_fraction, test_fraction=test_fraction)
    return rows + horizon


def default_skill_metric(model_type: ModelType) -> str:
    """The score a model type is judged on unless told otherwise: ROC AUC, or RMSE for regressors."""
    return "roc_auc" if model_type.is_classifier else "rmse"


def train(
    frame: pd.DataFrame,
    model_type: ModelType | str,
    horizon: int,
    feature_set: FeatureSet = CORE_V1,
    hyperparams: Hyperparams | Mapping[str, Any] | None = None,
    lookback: int | None = None,
    *,
    fee: float = DEFAULT_FEE,
    nthread: int = DEFAULT_NTHREAD,
    validation_fraction: float = VALIDATION_FRACTION,
    test_fraction: float = TEST_FRACTION,
    skill_metric: str | None = None,
) -> TrainResult:
    """Fit and evaluate a model predicting ``horizon`` bars ahead.

    The rows are the newest ``lookback`` bars (all bars when ``None``); up to ``feature_set.warmup``
    older bars feed the features' warm-up, and with less history the first ``warmup`` bars serve
    only as warm-up. The last ``horizon`` bars have no label and are never fitted; they are traded
    in the test window's trading evaluation, which covers the test rows through the newest bar.
    The model is checked for degeneracy on its test rows, judged on ``skill_metric`` (default: ROC
    AUC for price models, RMSE for the others).
    """
    model_type = parse_model_type(model_type)
    feature_set.validate()
    if not isinstance(hyperparams, Hyperparams):
        hyperparams = Hyperparams.from_dict(hyperparams)
    data = _Prepared(frame, model_type, horizon, feature_set, lookback)
    labelled = len(data.frame) - horizon - data.first_row
    splits = time_splits(
        labelled, horizon, validation_fraction=validation_fraction, test_fraction=test_fraction
    )
    rows = {name: _shift(getattr(splits, name), data.first_row) for name in ("train", "validation", "test")}
    x, y = data.features, data.labels
    fitted = fit(
        x[rows["train"]],
        y[rows["train"]],
        x[rows["validation"]],
        y[rows["validation"]],
        classifier=model_type.is_classifier,
        feature_names=feature_set.columns,
        hyperparams=hyperparams,
        nthread=nthread,
    )
    outputs = np.full(len(data.frame), np.nan)
    outputs[data.first_row :] = predict(fitted.booster, x[data.first_row :])
    train_mean = float(np.mean(y[rows["train"]]))  # the constant a volatility model must beat
    metrics = {
        name: _ml_metrics(model_type, y[part], outputs[part], train_mean) for name, part in rows.items()
    }

    threshold = None
    if model_type is not ModelType.VOLATILITY_PREDICTION:
        periods = _periods_per_year(data.times_ns)
        validation = rows["validation"]
        grid = _threshold_grid(model_type, fee)
        threshold = evaluation.select_threshold(
            data.open[validation],
            data.close[validation],
            outputs[validation],
            grid,
            hold=horizon,
            fee=fee,
            periods_per_year=periods,
        )
        # The test trading window runs on to the newest bar: those bars are unseen too.
        trading_windows = {"validation": validation, "test": slice(rows["test"].start, len(data.frame))}
        for name, part in trading_windows.items():
            metrics[name] |= evaluation.trading_metrics(
                data.open[part],
                data.close[part],
                outputs[part],
                threshold=threshold,
                hold=horizon,
                fee=fee,
                periods_per_year=periods,
            )

    holdout = slice(rows["test"].start, len(data.frame))
    holdout_returns = None
    if takes_positions(model_type):
        holdout_returns = signal_returns(model_type, outputs[holdout], data.close[holdout])
    importances = evaluation.feature_importances(fitted.booster, feature_set.columns)
    reasons = degenerate_reasons(
        model_type=model_type,
        outputs=outputs[rows["test"]],
        metrics=metrics["test"],
        metric=skill_metric or default_skill_metric(model_type),
        best_iteration=fitted.best_iteration,
        max_trees=hyperparams.n_estimators,
        early_stopping=hyperparams.early_stopping_rounds is not None,
        has_splits=any(importances.values()),
    )
    model_bytes, sha256 = serialize(fitted.booster)
    return TrainResult(
        model_bytes=model_bytes,
        sha256=sha256,
        model_type=model_type.value,
        horizon=horizon,
        feature_set=feature_set.to_dict(),
        hyperparams=hyperparams.to_dict(),
        best_iteration=fitted.best_iteration,
        threshold=threshold,
        metrics=metrics,
        feature_importances=importances,
        windows={name: data.window(part) for name, part in rows.items()},
        seen_until=_timestamp(data.times_ns[rows["validation"].stop - 1 + horizon]),
        degenerate_reasons=reasons,
        holdout_returns=holdout_returns,
    )


def evaluate(
    model: xgb.Booster | bytes,
    frame: pd.DataFrame,
    *,
    model_type: ModelType | str,
    horizon: int,
    feature_set: FeatureSet,
    start: pd.Timestamp,
    threshold: float | None = None,
    fee: float = DEFAULT_FEE,
    nthread: int = 1,
) -> Evaluation:
    """Metrics of a stored model over the bars that opened at or after ``start``.

    The caller picks ``start`` after the model's ``seen_until``. Rows need ``feature_set.warmup``
    bars of history before them (earlier rows are skipped); metrics cover the rows whose label
    is complete, the trading evaluation (at ``threshold``, default 0.5 or a zero return) all bars.
    A volatility model's baseline is the window's own mean outcome (a hindsight constant). The
    signal returns cover every bar but the newest (which has no next bar yet).
    """
    model_type = parse_model_type(model_type)
    booster = _as_booster(model, nthread)
    times_ns = bar_times_ns(frame)
    first = max(feature_set.warmup, int(np.searchsorted(times_ns, pd.Timestamp(start).value)))
    labelled_stop = len(frame) - horizon
    if first >= labelled_stop:
        raise EvaluationError(
            f"no bars with a complete {horizon}-bar outcome on or after {pd.Timestamp(start)} "
            f"(after the {feature_set.warmup}-bar feature warm-up): nothing to evaluate"
        )
    context = frame.iloc[first - feature_set.warmup :]
    outputs = predict(booster, feature_matrix(context, feature_set)[feature_set.warmup :])
    labels = make_labels(frame["close"].to_numpy(), model_type, horizon)[first:labelled_stop]
    scored = outputs[: labelled_stop - first]
    metrics = _ml_metrics(model_type, labels, scored, float(np.mean(labels)))
    if model_type is not ModelType.VOLATILITY_PREDICTION and len(frame) - first >= 2:
        if threshold is None:
            threshold = 0.5 if model_type is ModelType.PRICE_PREDICTION else 0.0
        metrics |= evaluation.trading_metrics(
            frame["open"].to_numpy(dtype=np.float64)[first:],
            frame["close"].to_numpy(dtype=np.float64)[first:],
            outputs,
            threshold=threshold,
            hold=horizon,
            fee=fee,
            periods_per_year=_periods_per_year(times_ns),
        )
    window = Window(_timestamp(times_ns[first]), _timestamp(times_ns[-1]), len(frame) - first)
    index = pd.to_datetime(times_ns[first:], unit="ns", utc=True)
    returns = None
    if takes_positions(model_type):
        closes = frame["close"].to_numpy(dtype=np.float64)[first:]
        returns = pd.Series(signal_returns(model_type, outputs, closes), index=index[:-1])
    errors = pd.Series(squared_errors(labels, scored), index=index[: len(scored)])
    return Evaluation(metrics, window, returns, errors)


def predict_latest(model: xgb.Booster | bytes, frame: pd.DataFrame, feature_set: FeatureSet) -> Prediction:
    """The model's output at the close of the newest bar of ``frame`` (which must be closed).

    Only the trailing ``feature_set.warmup + 1`` bars are read. Pass a loaded ``Booster`` (see
    ``fitting.deserialize``) to avoid parsing the model on every call.
    """
    needed = feature_set.warmup + 1
    if len(frame) < needed:
        raise ValueError(f"predicting needs at least {needed} bars of history, got {len(frame)}")
    booster = _as_booster(model, nthread=1)
    tail = frame.iloc[-needed:]
    row = feature_matrix(tail, feature_set, last_rows=1)
    return Prediction(time=_timestamp(bar_times_ns(tail)[-1]), value=float(booster.inplace_predict(row)[0]))


def walk_forward(
    frame: pd.DataFrame,
    model_type: ModelType | str,
    horizon: int,
    feature_set: FeatureSet = CORE_V1,
    hyperparams: Hyperparams | Mapping[str, Any] | None = None,
    *,
    min_train: int,
    step: int,
    max_train: int | None = None,
    validation_fraction: float = VALIDATION_FRACTION,
    nthread: int = DEFAULT_NTHREAD,
) -> WalkForwardResult:
    """Out-of-sample outputs for a backtest: every bar is predicted by a model fitted only on rows
    whose labels ended before it (see ``splits.walk_forward_folds``). ``min_train`` rows fit the
    first model, a new model is fitted every ``step`` bars, on at most ``max_train`` rows."""
    model_type = parse_model_type(model_type)
    feature_set.validate()
    if not isinstance(hyperparams, Hyperparams):
        hyperparams = Hyperparams.from_dict(hyperparams)
    x = feature_matrix(frame, feature_set)
    y = make_labels(frame["close"].to_numpy(), model_type, horizon)
    folds = walk_forward_folds(
        len(frame),
        horizon,
        min_train=min_train,
        step=step,
        first_row=feature_set.warmup,
        max_train=max_train,
        validation_fraction=validation_fraction,
    )
    predictions = np.full(len(frame), np.nan)
    best_iterations = []
    for fold in folds:
        fitted = fit(
            x[fold.train],
            y[fold.train],
            x[fold.validation],
            y[fold.validation],
            classifier=model_type.is_classifier,
            feature_names=feature_set.columns,
            hyperparams=hyperparams,
            nthread=nthread,
        )
        predictions[fold.predict] = predict(fitted.booster, x[fold.predict])
        best_iterations.append(fitted.best_iteration)
    return WalkForwardResult(predictions, tuple(folds), tuple(best_iterations))
