"""Promotion: a candidate replaces the champion only by beating it on the same holdout by the margin."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction

from apps.training import selectors
from apps.training.errors import TrainingInputError
from apps.training.models import MLModel, PromotionDecision, Stage
from apps.training.services.ml_signal import ml_signal_parameters_update
from apps.training.services.promotion import model_promote_if_better, model_retire
from apps.training.signals import champion_promoted
from tests.integration.training.conftest import SKILLED, train_now

# On the shipped BTCUSD 1h data, 50 trees of depth 2 rank the last 150 bars better (ROC AUC 0.579)
# than 50 trees of the default depth without early stopping (0.526), both trained on 1000 bars: a
# real difference of 0.053 to test margins on.
FULL = {"early_stopping_rounds": None, "n_estimators": 50}


@pytest.fixture
def champion(btc_hourly) -> MLModel:
    model = train_now(hyperparameters=FULL)
    assert model_promote_if_better(candidate=model).promoted
    model.refresh_from_db()
    return model


def _margin(settings, value: float) -> None:
    settings.TRAINING_PROMOTION_MARGIN = {"price_prediction": value}


@pytest.mark.django_db
def test_the_first_candidate_of_a_series_becomes_champion_and_the_decision_is_recorded(btc_hourly):
    model = train_now(hyperparameters=SKILLED)

    decision = model_promote_if_better(candidate=model)

    model.refresh_from_db()
    assert model.stage == "champion"
    assert model.promoted_at is not None
    assert (decision.promoted, decision.champion, decision.metric) == (True, None, "roc_auc")
    assert decision.holdout_start == model.seen_until + timedelta(hours=1)
    assert decision.holdout_rows == 150
    assert decision.candidate_value == pytest.approx(model.metrics["test"]["roc_auc"])
    assert "no champion" in decision.reason


@pytest.mark.django_db
def test_a_candidate_better_by_more_than_the_margin_replaces_the_champion_which_retires(settings, champion):
    _margin(settings, 0.05)
    candidate = train_now(hyperparameters=SKILLED)

    decision = model_promote_if_better(candidate=candidate)

    candidate.refresh_from_db()
    champion.refresh_from_db()
    assert decision.promoted
    assert (candidate.stage, champion.stage) == ("champion", "retired")
    assert decision.champion == champion
    assert decision.candidate_value - decision.champion_value == pytest.approx(0.053, abs=1e-3)
    assert "beats the margin 0.05" in decision.reason


@pytest.mark.django_db
def test_a_candidate_better_by_less_than_the_margin_stays_a_candidate(settings, champion):
    _margin(settings, 0.1)
    candidate = train_now(hyperparameters=SKILLED)

    decision = model_promote_if_better(candidate=candidate)

    candidate.refresh_from_db()
    champion.refresh_from_db()
    assert not decision.promoted
    assert (candidate.stage, champion.stage) == ("candidate", "champion")
    assert decision.candidate_value > decision.champion_value
    assert "does not beat the margin 0.1" in decision.reason
    assert PromotionDecision.objects.filter(candidate=candidate).count() == 1


@pytest.mark.django_db
def test_both_models_are_scored_on_the_bars_neither_of_them_saw(settings, champion):
    _margin(settings, 1.0)
    candidate = train_now(lookback=3000)  # trained on more history: it saw fewer of the recent bars

    decision = model_promote_if_better(candidate=candidate)

    assert candidate.seen_until < champion.seen_until
    assert decision.holdout_start == champion.seen_until + timedelta(hours=1)
    assert decision.holdout_end.isoformat() == "2019-10-17T09:00:00+00:00"
    assert decision.champion_value == pytest.approx(champion.metrics["test"]["roc_auc"])
    assert decision.candidate_value != pytest.approx(candidate.metrics["test"]["roc_auc"])


@pytest.mark.django_db
def test_a_holdout_too_small_to_decide_on_promotes_nothing_and_says_why(settings, btc_hourly):
    settings.TRAINING_PROMOTION_MIN_HOLDOUT_BARS = 1000
    model = train_now(hyperparameters=SKILLED)

    decision = model_promote_if_better(candidate=model)

    model.refresh_from_db()
    assert not decision.promoted
    assert model.stage == "candidate"
    assert decision.holdout_rows == 150
    assert "150 bars" in decision.reason
    assert "at least 1000" in decision.reason


@pytest.mark.django_db
def test_a_return_model_is_judged_on_rmse_where_lower_is_better(btc_hourly):
    first = train_now(model_type="return_prediction", lookback=2000)
    refused = model_promote_if_better(candidate=first)
    # Hourly returns are close to unpredictable: predicting no change does as well, so the first
    # return model is no champion on the shipped data. Make it one to judge the next against it,
    # trained on the whole history (the one return model with a little skill on its test split).
    assert not refused.promoted and "is degenerate" in refused.reason
    MLModel.objects.filter(pk=first.pk).update(stage=Stage.CHAMPION)
    second = train_now(model_type="return_prediction", lookback=20111 - 500)
    assert not second.degenerate

    decision = model_promote_if_better(candidate=second)

    assert decision.metric == "rmse"
    assert decision.promoted == (decision.candidate_value < decision.champion_value)
    assert "lower is better" in decision.reason


@pytest.mark.django_db
def test_the_database_refuses_a_second_champion_for_a_series(champion):
    other = train_now()

    with pytest.raises(IntegrityError), transaction.atomic():
        MLModel.objects.filter(pk=other.pk).update(stage="champion")


@pytest.mark.django_db
def test_only_candidates_can_be_promoted_and_retiring_a_champion_leaves_none(champion):
    with pytest.raises(TrainingInputError, match="not a candidate"):
        model_promote_if_better(candidate=champion)

    model_retire(model=champion)

    assert (
        selectors.champion_get(instrument=champion.instrument, timeframe="1h", model_type="price_prediction")
        is None
    )


@pytest.mark.django_db(transaction=True)
def test_two_promotions_at_once_leave_exactly_one_champion(btc_hourly):
    candidates = [train_now(hyperparameters=SKILLED), train_now(lookback=1200)]
    assert not any(model.degenerate for model in candidates)
    start = threading.Barrier(len(candidates))
    decisions, errors = [], []

    def promote(model: MLModel) -> None:
        try:
            start.wait()
            decisions.append(model_promote_if_better(candidate=model))
        except Exception as error:  # surfaced by the assertions below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=promote, args=(model,)) for model in candidates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert MLModel.objects.filter(stage="champion").count() == 1
    assert sorted(d.promoted for d in decisions) == [False, True]
    loser = next(d for d in decisions if not d.promoted)
    assert "champion" in loser.reason


@pytest.mark.django_db
def test_a_promotion_announces_the_parameter_changes_for_ml_signal_strategies(
    btc_hourly, django_capture_on_commit_callbacks
):
    heard = []

    def receiver(sender, champion, retired, update, **kwargs):
        heard.append((champion.model_id, retired, update))

    champion_promoted.connect(receiver)
    try:
        model = train_now(hyperparameters=SKILLED)
        with django_capture_on_commit_callbacks(execute=True):
            model_promote_if_better(candidate=model)
    finally:
        champion_promoted.disconnect(receiver)

    assert len(heard) == 1
    model_id, retired, update = heard[0]
    assert (model_id, retired) == (model.model_id, None)
    assert update.parameters == {"ml_proba_threshold": model.threshold}
    assert (update.symbol, update.timeframe, update.model_id) == ("BTCUSD", "1h", model.model_id)


@pytest.mark.django_db
def test_ml_signal_parameters_name_the_threshold_each_model_type_chose_on_validation(btc_hourly):
    price = train_now()
    returns = train_now(model_type="return_prediction")
    volatility = train_now(model_type="volatility_prediction")

    assert ml_signal_parameters_update(champion=price).parameters == {"ml_proba_threshold": price.threshold}
    assert ml_signal_parameters_update(champion=returns).parameters == {
        "ml_return_threshold": returns.threshold
    }
    assert ml_signal_parameters_update(champion=volatility).parameters == {}


@pytest.mark.django_db
def test_champion_live_accuracy_reports_each_champion_on_bars_it_never_saw(champion):
    report = selectors.champion_live_accuracy(days=3)

    evaluation = selectors.model_evaluation(model=champion, evaluation_period_days=3)
    assert len(report) == 1
    entry = report[0]
    assert (entry["model_id"], entry["status"], entry["rows"]) == (champion.model_id, "ok", 71)
    assert entry["accuracy"] == evaluation.metrics["accuracy"]
    assert entry["window_start"] > entry["seen_until"]


@pytest.mark.django_db
def test_champion_live_accuracy_is_empty_without_champions(btc_hourly):
    train_now()

    assert selectors.champion_live_accuracy() == []
