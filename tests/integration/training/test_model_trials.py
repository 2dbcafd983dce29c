"""Every model retrain is a trial of its model family (market, timeframe, model type): counted once, in
the database, and deflating the Sharpe ratio of each model's holdout signal returns."""

from __future__ import annotations

from datetime import timedelta

import pytest

from apps.core.models import JobStatus
from apps.strategies import selectors as research
from apps.strategies.models import Trial, TrialSource
from apps.training.models import MLModel
from apps.training.services.model_training import model_train
from apps.training.services.training_runs import training_run_for_slot
from tests.integration.training.conftest import SHIPPED_HISTORY_NOW, SKILLED, train_now

pytestmark = pytest.mark.django_db

FULL = {"early_stopping_rounds": None, "n_estimators": 50}


def _count(model: MLModel) -> int:
    """The family's count as a fresh process reads it: from the database, not from memory."""
    family = research.model_family(
        instrument_id=model.instrument_id, timeframe=model.timeframe, model_type=model.model_type
    )
    return research.family_totals(family=family).trials


def test_each_trained_model_is_one_trial_and_its_robustness_is_deflated_by_the_family(btc_hourly):
    first = train_now(hyperparameters=SKILLED)

    trial = Trial.objects.get(key=f"model:{first.model_id}")
    block = first.robustness
    assert (trial.source, trial.lineage, trial.strategy, trial.owner) == (
        TrialSource.MODEL,
        "model:price_prediction",
        None,
        None,
    )
    assert trial.parameters["model_id"] == first.model_id
    # The test split's 150 bars, each earning its next bar (the newest earns nothing yet).
    assert trial.observations == block["observations"] == 150
    assert trial.sharpe == pytest.approx(block["sharpe_per_bar"])
    assert (trial.skewness, trial.kurtosis) == pytest.approx((block["skewness"], block["kurtosis"]))
    # Alone in its family, its deflated Sharpe ratio is its PSR.
    assert (block["trials"], _count(first)) == (1, 1)
    assert block["deflated_sharpe"] == pytest.approx(block["psr"]) == pytest.approx(0.979, abs=1e-3)
    assert block["min_track_record_bars"] < 150

    second = train_now(hyperparameters=FULL)

    assert (second.robustness["trials"], _count(second)) == (2, 2)
    assert second.robustness["sharpe_variance"] > 0
    assert second.robustness["deflated_sharpe"] < second.robustness["psr"]
    other = train_now(model_type="return_prediction")
    assert (other.robustness["lineage"], other.robustness["trials"], _count(first)) == (
        "model:return_prediction",
        1,
        2,
    )


def test_a_training_task_run_again_after_a_lost_claim_records_its_trial_once(btc_hourly):
    model = train_now(hyperparameters=SKILLED)
    # As if the worker died after writing the trial: the sweeper hands the row out again.
    MLModel.objects.filter(pk=model.pk).update(status=JobStatus.PENDING)

    again = model_train(model_pk=model.pk)

    assert again is not None and again.status == JobStatus.COMPLETED
    assert (_count(model), again.robustness["trials"]) == (1, 1)
    # A redelivered message for the finished job does nothing at all.
    assert model_train(model_pk=model.pk) is None
    assert Trial.objects.filter(key=f"model:{model.model_id}").count() == _count(model) == 1


def test_every_scheduled_retrain_adds_a_trial(settings, btc_hourly):
    # 1000 bars train fast; the default hyperparameters learn little from them (a degenerate model,
    # always short), which is a trial all the same.
    settings.TRAINING_LOOKBACK_BARS = 1000
    first_run = training_run_for_slot(now=SHIPPED_HISTORY_NOW, fetch=False)
    second_run = training_run_for_slot(now=SHIPPED_HISTORY_NOW + timedelta(hours=6), fetch=False)

    models = list(MLModel.objects.order_by("created_at", "pk"))
    assert first_run is not None and second_run is not None and len(models) == 2
    assert [model.robustness["trials"] for model in models] == [1, 2]
    assert _count(models[0]) == 2
    decision = second_run.report["series"][0]["models"][0]["decision"]
    assert {"p_value", "mean_difference", "deflated_sharpe"} <= set(decision)


def test_a_volatility_model_takes_no_positions_and_is_no_trial(btc_hourly):
    model = train_now(model_type="volatility_prediction")

    assert model.robustness == {}
    assert _count(model) == 0


def test_the_api_and_the_admin_show_a_models_robustness(api_client, admin_client, btc_hourly):
    model = train_now(hyperparameters=SKILLED)

    body = api_client.get(f"/api/training/models/{model.model_id}").json()
    listed = api_client.get("/api/training/models").json()["results"]
    page = admin_client.get(f"/admin/training/mlmodel/{model.pk}/change/").content.decode()

    assert body["robustness"] == model.robustness
    assert set(body["robustness"]) >= {"psr", "deflated_sharpe", "trials", "min_track_record_bars"}
    assert listed[0]["robustness"]["trials"] == 1
    assert f"<td>deflated Sharpe ratio</td><td>{model.robustness['deflated_sharpe']:.4g}</td>" in page
    assert "family model:price_prediction" in page
