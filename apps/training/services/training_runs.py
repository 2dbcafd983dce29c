"""The 6-hourly training run: for every active series, fetch new candles, train candidates, promote."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.core import clock
from apps.core.jobs import job_claimed, job_complete, job_progress
from apps.market import selectors as market
from apps.market.models import Instrument
from apps.market.providers.base import ProviderError
from apps.market.services.candle_fetch import candles_fetch_latest
from apps.training.domain.features import get_feature_set
from apps.training.errors import ArtifactError, TrainingInputError
from apps.training.models import Stage, TrainingRun
from apps.training.services.ml_signal import ml_signal_parameters_update
from apps.training.services.model_training import model_train, model_train_request, training_spec_build
from apps.training.services.promotion import model_promote_if_better

RUN_SLOT_HOURS = 6
# The actor the run's promotion decisions name (a replay plays the same run).
SCHEDULED_TRAINING = "scheduled training"


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
    (offline, exchange down) is recorded and the stored candles are trained on anyway; a series
    too short to train on (the API's lookback refusal, naming the minimum) is skipped with that
    reason; a failed training is recorded and the run moves on; a degenerate model stays a
    candidate with its reasons. The run's ``report`` says what was trained,
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
            "not_trained": sum(1 for e in entries for m in e["models"] if m["model_id"] is None),
            "degenerate": sum(1 for e in entries for m in e["models"] if m.get("degenerate_reasons")),
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
        report = candles_fetch_latest(instrument=instrument, timeframe=timeframe)
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
        history = f"{instrument.symbol} {timeframe} has {stored} candles"
        return outcome | {"reason": f"not trained ({history}): {error}"}
    model = model_train_request(spec=spec)
    trained = model_train(model_pk=model.pk) or model
    outcome |= {"model_id": trained.model_id, "stage": trained.stage}
    if trained.stage != Stage.CANDIDATE:
        return outcome | {"reason": f"training did not finish: {trained.error or trained.stage}"}
    if trained.degenerate:
        outcome["degenerate_reasons"] = trained.degenerate_reasons
    try:
        decision = model_promote_if_better(candidate=trained, actor=SCHEDULED_TRAINING)
    except ArtifactError as error:
        return outcome | {"reason": f"not promoted: {error}"}
    trained.refresh_from_db()
    outcome |= {
        "stage": trained.stage,
        "promoted": decision.promoted,
        "decision": {
            "metric": decision.metric,
            "candidate_value": decision.candidate_value,
            "champion_value": decision.champion_value,
            "champion": decision.champion.model_id if decision.champion else None,
            "holdout_rows": decision.holdout_rows,
            "p_value": decision.p_value,
            "mean_difference": decision.mean_difference,
            "deflated_sharpe": decision.deflated_sharpe,
        },
        "reason": decision.reason,
    }
    if decision.promoted:
        outcome["ml_signal_update"] = ml_signal_parameters_update(champion=trained).to_dict()
    return outcome
