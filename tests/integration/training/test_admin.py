"""The registry's admin pages: metrics, the importance chart, and the evaluate/promote/retire actions."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from apps.training.models import MLModel, PromotionDecision
from apps.training.services.training_runs import training_run_for_slot
from tests.integration.training.conftest import SKILLED, train_now

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/training/mlmodel/"


def _act(browser: Client, action: str, *models: MLModel) -> str:
    response = browser.post(
        CHANGELIST, {"action": action, "_selected_action": [m.pk for m in models]}, follow=True
    )
    assert response.status_code == 200
    return " ".join(str(message) for message in response.context["messages"])


def test_a_model_page_shows_its_metrics_and_a_bar_per_feature_importance(admin_client, btc_hourly):
    model = train_now()

    page = admin_client.get(f"{CHANGELIST}{model.pk}/change/").content.decode()

    assert page.count("background:#79aec8") == 30
    top = max(model.feature_importances, key=model.feature_importances.get)
    assert f">{top}</span>" in page
    assert "<th>validation</th>" in page
    assert "roc_auc" in page
    assert model.artifact_sha256 in page


def test_the_changelist_lists_models_with_their_test_score(admin_client, btc_hourly):
    model = train_now()

    page = admin_client.get(CHANGELIST).content.decode()

    assert model.model_id in page
    assert f"roc_auc {model.metrics['test']['roc_auc']:.4g}" in page


def test_the_evaluate_action_reports_metrics_on_unseen_days(admin_client, btc_hourly):
    model = train_now(lookback=3000)

    messages = _act(admin_client, "evaluate_recent", model)

    assert f"{model.model_id}: accuracy" in messages
    assert "over 450 bars" in messages


def test_the_promote_and_retire_actions_change_the_stage_and_record_the_decision(admin_client, btc_hourly):
    model = train_now(hyperparameters=SKILLED)

    promoted = _act(admin_client, "promote_if_better", model)
    model.refresh_from_db()
    assert f"{model.model_id} promoted" in promoted
    assert model.stage == "champion"

    retired = _act(admin_client, "retire", model)
    model.refresh_from_db()
    assert f"{model.model_id} retired" in retired
    assert model.stage == "retired"
    assert "only candidates and champions retire" in _act(admin_client, "retire", model)


def test_models_are_read_only_and_their_actions_are_for_users_who_may_change_models(staff_user, rf):
    def actions(*codenames: str) -> list[str]:
        staff_user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
        request = rf.get(CHANGELIST)
        request.user = get_user_model().objects.get(pk=staff_user.pk)  # no cached permissions
        assert not (model_admin.has_change_permission(request) or model_admin.has_delete_permission(request))
        return list(model_admin.get_actions(request))

    model_admin = admin.site._registry[MLModel]

    assert actions("view_mlmodel") == []
    assert actions("view_mlmodel", "change_mlmodel") == ["evaluate_recent", "promote_if_better", "retire"]


def test_runs_and_decisions_have_read_only_pages(admin_client, btc_hourly):
    run = training_run_for_slot()
    decision = PromotionDecision.objects.get()

    run_page = admin_client.get(f"/admin/training/trainingrun/{run.pk}/change/").content.decode()
    decision_page = admin_client.get(f"/admin/training/promotiondecision/{decision.pk}/change/")

    assert "models_trained" in run_page
    assert "no champion" in run_page
    assert decision_page.status_code == 200
    assert admin_client.get("/admin/training/trainingrun/add/").status_code == 403
