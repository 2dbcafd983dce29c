"""Writes of the training app: training requests and jobs, promotion, retirement and the 6-hourly run."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from xgboost.core import XGBoostError

from apps.core import clock
from apps.core.jobs import job_claimed, job_complete, job_fail, job_progress
from apps.market import selectors as market
from apps.market import services as market_services
from apps.market.domain.candles import TIMEFRAMES
from apps.market.models import Instrument
from apps.market.providers.base import ProviderError
from apps.training import selectors
from apps.training.domain.features import FeatureSet, get_feature_set
from apps.training.domain.fitting import Hyperparams
from apps.training.domain.labels import ModelType, parse_model_type
from apps.training.domain.pipeline import EvaluationError, TrainResult, compare, evaluate, train
from apps.training.errors import ArtifactError, TrainingInputError
from apps.training.models import MLModel, PromotionDecision, Stage, TrainingRun
from apps.training.signals import champion_promoted

logger = logging.getLogger(__name__)

# Fewer bars cannot give each of the train, validation and test splits a meaningful size.
MIN_LOOKBACK_BARS = 500
MAX_HORIZON_BARS = 500
RUN_SLOT_HOURS = 6

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

    ``lookback_period`` bars plus the feature set's warm-up must be stored: a lookback longer than
    the stored history is refused rather than silently shortened.
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
    if lookback_period < MIN_LOOKBACK_BARS:
        problems["lookback_period"] = f"lookback_period must be at least {MIN_LOOKBACK_BARS} bars"
    elif instrument is not None and "timeframe" not in problems:
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


def _model_id(spec: TrainingSpec, moment: datetime) -> str:
    return f"{spec.model_type.value}_{spec.instrument.symbol}_{spec.timeframe}_{moment:%Y%m%d%H%M%S}"


def model_train_request(*, spec: TrainingSpec, now: datetime | None = None) -> MLModel:
    """Register a model in stage ``training`` with a PENDING training job. Does not train it.

    The id is the brief's ``<type>_<SYMBOL>_<timeframe>_<YYYYmmddHHMMSS>``; when that second is
    taken for the same series and type, the next free second is used.
    """
    moment = (now or clock.now()).replace(microsecond=0)
    for _ in range(60):
        try:
            with transaction.atomic():
                return MLModel.objects.create(
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
    and artifact (xgboost's UBJSON in the default storage, with its sha256). Training that cannot
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
            )
            step(0.9, f"fitted {result.best_iteration + 1} trees; saving the model")
            name = model.artifact.storage.save(
                f"ml_models/{model.symbol}/{model.model_id}.ubj", ContentFile(result.model_bytes)
            )
        except (ValueError, XGBoostError) as error:  # a FeatureError or SplitError is a ValueError
            return model_fail(model=model, error=f"{type(error).__name__}: {error}")
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
        )


def model_fail(*, model: MLModel, error: str) -> MLModel:
    """Fail a claimed training job and its model (its ``failed_fields``), recording why."""
    logger.warning("Training %s failed: %s", model.model_id, error)
    return job_fail(job=model, error=error)


def promotion_rule(model_type: str) -> tuple[str, float]:
    """The metric and margin a candidate of this type must beat its champion by (settings)."""
    default = "roc_auc" if ModelType(model_type).is_classifier else "rmse"
    metric = settings.TRAINING_PROMOTION_METRIC.get(model_type) or default
    return metric, float(settings.TRAINING_PROMOTION_MARGIN.get(model_type, 0.0))


@dataclass(frozen=True)
class _Holdout:
    """Both models' metrics on the bars neither saw (the champion's None when there is none)."""

    start: datetime
    end: datetime | None
    rows: int
    candidate: dict[str, float | None]
    champion: dict[str, float | None] | None
    problem: str = ""


def _shared_holdout(candidate: MLModel, champion: MLModel | None) -> _Holdout:
    models = [candidate] if champion is None else [candidate, champion]
    bar = selectors.bar_duration(candidate.timeframe)
    start = max(m.seen_until for m in models) + bar
    warmup = max(selectors.model_feature_set(m).warmup for m in models)
    frame = market.candles_frame(
        instrument=candidate.instrument, timeframe=candidate.timeframe, start=start - warmup * bar
    )
    try:
        results = [
            evaluate(
                selectors.model_booster(model=m),
                frame,
                model_type=m.model_type,
                horizon=m.horizon,
                feature_set=selectors.model_feature_set(m),
                start=pd.Timestamp(start),
                threshold=m.threshold,
            )
            for m in models
        ]
    except EvaluationError as error:
        return _Holdout(start, None, 0, {}, None, f"no shared holdout after {start.isoformat()}: {error}")
    metrics = [selectors.json_safe(result.metrics) for result in results]
    return _Holdout(
        start=start,
        end=results[0].window.end.to_pydatetime(),
        rows=int(metrics[0].get("rows") or 0),
        candidate=metrics[0],
        champion=metrics[1] if champion is not None else None,
    )


def model_promote_if_better(*, candidate: MLModel) -> PromotionDecision:
    """Compare a candidate with its series' champion on the same holdout and promote it if it wins.

    The holdout is every stored bar after both models' ``seen_until`` (so neither saw it). The
    candidate must beat the champion's ``promotion_rule`` metric by more than the margin; with no
    champion it only needs a holdout. Fewer than ``TRAINING_PROMOTION_MIN_HOLDOUT_BARS`` holdout
    rows is no evidence: no promotion. The decision and its numbers are stored either way.

    The switch happens in one transaction with the candidate and champion rows locked; if another
    model became champion meanwhile, or the candidate changed stage, nothing is promoted (and the
    one-champion constraint catches the race the locks cannot see: two first champions at once).
    On promotion the old champion is retired and ``champion_promoted`` is sent after commit.
    """
    if candidate.stage != Stage.CANDIDATE:
        raise TrainingInputError.on("model_id", f"{candidate.model_id} is {candidate.stage}, not a candidate")
    champion = selectors.champion_get(
        instrument=candidate.instrument, timeframe=candidate.timeframe, model_type=candidate.model_type
    )
    metric, margin = promotion_rule(candidate.model_type)
    holdout = _shared_holdout(candidate, champion)
    decision = compare(holdout.candidate, holdout.champion, metric, margin)
    promote, reason = decision.promote, decision.reason
    minimum = settings.TRAINING_PROMOTION_MIN_HOLDOUT_BARS
    if holdout.problem or holdout.rows < minimum:
        promote = False
        reason = holdout.problem or (
            f"the shared holdout after {holdout.start.isoformat()} has {holdout.rows} bars with a known "
            f"outcome; at least {minimum} are needed to decide (TRAINING_PROMOTION_MIN_HOLDOUT_BARS)"
        )
    elif promote and (stale := _stale_data(candidate)):
        promote, reason = False, stale
    elif (
        promote
        and champion is None
        and (short := _short_of_baseline(candidate, holdout.candidate, metric, margin))
    ):
        promote, reason = False, short
    record = {
        "candidate": candidate,
        "champion": champion,
        "metric": metric,
        "margin": margin,
        "candidate_value": decision.candidate_value,
        "champion_value": decision.champion_value,
        "holdout_start": holdout.start,
        "holdout_end": holdout.end,
        "holdout_rows": holdout.rows,
    }
    try:
        return _promotion_apply(candidate, champion, promote, reason, record)
    except IntegrityError:
        reason = "another model of this series became champion at the same moment; this one stays a candidate"
        return PromotionDecision.objects.create(**record, promoted=False, reason=reason)


def _stale_data(candidate: MLModel) -> str | None:
    """Why the candidate's data is too old to put it in charge, or None: a champion trades the live
    market, so its training data must reach close to now (TRAINING_PROMOTION_MAX_DATA_AGE_BARS)."""
    newest = market.newest_candle_time(instrument=candidate.instrument, timeframe=candidate.timeframe)
    limit = settings.TRAINING_PROMOTION_MAX_DATA_AGE_BARS
    duration = selectors.bar_duration(candidate.timeframe)
    if newest is None or clock.now() - (newest + duration) > limit * duration:
        last = "none" if newest is None else f"{newest + duration:%Y-%m-%d %H:%M} UTC"
        return (
            f"its data is stale: the newest {candidate.timeframe} candle closed {last}, more than {limit} "
            "bars ago (TRAINING_PROMOTION_MAX_DATA_AGE_BARS); a champion must know the current market"
        )
    return None


def _short_of_baseline(
    candidate: MLModel, metrics: Mapping[str, float | None] | None, metric: str, margin: float
) -> str | None:
    """Why a first champion is refused, or None: with no champion to beat, the candidate must beat
    no skill on its holdout (an AUC of 0.5, the naive error of predicting no change) and, where it
    trades, buy-and-hold."""
    metrics = metrics or {}
    value = metrics.get(metric)
    if ModelType(candidate.model_type).is_classifier:
        no_skill = 0.5 if metric == "roc_auc" else metrics.get(f"baseline_{metric}")
        beats = value is not None and no_skill is not None and value > no_skill + margin
    else:
        no_skill = metrics.get(f"baseline_{metric}")
        beats = value is not None and no_skill is not None and value < no_skill - margin
    if not beats:
        return (
            f"no champion yet, and the candidate's holdout {metric} {value} does not beat no skill "
            f"({no_skill}) by the margin {margin:g}: a first champion must show skill"
        )
    strategy, hold = metrics.get("trading_total_return"), metrics.get("buy_hold_total_return")
    if strategy is not None and hold is not None and strategy <= hold:
        return (
            f"no champion yet, and trading on the candidate's holdout signals returns {strategy:+.2%} "
            f"against buy-and-hold's {hold:+.2%}: a first champion must beat holding"
        )
    return None


def _promotion_apply(
    candidate: MLModel, champion: MLModel | None, promote: bool, reason: str, record: dict[str, Any]
) -> PromotionDecision:
    with transaction.atomic():
        locked = MLModel.objects.select_for_update().get(pk=candidate.pk)
        current = (
            MLModel.objects.select_for_update()
            .filter(
                instrument_id=candidate.instrument_id,
                timeframe=candidate.timeframe,
                model_type=candidate.model_type,
                stage=Stage.CHAMPION,
            )
            .first()
        )
        if promote and locked.stage != Stage.CANDIDATE:
            promote, reason = False, f"{reason}; but it is {locked.stage} now, no longer a candidate"
        elif promote and (current and current.pk) != (champion and champion.pk):
            now_champion = current.model_id if current else "none"
            promote = False
            reason = (
                f"{reason}; but the champion changed while it was evaluated (now {now_champion}): "
                "it stays a candidate"
            )
        if promote:
            now = clock.now()
            if current is not None:
                MLModel.objects.filter(pk=current.pk).update(stage=Stage.RETIRED)
            MLModel.objects.filter(pk=locked.pk).update(stage=Stage.CHAMPION, promoted_at=now)
            promoted_pk, retired_pk = locked.pk, current.pk if current else None
            transaction.on_commit(lambda: _announce_promotion(promoted_pk, retired_pk))
        decision = PromotionDecision.objects.create(**record, promoted=promote, reason=reason)
    candidate.refresh_from_db()
    return decision


def _announce_promotion(champion_pk: int, retired_pk: int | None) -> None:
    champion = MLModel.objects.select_related("instrument").get(pk=champion_pk)
    retired = MLModel.objects.filter(pk=retired_pk).first() if retired_pk else None
    champion_promoted.send(
        sender=MLModel,
        champion=champion,
        retired=retired,
        update=ml_signal_parameters_update(champion=champion),
    )


def model_retire(*, model: MLModel) -> MLModel:
    """Take a candidate or champion out of service; its series then has no champion until one is promoted."""
    if model.stage not in (Stage.CANDIDATE, Stage.CHAMPION):
        raise TrainingInputError.on(
            "model_id", f"{model.model_id} is {model.stage}: only candidates and champions retire"
        )
    MLModel.objects.filter(pk=model.pk, stage__in=(Stage.CANDIDATE, Stage.CHAMPION)).update(
        stage=Stage.RETIRED
    )
    model.refresh_from_db()
    return model


def instrument_models_delete(*, instrument: Instrument) -> int:
    """Delete every model of ``instrument`` with its artifact file and promotion decisions; returns
    how many. Only for an instrument whose models are all disposable: a replay's, on reset."""
    models = list(MLModel.objects.filter(instrument=instrument))
    for model in models:
        if model.artifact:
            model.artifact.delete(save=False)
    MLModel.objects.filter(pk__in=[model.pk for model in models]).delete()
    return len(models)


@dataclass(frozen=True)
class MLSignalUpdate:
    """The parameter changes an ``ml_signal`` strategy on this series should take from its new champion.

    ``parameters`` holds ``ml_proba_threshold`` (price models: the probability to act on) or
    ``ml_return_threshold`` (return models: the predicted log return), each the threshold the
    champion chose on its validation fold; it is empty for volatility models, which have none.
    """

    instrument_id: int
    symbol: str
    exchange: str
    timeframe: str
    model_type: str
    model_id: str
    parameters: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


THRESHOLD_PARAMETERS = {
    ModelType.PRICE_PREDICTION: "ml_proba_threshold",
    ModelType.RETURN_PREDICTION: "ml_return_threshold",
}


def ml_signal_parameters_update(*, champion: MLModel) -> MLSignalUpdate:
    """What ``ml_signal`` strategies on the champion's instrument and timeframe should change.

    The strategies app applies it (on ``champion_promoted``, or when it reads a champion): the
    training app never imports the strategies app. Writes nothing.
    """
    name = THRESHOLD_PARAMETERS.get(ModelType(champion.model_type))
    parameters = {name: champion.threshold} if name and champion.threshold is not None else {}
    return MLSignalUpdate(
        instrument_id=champion.instrument_id,
        symbol=champion.symbol,
        exchange=champion.instrument.exchange,
        timeframe=champion.timeframe,
        model_type=champion.model_type,
        model_id=champion.model_id,
        parameters=parameters,
    )


def run_slot(now: datetime | None = None) -> datetime:
    """The start of the 6-hour slot (00, 06, 12, 18 UTC) that ``now`` falls in."""
    now = (now or clock.now()).astimezone(UTC)
    return now.replace(hour=now.hour - now.hour % RUN_SLOT_HOURS, minute=0, second=0, microsecond=0)


def _run_row(slot: datetime) -> TrainingRun:
    try:
        with transaction.atomic():
            return TrainingRun.objects.get_or_create(slot=slot)[0]
    except IntegrityError:  # created by a concurrent run between our read and insert
        return TrainingRun.objects.get(slot=slot)


def _series(instrument: Instrument) -> list[str]:
    """The training timeframes this instrument is kept up to date in, or has candles for."""
    kept = set(instrument.timeframes) | set(market.candle_timeframes(instrument=instrument))
    return [timeframe for timeframe in settings.TRAINING_TIMEFRAMES if timeframe in kept]


def training_run_for_slot(*, now: datetime | None = None, fetch: bool = True) -> TrainingRun | None:
    """The 6-hourly job: the slot's run row, created if missing, run now (see :func:`training_run`).

    One run per slot: a second call for the same slot returns None and changes nothing.
    """
    return training_run(run_id=_run_row(run_slot(now)).pk, fetch=fetch)


def training_run(*, run_id: int, fetch: bool = True) -> TrainingRun | None:
    """For each active instrument and training timeframe, fetch new candles, train a candidate of
    each ``TRAINING_MODEL_TYPES``, and promote it if it beats the champion.

    Claims the run first: None, changing nothing, when it is taken or finished. A failed fetch
    (offline, exchange down) is recorded and the stored candles are trained on anyway; a failed
    training is recorded and the run moves on. The run's ``report`` says what was trained,
    decided and why, with the ml_signal parameter changes of each new champion.
    """
    with job_claimed(model=TrainingRun, pk=run_id) as run:
        if run is None:
            return None
        pairs = [(i, tf) for i in market.instrument_list(active=True) for tf in _series(i)]
        entries = []
        for done, (instrument, timeframe) in enumerate(pairs):
            entries.append(training_series_run(instrument=instrument, timeframe=timeframe, fetch=fetch))
            job_progress(job=run, progress=(done + 1) / len(pairs))
        summary = {
            "series": len(entries),
            "models_trained": sum(
                1 for e in entries for m in e["models"] if m["stage"] in (Stage.CANDIDATE, Stage.CHAMPION)
            ),
            "promoted": sum(1 for e in entries for m in e["models"] if m["promoted"]),
            "fetch_failures": sum(1 for e in entries if e["fetch"]["status"] == "failed"),
        }
        return job_complete(job=run, report={"summary": summary, "series": entries})


def training_series_run(*, instrument: Instrument, timeframe: str, fetch: bool = True) -> dict[str, Any]:
    """One series' part of a training run, here and now: fetch (unless ``fetch`` is False), train a
    candidate of each ``TRAINING_MODEL_TYPES`` and promote it if it beats the champion. Returns the
    series' entry of the run's report (each model's stage, promotion decision and reason). A replay
    calls it for its own series alone: a run covers every active instrument."""
    entry: dict[str, Any] = {
        "symbol": instrument.symbol,
        "exchange": instrument.exchange,
        "timeframe": timeframe,
    }
    entry["fetch"] = _fetch(instrument, timeframe) if fetch else {"status": "skipped", "message": ""}
    entry["models"] = [
        _run_model(instrument, timeframe, model_type) for model_type in settings.TRAINING_MODEL_TYPES
    ]
    return entry


def _fetch(instrument: Instrument, timeframe: str) -> dict[str, str]:
    try:
        report = market_services.candles_fetch_latest(instrument=instrument, timeframe=timeframe)
    except ProviderError as error:
        return {"status": "failed", "message": f"{type(error).__name__}: {error}"[:500]}
    return {"status": "ok", "message": report.describe()}


def _run_model(instrument: Instrument, timeframe: str, model_type: str) -> dict[str, Any]:
    outcome: dict[str, Any] = {"model_type": model_type, "model_id": None, "stage": None, "promoted": False}
    stored = market.candle_count(instrument=instrument, timeframe=timeframe)
    lookback = min(
        settings.TRAINING_LOOKBACK_BARS, stored - get_feature_set(settings.TRAINING_FEATURE_SET).warmup
    )
    try:
        spec = training_spec_build(
            symbol=instrument.symbol,
            exchange=instrument.exchange,
            timeframe=timeframe,
            model_type=model_type,
            lookback_period=lookback,
        )
    except TrainingInputError as error:
        return outcome | {"reason": f"not trained: {error}"}
    model = model_train_request(spec=spec)
    trained = model_train(model_pk=model.pk) or model
    outcome |= {"model_id": trained.model_id, "stage": trained.stage}
    if trained.stage != Stage.CANDIDATE:
        return outcome | {"reason": f"training did not finish: {trained.error or trained.stage}"}
    try:
        decision = model_promote_if_better(candidate=trained)
    except ArtifactError as error:
        return outcome | {"reason": f"not promoted: {error}"}
    trained.refresh_from_db()
    outcome |= {
        "stage": trained.stage,
        "promoted": decision.promoted,
        "decision": {
            "metric": decision.metric,
            "margin": decision.margin,
            "candidate_value": decision.candidate_value,
            "champion_value": decision.champion_value,
            "champion": decision.champion.model_id if decision.champion else None,
            "holdout_rows": decision.holdout_rows,
        },
        "reason": decision.reason,
    }
    if decision.promoted:
        outcome["ml_signal_update"] = ml_signal_parameters_update(champion=trained).to_dict()
    return outcome
