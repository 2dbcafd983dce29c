"""Training a model: the request checked against the stored data, the model registered, then trained."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError
from xgboost.core import XGBoostError

from apps.core import clock, ownership
from apps.core.jobs import job_claimed, job_complete, job_fail, job_progress
from apps.market import selectors as market
from apps.market.domain.candles import TIMEFRAMES
from apps.market.models import Instrument
from apps.training import selectors
from apps.training.domain.features import FeatureSet, get_feature_set
from apps.training.domain.fitting import Hyperparams
from apps.training.domain.labels import ModelType, parse_model_type
from apps.training.domain.pipeline import TrainResult, minimum_lookback, train
from apps.training.domain.splits import MIN_SPLIT_ROWS
from apps.training.errors import TrainingInputError
from apps.training.models import RUN_TRAINING, MLModel, Stage
from apps.training.services.promotion import promotion_metric
from apps.training.trial_ledger import ModelTrial, model_trial_ledger

logger = logging.getLogger(__name__)

MAX_HORIZON_BARS = 500

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class TrainingSpec:
    """A validated training request."""

    instrument: Instrument
    timeframe: str
    model_type: ModelType
    lookback_period: int
    horizon: int
    hyperparameters: dict[str, Any]
    feature_set: FeatureSet


def training_spec_build(
    *,
    symbol: str,
    timeframe: str,
    model_type: str,
    lookback_period: int,
    horizon: int | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    exchange: str | None = None,
) -> TrainingSpec:
    """Check a training request against the stored data; raise ``TrainingInputError`` naming every bad field.

    ``lookback_period`` must hold the train, validation and test splits at the horizon
    (:func:`lookback_minimum_problem`), and it plus the feature set's warm-up must be stored: a
    lookback longer than the stored history is refused rather than silently shortened.
    """
    problems: dict[str, str] = {}
    try:
        parsed_type = parse_model_type(model_type)
    except ValueError as error:
        problems["model_type"] = str(error)
    instrument = None
    try:
        instrument = market.instrument_resolve(symbol=symbol, exchange=exchange)
    except market.InstrumentNotFound as error:
        problems["symbol"] = str(error)
    if timeframe not in TIMEFRAMES:
        problems["timeframe"] = f"unknown timeframe {timeframe!r}; valid: {', '.join(TIMEFRAMES)}"
    horizon = settings.TRAINING_HORIZON if horizon is None else horizon
    if not 1 <= horizon <= MAX_HORIZON_BARS:
        problems["horizon"] = f"horizon must be 1 to {MAX_HORIZON_BARS} bars, got {horizon}"
    try:
        params = Hyperparams.from_dict(hyperparameters).to_dict()
    except (TypeError, ValueError) as error:
        problems["hyperparameters"] = str(error)
    feature_set = get_feature_set(settings.TRAINING_FEATURE_SET)
    short = None if "horizon" in problems else lookback_minimum_problem(lookback_period, horizon, feature_set)
    if short:
        problems["lookback_period"] = short
    elif instrument is not None and "timeframe" not in problems and "horizon" not in problems:
        stored = market.candle_count(instrument=instrument, timeframe=timeframe)
        usable = stored - feature_set.warmup
        if stored == 0:
            problems["timeframe"] = f"no {timeframe} candles of {instrument.symbol} are stored"
        elif lookback_period > usable:
            problems["lookback_period"] = (
                f"lookback_period {lookback_period} is longer than the stored history allows: "
                f"{instrument.symbol} {timeframe} has {stored} candles and the {feature_set.name} "
                f"v{feature_set.version} features need {feature_set.warmup} bars of warm-up, "
                f"so at most {max(usable, 0)}"
            )
    if problems:
        raise TrainingInputError(problems)
    return TrainingSpec(instrument, timeframe, parsed_type, lookback_period, horizon, params, feature_set)


def lookback_minimum_problem(lookback_period: int, horizon: int, feature_set: FeatureSet) -> str | None:
    """Why ``lookback_period`` is too short to train at ``horizon``, or None.

    The minimum is what training itself needs with its split settings (``pipeline.minimum_lookback``):
    train, validation and test splits of ``MIN_SPLIT_ROWS`` rows each, purge gaps of ``horizon``
    bars between them and the ``horizon`` newest bars, which have no outcome yet. The message also
    names the feature set's warm-up, read from bars before the lookback.
    """
    minimum = minimum_lookback(horizon)
    if lookback_period >= minimum:
        return None
    return (
        f"lookback_period must be at least {minimum} bars at horizon {horizon}, got {lookback_period}: "
        f"the train, validation and test splits need {MIN_SPLIT_ROWS} rows each, with {horizon}-bar "
        f"purge gaps between them, and the newest {horizon} bars have no outcome yet; the "
        f"{feature_set.name} v{feature_set.version} features read {feature_set.warmup} more bars of "
        f"warm-up before them ({minimum + feature_set.warmup} stored candles in all)"
    )


def _model_id(spec: TrainingSpec, moment: datetime) -> str:
    return f"{spec.model_type.value}_{spec.instrument.symbol}_{spec.timeframe}_{moment:%Y%m%d%H%M%S}"


def model_train_request(
    *, spec: TrainingSpec, owner: ownership.User | None = None, now: datetime | None = None
) -> MLModel:
    """Register a model in stage ``training`` with a PENDING training job, owned by ``owner`` (the
    requesting user; None: the system, the scheduled training or a command). Does not train it.

    The id is the brief's ``<type>_<SYMBOL>_<timeframe>_<YYYYmmddHHMMSS>``; when that second is
    taken for the same series and type, the next free second is used. Raises, creating nothing,
    ``ownership.PermissionRequired`` when the owner may not start training (the researchers group,
    staff) and ``ownership.TooManyJobs`` when the owner's cap is reached.
    """
    ownership.permission_check(user=owner, permission=RUN_TRAINING, work="starting model training")
    moment = (now or clock.now()).replace(microsecond=0)
    for _ in range(60):
        try:
            with ownership.job_slot(owner=owner):
                return MLModel.objects.create(
                    owner=owner,
                    model_id=_model_id(spec, moment),
                    instrument=spec.instrument,
                    symbol=spec.instrument.symbol,
                    timeframe=spec.timeframe,
                    model_type=spec.model_type.value,
                    horizon=spec.horizon,
                    feature_set=spec.feature_set.to_dict(),
                    hyperparameters=spec.hyperparameters,
                    lookback_period=spec.lookback_period,
                )
        except IntegrityError:
            moment += timedelta(seconds=1)
    raise RuntimeError(f"no free model id near {_model_id(spec, moment)}")


def _windows(result: TrainResult) -> dict[str, dict[str, Any]]:
    return {
        name: {"start": window.start.isoformat(), "end": window.end.isoformat(), "rows": window.rows}
        for name, window in result.windows.items()
    }


def model_train(*, model_pk: int, progress: Progress | None = None) -> MLModel | None:
    """Claim the model's training job, train it on its lookback of stored candles and save the artifact.

    On success the model becomes a ``candidate`` with its metrics, threshold, importances, windows
    and artifact (xgboost's UBJSON in the default storage, with its sha256), flagged ``degenerate``
    with the reasons when it is useless on its test split (``domain.degeneracy``): such a
    candidate is kept for inspection and never promoted. A model that takes positions is recorded
    as a trial of its model family (``trial_ledger``: once, however often the job runs) before it
    completes, and keeps the ``robustness`` of its holdout signal returns. Training that cannot
    succeed (too little data, a bad feature set) fails the job and the model. Returns None, doing
    nothing, when the job is not ours to run (already taken or finished: a redelivered message).
    ``progress(fraction, message)`` hears about each step.
    """
    with job_claimed(model=MLModel, pk=model_pk) as model:
        if model is None:
            return None

        def step(fraction: float, message: str) -> None:
            job_progress(job=model, progress=fraction)
            if progress is not None:
                progress(fraction, message)

        try:
            feature_set = FeatureSet.from_dict(model.feature_set)
            frame = market.candles_frame(
                instrument=model.instrument,
                timeframe=model.timeframe,
                limit=model.lookback_period + feature_set.warmup,
            )
            if frame.empty:
                raise ValueError(f"no {model.timeframe} candles of {model.symbol} are stored")
            step(0.1, f"loaded {len(frame)} candles, {frame.index[0]} .. {frame.index[-1]}")
            result = train(
                frame,
                model.model_type,
                model.horizon,
                feature_set,
                model.hyperparameters,
                model.lookback_period,
                nthread=settings.TRAINING_NTHREAD,
                skill_metric=promotion_metric(model.model_type),
            )
            step(0.9, f"fitted {result.best_iteration + 1} trees; saving the model")
            name = model.artifact.storage.save(
                f"ml_models/{model.symbol}/{model.model_id}.ubj", ContentFile(result.model_bytes)
            )
        except (ValueError, XGBoostError) as error:  # a FeatureError or SplitError is a ValueError
            return model_fail(model=model, error=f"{type(error).__name__}: {error}")
        # Recorded before the job completes: a worker lost in between leaves a trial counted (its
        # retry adds nothing under the same key), never a completed model that was not counted.
        robustness = (
            {}
            if result.holdout_returns is None
            else model_trial_ledger().record(ModelTrial.of(model, result.holdout_returns))
        )
        return job_complete(
            job=model,
            stage=Stage.CANDIDATE,
            artifact=name,
            artifact_sha256=result.sha256,
            metrics=selectors.json_safe(result.metrics),
            threshold=result.threshold,
            feature_importances=selectors.json_safe(result.feature_importances),
            best_iteration=result.best_iteration,
            windows=_windows(result),
            train_start=result.windows["train"].start.to_pydatetime(),
            train_end=result.windows["test"].end.to_pydatetime(),
            seen_until=result.seen_until.to_pydatetime(),
            degenerate=bool(result.degenerate_reasons),
            degenerate_reasons=list(result.degenerate_reasons),
            robustness=selectors.json_safe(robustness),
        )


def model_fail(*, model: MLModel, error: str) -> MLModel:
    """Fail a claimed training job and its model (its ``failed_fields``), recording why."""
    logger.warning("Training %s failed: %s", model.model_id, error)
    return job_fail(job=model, error=error)
