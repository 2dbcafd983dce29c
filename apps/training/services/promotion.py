"""Promotion and retirement: a candidate takes over its series only if it wins on a shared holdout."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from django.conf import settings
from django.db import IntegrityError, transaction

from apps.core import clock, ownership
from apps.market import selectors as market
from apps.market.models import Instrument
from apps.training import selectors
from apps.training.domain.degeneracy import no_skill
from apps.training.domain.labels import ModelType
from apps.training.domain.pipeline import EvaluationError, compare, default_skill_metric, evaluate
from apps.training.errors import TrainingInputError
from apps.training.models import MLModel, PromotionDecision, Stage
from apps.training.services.ml_signal import ml_signal_parameters_update
from apps.training.signals import champion_promoted


def promotion_rule(model_type: str) -> tuple[str, float]:
    """The metric and margin a candidate of this type must beat its champion by (settings)."""
    default = default_skill_metric(ModelType(model_type))
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


def model_promote_if_better(*, candidate: MLModel, actor: str | None = None) -> PromotionDecision:
    """Compare a candidate with its series' champion on the same holdout and promote it if it wins.

    The holdout is every stored bar after both models' ``seen_until`` (so neither saw it). The
    candidate must beat the champion's ``promotion_rule`` metric by more than the margin; with no
    champion it must show skill and beat buy-and-hold. A ``degenerate`` candidate is never promoted,
    and fewer than ``TRAINING_PROMOTION_MIN_HOLDOUT_BARS`` holdout rows is no evidence: no
    promotion. The decision, its numbers and its ``actor`` (who asked: a username, the scheduled
    training, a command; default ``system``) are stored either way.

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
    if candidate.degenerate:
        promote = False
        reason = (
            f"{candidate.model_id} is degenerate ({'; '.join(candidate.degenerate_reasons)}): a degenerate "
            f"model is never promoted. On the holdout: {holdout.problem or decision.reason}"
        )
    elif holdout.problem or holdout.rows < minimum:
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
        "actor": actor or ownership.actor_name(None),
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
    baseline = no_skill(ModelType(candidate.model_type), metric, metrics)
    if ModelType(candidate.model_type).is_classifier:
        beats = value is not None and baseline is not None and value > baseline + margin
    else:
        beats = value is not None and baseline is not None and value < baseline - margin
    if not beats:
        return (
            f"no champion yet, and the candidate's holdout {metric} {value} does not beat no skill "
            f"({baseline}) by the margin {margin:g}: a first champion must show skill"
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
