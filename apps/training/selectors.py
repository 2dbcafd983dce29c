"""Reads of the training app: the registry, stored models' predictions and evaluations, the backtest
series ``ML_PROBA``/``ML_RETURN``, and the champions' live accuracy."""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db.models import QuerySet

from apps.core import ownership
from apps.market import selectors as market
from apps.market.domain.candles import COLUMNS, parse_timeframe
from apps.market.models import Instrument
from apps.training.domain.features import FeatureSet, get_feature_set
from apps.training.domain.fitting import deserialize
from apps.training.domain.labels import ModelType
from apps.training.domain.pipeline import EvaluationError, evaluate, predict_latest
from apps.training.errors import ArtifactError, TrainingInputError
from apps.training.models import MLModel, PromotionDecision, Stage, TrainingRun

# The rule language's external series and the model type whose walk-forward outputs fill each.
SERIES_MODEL_TYPES = {"ML_PROBA": ModelType.PRICE_PREDICTION, "ML_RETURN": ModelType.RETURN_PREDICTION}
# What "accuracy" means for each model type in the live report.
LIVE_ACCURACY_METRIC = {
    ModelType.PRICE_PREDICTION: "accuracy",
    ModelType.RETURN_PREDICTION: "directional_accuracy",
    ModelType.VOLATILITY_PREDICTION: None,
}


def model_list() -> QuerySet[MLModel]:
    """Every model: the system's view (champions, promotion, the live report)."""
    return MLModel.objects.select_related("instrument", "owner")


def models_visible(*, user: ownership.User | None) -> QuerySet[MLModel]:
    """The models ``user`` may see: their own and the system's (the scheduled training's); staff: all."""
    return ownership.visible_to(model_list(), user)


def model_get(*, model_id: str, user: ownership.User | None) -> MLModel:
    """The model with this id if ``user`` may see it; raises ``MLModel.DoesNotExist`` otherwise,
    exactly as for an id that does not exist."""
    return models_visible(user=user).get(model_id=model_id)


def champion_get(*, instrument: Instrument, timeframe: str, model_type: str) -> MLModel | None:
    return (
        model_list()
        .filter(instrument=instrument, timeframe=timeframe, model_type=model_type, stage=Stage.CHAMPION)
        .first()
    )


def promotion_decision_list() -> QuerySet[PromotionDecision]:
    return PromotionDecision.objects.select_related("candidate", "champion")


def training_run_list() -> QuerySet[TrainingRun]:
    return TrainingRun.objects.all()


def json_safe(value: Any) -> Any:
    """Metrics as JSON can store them: NaN and infinities (which PostgreSQL's jsonb refuses) become null."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


@functools.lru_cache(maxsize=64)
def _feature_set(spec: str) -> FeatureSet:
    return FeatureSet.from_dict(json.loads(spec))


def model_feature_set(model: MLModel) -> FeatureSet:
    """The feature set stored with the model, rebuilt once per process."""
    return _feature_set(json.dumps(model.feature_set, sort_keys=True))


def require_usable(model: MLModel) -> None:
    """Raise ``TrainingInputError`` on ``model_id`` unless the model has a trained artifact."""
    if model.is_usable:
        return
    if model.stage == Stage.FAILED:
        problem = f"{model.model_id} failed to train: {model.error or 'no reason recorded'}"
    else:
        problem = f"{model.model_id} is still {model.stage}: it has no trained model yet"
    raise TrainingInputError.on("model_id", problem)


@functools.lru_cache(maxsize=32)
def _stored_booster(name: str, sha256: str) -> xgb.Booster:
    try:
        with default_storage.open(name, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        raise ArtifactError(f"model file {name} cannot be read: {error}") from None
    try:
        return deserialize(raw, sha256=sha256)
    except ValueError as error:
        raise ArtifactError(f"model file {name}: {error}") from None


def model_booster(*, model: MLModel) -> xgb.Booster:
    """The model's booster, loaded from storage once per process after checking its sha256.

    Raises ``TrainingInputError`` for a model without an artifact and ``ArtifactError`` for a
    missing or altered file.
    """
    require_usable(model)
    return _stored_booster(model.artifact.name, model.artifact_sha256)


@dataclass(frozen=True)
class ModelEvaluation:
    """A stored model's metrics over bars it never saw, within the window that was asked for."""

    model: MLModel
    evaluation_period: float
    requested_start: datetime
    start: datetime
    end: datetime
    rows: int
    metrics: dict[str, float | None]


def bar_duration(timeframe: str) -> timedelta:
    return parse_timeframe(timeframe).duration.to_pytimedelta()


def model_evaluation(*, model: MLModel, evaluation_period_days: float) -> ModelEvaluation:
    """Metrics of ``model`` over the bars of the last ``evaluation_period_days`` days that it never saw.

    The window is the bars that closed in the last N days before the newest stored candle's close,
    cut to start after the model's ``seen_until``. With no such bar (or none whose outcome is known
    yet) this raises ``TrainingInputError`` on ``evaluation_period``, saying why.
    """
    booster = model_booster(model=model)
    feature_set = model_feature_set(model)
    bar = bar_duration(model.timeframe)
    newest = market.newest_candle_time(instrument=model.instrument, timeframe=model.timeframe)
    if newest is None:
        raise TrainingInputError.on("model_id", f"no {model.timeframe} candles of {model.symbol} are stored")
    requested = newest + bar - timedelta(days=evaluation_period_days)
    start = max(requested, model.seen_until + bar)
    frame = market.candles_frame(
        instrument=model.instrument, timeframe=model.timeframe, start=start - feature_set.warmup * bar
    )
    try:
        result = evaluate(
            booster,
            frame,
            model_type=model.model_type,
            horizon=model.horizon,
            feature_set=feature_set,
            start=pd.Timestamp(start),
            threshold=model.threshold,
        )
    except EvaluationError as error:
        raise TrainingInputError.on(
            "evaluation_period",
            f"no bars in the last {evaluation_period_days:g} days that {model.model_id} never saw "
            f"with a known outcome: it saw bars up to {model.seen_until.isoformat()} and the newest "
            f"stored candle opened at {newest.isoformat()} ({error})",
        ) from None
    return ModelEvaluation(
        model=model,
        evaluation_period=evaluation_period_days,
        requested_start=requested,
        start=result.window.start.to_pydatetime(),
        end=result.window.end.to_pydatetime(),
        rows=int(result.metrics.get("rows") or 0),
        metrics=json_safe(result.metrics),
    )


@dataclass(frozen=True)
class ModelPrediction:
    """The model's output at the close of the candle that opened at ``time``."""

    model: MLModel
    time: datetime
    value: float
    signal: bool | None  # the output passes the model's trading threshold (None: no threshold)


def model_prediction(*, model: MLModel) -> ModelPrediction:
    """The prediction for the newest stored candle (the market app stores closed candles only).

    Computed once per model and newest candle, from the ``warmup + 1`` newest candles, then
    cached for one bar: every strategy and client asking about the same bar shares it. The
    booster itself is cached per process.
    """
    booster = model_booster(model=model)
    newest = market.newest_candle_time(instrument=model.instrument, timeframe=model.timeframe)
    if newest is None:
        raise TrainingInputError.on("model_id", f"no {model.timeframe} candles of {model.symbol} are stored")
    key = f"training:prediction:{model.pk}:{model.artifact_sha256}:{newest.timestamp()}"
    cached = cache.get(key)
    if cached is None:
        cached = _predict_newest(model, booster, newest)
        cache.set(key, cached, int(bar_duration(model.timeframe).total_seconds()))
    time, value = cached
    signal = None if model.threshold is None else value >= model.threshold
    return ModelPrediction(model, time, value, signal)


def _predict_newest(model: MLModel, booster: xgb.Booster, newest: datetime) -> tuple[datetime, float]:
    feature_set = model_feature_set(model)
    needed = feature_set.warmup + 1
    # One range read when the newest bars are contiguous; a read by count when gaps thin them out.
    frame = market.candles_frame(
        instrument=model.instrument,
        timeframe=model.timeframe,
        start=newest - feature_set.warmup * bar_duration(model.timeframe),
    )
    if len(frame) < needed:
        frame = market.candles_frame(instrument=model.instrument, timeframe=model.timeframe, limit=needed)
    if len(frame) < needed:
        raise TrainingInputError.on(
            "model_id",
            f"predicting needs {needed} stored candles of {model.symbol} {model.timeframe}, "
            f"there are {len(frame)}",
        )
    prediction = predict_latest(booster, frame, feature_set)
    return prediction.time.to_pydatetime(), prediction.value


@dataclass(frozen=True)
class SeriesSettings:
    """How the walk-forward models of one series are built: as the champion was, else the defaults."""

    feature_set: FeatureSet
    hyperparameters: dict[str, Any]
    horizon: int
    lookback: int

    def digest(self) -> str:
        spec = {
            "feature_set": self.feature_set.to_dict(),
            "hyperparameters": self.hyperparameters,
            "horizon": self.horizon,
            "lookback": self.lookback,
            "step": settings.TRAINING_WALK_FORWARD_STEP,
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def series_settings(instrument: Instrument, timeframe: str, model_type: ModelType) -> SeriesSettings:
    champion = champion_get(instrument=instrument, timeframe=timeframe, model_type=model_type)
    if champion is None:
        return SeriesSettings(
            get_feature_set(settings.TRAINING_FEATURE_SET),
            {},
            settings.TRAINING_HORIZON,
            settings.TRAINING_LOOKBACK_BARS,
        )
    return SeriesSettings(
        model_feature_set(champion), champion.hyperparameters, champion.horizon, champion.lookback_period
    )


@dataclass(frozen=True)
class SeriesRequest:
    """What one walk-forward series over a frame is built from: the stored history in front of the
    frame, the settings, and the cache key they give."""

    name: str
    model_type: ModelType
    settings: SeriesSettings
    history: pd.DataFrame  # the earlier stored candles, then the frame
    earlier: int  # rows of history before the frame
    key: str


def ml_series_requests(*, instrument: Instrument, timeframe: str, frame: pd.DataFrame) -> list[SeriesRequest]:
    """For each of ``ML_PROBA`` and ``ML_RETURN`` over ``frame``: the history its walk-forward models
    are fitted on and the key its values are stored under (``apps.training.series`` computes them).

    ``frame`` is a candle frame of ``instrument`` and ``timeframe`` with a UTC ``DatetimeIndex``.
    The stored candles just before it (one lookback window plus the features' warm-up and the
    horizon) are put in front of it. The key holds the instrument, timeframe, model type, the
    newest bar's time and a digest of the bars and of the model settings (as the live champion was
    built, else the training defaults), so a new candle, a corrected bar or a new champion is a new
    key.
    """
    requests = []
    for name, model_type in SERIES_MODEL_TYPES.items():
        spec = series_settings(instrument, timeframe, model_type)
        earlier = (
            market.candles_frame(
                instrument=instrument,
                timeframe=timeframe,
                end=frame.index[0] - bar_duration(timeframe),
                limit=spec.feature_set.warmup + spec.lookback + spec.horizon,
            )
            if len(frame)
            else frame.iloc[:0]
        )
        history = pd.concat([earlier, frame[list(COLUMNS)].astype(np.float64)])
        key = _walk_forward_key(instrument, timeframe, model_type, history, spec)
        requests.append(SeriesRequest(name, model_type, spec, history, len(earlier), key))
    return requests


def ml_series_stored(
    *, instrument: Instrument, timeframe: str, frame: pd.DataFrame
) -> dict[str, np.ndarray] | None:
    """``ML_PROBA`` and ``ML_RETURN`` over ``frame`` as the training side stored them, or None while
    either is not computed yet (``apps.training.series.ml_series_compute`` computes them)."""
    if frame.empty:
        return {name: np.empty(0) for name in SERIES_MODEL_TYPES}
    found = {}
    for request in ml_series_requests(instrument=instrument, timeframe=timeframe, frame=frame):
        values = cache.get(request.key)
        if values is None:
            return None
        found[request.name] = values
    return found


def _walk_forward_key(
    instrument: Instrument,
    timeframe: str,
    model_type: ModelType,
    history: pd.DataFrame,
    spec: SeriesSettings,
) -> str:
    digest = hashlib.sha256(spec.digest().encode())
    digest.update(history.index.as_unit("ns").asi8.tobytes())
    digest.update(np.ascontiguousarray(history.to_numpy(dtype=np.float64)).tobytes())
    newest = history.index[-1].value if len(history) else 0
    return (
        f"training:walk_forward:{instrument.pk}:{timeframe}:{model_type.value}:{newest}:{digest.hexdigest()}"
    )


def champion_live_accuracy(*, days: float | None = None) -> list[dict[str, Any]]:
    """Each champion's accuracy on the bars after its ``seen_until`` whose outcome is known, within
    the last ``days`` days (``TRAINING_LIVE_ACCURACY_DAYS``): what the health document's
    ``performance_monitor`` reports.

    ``accuracy`` is the share of right up/down calls (directional accuracy for return models; None
    for volatility models, whose error is in ``metrics``). Cached until a new candle arrives.
    """
    days = days if days is not None else settings.TRAINING_LIVE_ACCURACY_DAYS
    return [_live_accuracy(champion, days) for champion in model_list().filter(stage=Stage.CHAMPION)]


def _live_accuracy(model: MLModel, days: float) -> dict[str, Any]:
    newest = market.newest_candle_time(instrument=model.instrument, timeframe=model.timeframe)
    newest_key = int(newest.timestamp()) if newest else "none"
    key = f"training:live_accuracy:{model.pk}:{model.artifact_sha256}:{newest_key}:{days}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    entry: dict[str, Any] = {
        "model_id": model.model_id,
        "symbol": model.symbol,
        "exchange": model.instrument.exchange,
        "timeframe": model.timeframe,
        "model_type": model.model_type,
        "seen_until": model.seen_until.isoformat() if model.seen_until else None,
    }
    try:
        evaluation = model_evaluation(model=model, evaluation_period_days=days)
    except (TrainingInputError, ArtifactError) as error:
        entry |= {"status": "no_outcomes", "rows": 0, "accuracy": None, "metrics": {}, "message": str(error)}
        if isinstance(error, ArtifactError):
            entry["status"] = "artifact_error"
        return entry
    metric = LIVE_ACCURACY_METRIC[ModelType(model.model_type)]
    entry |= {
        "status": "ok",
        "window_start": evaluation.start.isoformat(),
        "window_end": evaluation.end.isoformat(),
        "rows": evaluation.rows,
        "accuracy": evaluation.metrics.get(metric) if metric else None,
        "metrics": evaluation.metrics,
        "message": "",
    }
    cache.set(key, entry, 24 * 3600)
    return entry
