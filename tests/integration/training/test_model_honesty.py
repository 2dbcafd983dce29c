"""Models that say when they are useless: the shortest lookback refused, degenerate models flagged and
never promoted, and staff's promotion through the API behind the scheduled run's gate."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.training.domain.pipeline import minimum_lookback
from apps.training.models import MLModel, PromotionDecision
from apps.training.services.promotion import model_promote_if_better
from tests.integration.training.conftest import train_now

pytestmark = pytest.mark.django_db

BRIEF_REQUEST = {
    "symbol": "BTCUSD",
    "timeframe": "1h",
    "model_type": "price_prediction",
    "lookback_period": 1000,
}
# On the last 150 shipped BTCUSD 1h bars (the test split of a 1000-bar model) 50 trees without early
# stopping rank with ROC AUC 0.526, 50 trees of depth 2 with 0.579: both have skill, the second more,
# though on signal returns not significantly more (a paired test's p = 0.32).
FULL = {"early_stopping_rounds": None, "n_estimators": 50}
SHALLOW = {"max_depth": 2, "n_estimators": 50}


def _promote(client: APIClient, model: MLModel):
    return client.post(f"/api/training/models/{model.model_id}/promote", format="json")


@pytest.fixture
def staff_client(staff_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(staff_user)
    return client


@pytest.fixture
def degenerate(btc_hourly) -> MLModel:
    """The brief's request on the shipped data: early stopping keeps one tree, which says "down"."""
    return train_now(lookback=BRIEF_REQUEST["lookback_period"])


def test_a_lookback_too_short_for_the_splits_is_a_400_naming_the_minimum_and_creates_nothing(
    researcher, api_client, btc_hourly
):
    minimum = minimum_lookback(1)
    request = BRIEF_REQUEST | {"lookback_period": minimum - 1}

    response = api_client.post("/api/training/train", request, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    [message] = error["fields"]["lookback_period"]
    assert f"at least {minimum} bars at horizon 1, got {minimum - 1}" in message
    assert "500 more bars of warm-up" in message  # core v1's
    assert not MLModel.objects.exists()


def test_the_minimum_lookback_is_one_that_trains(btc_hourly):
    assert train_now(lookback=minimum_lookback(1)).stage == "candidate"


def test_the_minimum_grows_with_the_horizon(researcher, api_client, btc_hourly):
    request = BRIEF_REQUEST | {"lookback_period": minimum_lookback(1), "horizon": 24}

    response = api_client.post("/api/training/train", request, format="json")

    assert response.status_code == 400
    assert f"at least {minimum_lookback(24)} bars at horizon 24" in response.json()["error"]["message"]


def test_the_briefs_request_trains_a_degenerate_model_that_says_why(api_client, degenerate):
    body = api_client.get(f"/api/training/models/{degenerate.model_id}").json()

    assert (body["status"], body["degenerate"]) == ("candidate", True)
    assert body["best_iteration"] == 0
    assert body["metrics"]["test"]["precision"] == body["metrics"]["test"]["recall"] == 0.0
    assert body["degenerate_reasons"] == [
        "it predicts down for every one of the 150 test rows",
        "early stopping kept only the first of up to 400 trees: nothing learned after it held on the "
        "validation split",
    ]
    listed = api_client.get("/api/training/models").json()["results"]
    assert [(m["model_id"], m["degenerate"]) for m in listed] == [(degenerate.model_id, True)]


def test_a_model_with_skill_is_not_flagged(btc_hourly):
    model = train_now(hyperparameters=SHALLOW)

    assert (model.degenerate, model.degenerate_reasons) == (False, [])


def test_the_gate_never_promotes_a_degenerate_model_even_with_no_champion_to_beat(degenerate):
    decision = model_promote_if_better(candidate=degenerate)

    degenerate.refresh_from_db()
    assert not decision.promoted
    assert degenerate.stage == "candidate"
    assert f"{degenerate.model_id} is degenerate (it predicts down" in decision.reason
    # The holdout was still scored: the decision keeps the numbers it would have been judged on.
    assert decision.holdout_rows == 150
    assert decision.candidate_value == pytest.approx(degenerate.metrics["test"]["roc_auc"])
    assert decision.actor == "system"


def test_staff_promote_a_candidate_that_beats_the_champion_and_are_named_as_the_actor(
    settings, staff_client, staff_user, btc_hourly
):
    # This test is about the API: gates that let FULL be champion (deflated Sharpe ratio 0.949) and
    # SHALLOW replace it (p = 0.32).
    settings.STRATEGY_MIN_DEFLATED_SHARPE, settings.TRAINING_PROMOTION_MAX_P_VALUE = 0.9, 0.4
    champion = train_now(hyperparameters=FULL)
    assert model_promote_if_better(candidate=champion, actor="scheduled training").promoted
    candidate = train_now(hyperparameters=SHALLOW)

    response = _promote(staff_client, candidate)

    assert response.status_code == 200, response.content
    body = response.json()
    champion.refresh_from_db()
    assert (body["model_id"], body["status"], champion.stage) == (candidate.model_id, "champion", "retired")
    assert body["promoted_at"] is not None
    [decision] = body["promotion_decisions"]
    assert (decision["promoted"], decision["champion"], decision["actor"]) == (
        True,
        champion.model_id,
        "operator",
    )
    assert decision["candidate_value"] - decision["champion_value"] == pytest.approx(0.053, abs=2e-3)
    assert decision["p_value"] == pytest.approx(0.316, abs=1e-3)


def test_a_candidate_the_gate_refuses_is_a_409_with_the_gates_numbers_and_stays_a_candidate(
    staff_client, btc_hourly
):
    champion = train_now(hyperparameters=SHALLOW)
    assert model_promote_if_better(candidate=champion).promoted
    weaker = train_now(hyperparameters=FULL)

    response = _promote(staff_client, weaker)

    assert response.status_code == 409
    error = response.json()["error"]
    decision = error["fields"]["decision"]
    assert error["code"] == "not_promoted"
    assert error["message"] == decision["reason"]
    assert "not significantly better" in decision["reason"]
    assert (decision["metric"], decision["holdout_rows"], decision["evidence"]["max_p_value"]) == (
        "roc_auc",
        150,
        0.05,
    )
    assert decision["candidate_value"] < decision["champion_value"]
    assert decision["mean_difference"] < 0 and decision["p_value"] == pytest.approx(0.684, abs=1e-3)
    assert (decision["promoted"], decision["actor"]) == (False, "operator")
    weaker.refresh_from_db()
    assert weaker.stage == "candidate"
    assert PromotionDecision.objects.filter(candidate=weaker).count() == 1


def test_a_degenerate_model_is_refused_through_the_api(staff_client, degenerate):
    response = _promote(staff_client, degenerate)

    assert response.status_code == 409
    error = response.json()["error"]
    assert "is degenerate" in error["message"]
    assert error["fields"]["decision"]["holdout_rows"] == 150
    degenerate.refresh_from_db()
    assert degenerate.stage == "candidate"


def test_only_staff_may_promote_and_the_refusal_changes_nothing(api_client, researcher, btc_hourly):
    model = train_now(hyperparameters=SHALLOW)

    response = _promote(api_client, model)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    model.refresh_from_db()
    assert model.stage == "candidate"
    assert not PromotionDecision.objects.exists()
    assert _promote(APIClient(), model).status_code == 401


def test_promoting_an_unknown_model_is_a_404_and_a_champion_a_400(staff_client, btc_hourly):
    unknown = staff_client.post("/api/training/models/price_prediction_NOPE_1h_20200101000000/promote")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"

    champion = train_now(hyperparameters=SHALLOW)
    assert _promote(staff_client, champion).status_code == 200
    again = _promote(staff_client, champion)
    assert again.status_code == 400
    assert "not a candidate" in again.json()["error"]["fields"]["model_id"][0]


def test_the_admin_shows_the_reasons_and_its_promote_action_refuses_a_degenerate_model(
    admin_client, degenerate
):
    page = admin_client.get(f"/admin/training/mlmodel/{degenerate.pk}/change/").content.decode()
    assert "<li>it predicts down for every one of the 150 test rows</li>" in page

    response = admin_client.post(
        "/admin/training/mlmodel/",
        {"action": "promote_if_better", "_selected_action": [degenerate.pk]},
        follow=True,
    )

    messages = " ".join(str(message) for message in response.context["messages"])
    assert f"{degenerate.model_id} not promoted: {degenerate.model_id} is degenerate" in messages
    degenerate.refresh_from_db()
    assert degenerate.stage == "candidate"
    assert PromotionDecision.objects.get(candidate=degenerate).actor == "admin"
