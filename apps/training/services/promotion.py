"""Promotion and retirement: a candidate takes over its series only when it is significantly better than
the champion on a holdout neither saw, and its edge survives the number of models its family trained."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
from apps.training.domain.paired_test import PairedTest, diebold_mariano
from apps.training.domain.pipeline import Evaluation, EvaluationError, default_skill_metric, evaluate
from apps.training.domain.signal_returns import takes_positions
from apps.training.errors import TrainingInputError
from apps.training.models import MLModel, PromotionDecision, Stage
from apps.training.services.ml_signal import ml_signal_parameters_update
from apps.training.signals import champion_promoted
from apps.training.trial_ledger import ModelTrial, model_trial_ledger


def promotion_metric(model_type: str) -> str:
    """The skill score models of this type are judged on (``TRAINING_PROMOTION_METRIC``): a model no
    better than no skill on it is degenerate, and a first champion must beat no skill on it."""
    default = default_skill_metric(ModelType(model_type))
    return str(settings.TRAINING_PROMOTION_METRIC.get(model_type) or default)


@dataclass(frozen=True)
class _Holdout:
    """Both models evaluated on the bars neither saw (the champion's None when there is none)."""

    start: datetime
    end: datetime | None
    rows: int
    candidate: Evaluation | None
    champion: Evaluation | None
    problem: str = ""

    def metrics(self, evaluation: Evaluation | None) -> dict[str, float | None]:
        return selectors.json_safe(evaluation.metrics) if evaluation is not None else {}


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
        return _Holdout(start, None, 0, None, None, f"no shared holdout after {start.isoformat()}: {error}")
    return _Holdout(
        start=start,
        end=results[0].window.end.to_pydatetime(),
        rows=int(results[0].metrics.get("rows") or 0),
        candidate=results[0],
        champion=results[1] if champion is not None else None,
    )


@dataclass(frozen=True)
class _Evidence:
    """The numbers a promotion rests on, what they refuse and what they allow."""

    compared: str
    paired: PairedTest | None = None
    sharpe: Mapping[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    passes: list[str] = field(default_factory=list)

    def numbers(self) -> dict[str, Any]:
        """The evidence as the decision stores it, with the thresholds it was held to."""
        floor = settings.STRATEGY_MIN_DEFLATED_SHARPE if self.sharpe is not None else None
        return selectors.json_safe(
            {
                "compared": self.compared,
                "paired_test": None if self.paired is None else self.paired.to_dict(),
                "candidate_sharpe": None if self.sharpe is None else dict(self.sharpe),
                "max_p_value": settings.TRAINING_PROMOTION_MAX_P_VALUE,
                "min_deflated_sharpe": floor,
            }
        )

    def summary(self) -> str:
        return "; ".join(self.problems + self.passes) or "no paired test or Sharpe ratio applies"


def _paired_scores(candidate: Evaluation, champion: Evaluation, direction: bool) -> pd.DataFrame:
    """Both models' per-bar scores on the bars both have, higher is better: signal returns, or the
    negated squared errors of a volatility forecast."""
    pair = [e.signal_returns if direction else e.squared_errors for e in (candidate, champion)]
    scores = pd.concat(pair, axis=1, join="inner", keys=["candidate", "champion"]).dropna()
    return scores if direction else -scores


def _evidence(
    candidate: MLModel, champion: MLModel | None, scored: Evaluation, defended: Evaluation | None
) -> _Evidence:
    """The paired test of ``scored`` (the candidate on the holdout) against ``defended`` (the champion
    on the same bars, when there is one) and, for models that take positions, the deflated Sharpe
    ratio of the candidate's signal returns there."""
    direction = takes_positions(candidate.model_type)
    compared = "signal returns" if direction else "squared errors"
    problems: list[str] = []
    passes: list[str] = []
    paired = None
    if champion is not None and defended is not None:
        scores = _paired_scores(scored, defended, direction)
        horizon = max(candidate.horizon, champion.horizon)
        paired = diebold_mariano(
            scores["candidate"].to_numpy(), scores["champion"].to_numpy(), horizon=horizon
        )
        ceiling = settings.TRAINING_PROMOTION_MAX_P_VALUE
        said = (
            f"on {paired.observations} shared holdout bars the candidate's {compared} differ from the "
            f"champion's by {paired.mean_difference:+.3g} a bar in its favour, p = {paired.p_value:.3g} "
            f"(one-sided Diebold-Mariano test, HAC variance with {paired.lags} lags)"
        )
        if paired.p_value <= ceiling:
            passes.append(f"{said}, at most {ceiling:g}: significantly better")
        else:
            problems.append(
                f"{said}: not significantly better, at most {ceiling:g} is needed "
                "(TRAINING_PROMOTION_MAX_P_VALUE)"
            )
    sharpe = None
    if direction and scored.signal_returns is not None:
        sharpe = model_trial_ledger().deflate(ModelTrial.of(candidate, scored.signal_returns.to_numpy()))
        floor, dsr = settings.STRATEGY_MIN_DEFLATED_SHARPE, sharpe.get("deflated_sharpe")
        said = (
            "the deflated Sharpe ratio of its holdout signal returns is "
            f"{'undefined (no varying returns)' if dsr is None else f'{dsr:.3f}'} (per-bar Sharpe "
            f"{_figure(sharpe.get('sharpe_per_bar'))} over {sharpe.get('observations')} bars, "
            f"{sharpe.get('trials')} trials in its model family)"
        )
        if dsr is not None and dsr >= floor:
            passes.append(f"{said}, at least {floor:g}")
        else:
            problems.append(f"{said}: at least {floor:g} is needed (STRATEGY_MIN_DEFLATED_SHARPE)")
    return _Evidence(compared, paired, sharpe, problems, passes)


def _figure(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) else "undefined"


def model_promote_if_better(*, candidate: MLModel, actor: str | None = None) -> PromotionDecision:
    """Compare a candidate with its series' champion on the same holdout and promote it if it is
    significantly better.

    The holdout is every stored bar after both models' ``seen_until`` (so neither saw it); both are
    evaluated on exactly those bars. The candidate must beat the champion in a one-sided paired test
    of their per-bar scores (``domain.paired_test``: signal returns, or a volatility model's squared
    errors) with a p-value of at most ``TRAINING_PROMOTION_MAX_P_VALUE``, and a model that takes
    positions must reach a deflated Sharpe ratio of its holdout signal returns, deflated by every
    model its family trained, of at least ``STRATEGY_MIN_DEFLATED_SHARPE``. With no champion, the
    candidate must pass the deflated Sharpe ratio, beat no skill on its ``promotion_metric`` and, where
    it trades, beat buy-and-hold. A ``degenerate`` candidate is never promoted; fewer than
    ``TRAINING_PROMOTION_MIN_HOLDOUT_BARS`` holdout rows is no evidence; a stale series promotes
    nothing. The decision, its numbers (``evidence``, with the thresholds) and its ``actor`` (who
    asked: a username, the scheduled training, a command; default ``system``) are stored either way.

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
    metric = promotion_metric(candidate.model_type)
    holdout = _shared_holdout(candidate, champion)
    evidence = (
        _evidence(candidate, champion, holdout.candidate, holdout.champion)
        if holdout.candidate is not None
        else _Evidence(compared="")
    )
    metrics = holdout.metrics(holdout.candidate)
    minimum = settings.TRAINING_PROMOTION_MIN_HOLDOUT_BARS
    promote, reason = False, ""
    if candidate.degenerate:
        reason = (
            f"{candidate.model_id} is degenerate ({'; '.join(candidate.degenerate_reasons)}): a degenerate "
            f"model is never promoted. On the holdout: {holdout.problem or evidence.summary()}"
        )
    elif holdout.problem or holdout.rows < minimum:
        reason = holdout.problem or (
            f"the shared holdout after {holdout.start.isoformat()} has {holdout.rows} bars with a known "
            f"outcome; at least {minimum} are needed to decide (TRAINING_PROMOTION_MIN_HOLDOUT_BARS)"
        )
    elif evidence.problems:
        reason = ("no champion yet, and " if champion is None else "") + "; ".join(evidence.problems)
    elif stale := _stale_data(candidate):
        reason = stale
    elif champion is None and (short := _short_of_baseline(candidate, metrics, metric)):
        reason = short
    else:
        promote = True
        said = evidence.passes or [f"its holdout {metric} {metrics.get(metric)} beats no skill"]
        reason = ("no champion yet; " if champion is None else "") + "; ".join(said)
    paired, sharpe = evidence.paired, evidence.sharpe or {}
    record = {
        "candidate": candidate,
        "champion": champion,
        "metric": metric,
        "candidate_value": metrics.get(metric),
        "champion_value": holdout.metrics(holdout.champion).get(metric) if champion is not None else None,
        "holdout_start": holdout.start,
        "holdout_end": holdout.end,
        "holdout_rows": holdout.rows,
        "p_value": None if paired is None else paired.p_value,
        "mean_difference": None if paired is None else paired.mean_difference,
        "deflated_sharpe": sharpe.get("deflated_sharpe"),
        "evidence": evidence.numbers() if evidence.compared else {},
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


def _short_of_baseline(candidate: MLModel, metrics: Mapping[str, float | None], metric: str) -> str | None:
    """Why a first champion is refused, or None: with no champion to beat, the candidate must beat
    no skill on its holdout (an AUC of 0.5, the naive error of predicting no change) and, where it
    trades, buy-and-hold."""
    value = metrics.get(metric)
    baseline = no_skill(ModelType(candidate.model_type), metric, metrics)
    if ModelType(candidate.model_type).is_classifier:
        beats = value is not None and baseline is not None and value > baseline
    else:
        beats = value is not None and baseline is not None and value < baseline
    if not beats:
        return (
            f"no champion yet, and the candidate's holdout {metric} {value} does not beat no skill "
            f"({baseline}): a first champion must show skill"
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
