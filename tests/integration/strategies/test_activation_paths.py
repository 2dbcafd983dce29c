"""Every way a strategy can become active passes the activation gate or is refused: created active
through the API or a service (refused: a new strategy has no backtest to judge), PATCHed active, the
admin's form and action, the demo strategies; the jobs that activate on a gate of their own
(generation's deflated holdout, in test_generation.py) or on none (a replay's copies) say so."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from apps.strategies.errors import StrategyInputError
from apps.strategies.management.commands import load_demo_strategies
from apps.strategies.models import DecisionKind, Strategy, StrategyDecision, StrategyStatus, StrategyVersion
from apps.strategies.services.strategies import NEW_STRATEGY_ACTIVATION, strategy_create
from apps.trading.replay.setup import strategy_copy
from tests.integration.strategies.conftest import RSI_DOCUMENT, make_strategy

pytestmark = pytest.mark.django_db


def _error(response) -> dict:
    assert response.status_code == 400, response.content
    return response.json()["error"]


def test_creating_a_strategy_as_active_through_the_api_is_a_400_and_creates_nothing(
    api_client, btc_hourly, rsi_document
):
    error = _error(api_client.post("/api/strategies", {**rsi_document, "status": "active"}, format="json"))

    assert error["fields"] == {"status": [NEW_STRATEGY_ACTIVATION]}
    assert "STRATEGY_MIN_DEFLATED_SHARPE" in error["message"]
    assert (Strategy.objects.count(), StrategyVersion.objects.count(), StrategyDecision.objects.count()) == (
        0,
        0,
        0,
    )


@pytest.mark.parametrize("status", ["draft", "paused"])
def test_a_strategy_may_be_created_as_draft_or_paused(api_client, btc_hourly, rsi_document, status):
    response = api_client.post("/api/strategies", {**rsi_document, "status": status}, format="json")

    assert response.status_code == 201, response.content
    assert Strategy.objects.get().status == status


def test_the_service_refuses_to_create_an_active_strategy_for_every_caller(btc_hourly):
    document = {key: RSI_DOCUMENT[key] for key in ("name", "type", "timeframe", "parameters", "indicators")}

    with pytest.raises(StrategyInputError) as refused:
        strategy_create(**document, rules=RSI_DOCUMENT["rules"], instrument=btc_hourly, status="active")

    assert refused.value.fields == {"status": [NEW_STRATEGY_ACTIVATION]}
    assert not Strategy.objects.exists()


def test_patching_to_active_without_evidence_is_a_400_that_changes_nothing_and_stores_the_refusal(
    api_client, btc_hourly, user
):
    paused = make_strategy(btc_hourly, status=StrategyStatus.PAUSED, owner=user)
    edit = {"status": "active", "rules": [{"condition": "RSI < 25", "action": "buy"}]}

    error = _error(api_client.patch(f"/api/strategies/{paused.strategy_id}", edit, format="json"))

    assert error["fields"]["status"][0].startswith("activation refused: version 2 has no completed backtest")
    paused.refresh_from_db()
    assert (paused.status, paused.versions.count()) == (StrategyStatus.PAUSED, 1)
    refusal = paused.decisions.get()  # the edit's decision was rolled back with it
    assert (refusal.kind, refusal.actor) == (DecisionKind.REFUSED, "trader")
    assert refusal.numbers == {"min_deflated_sharpe": 0.95}


def test_the_admin_change_form_cannot_set_the_status(admin_client, btc_hourly):
    paused = make_strategy(btc_hourly, status=StrategyStatus.PAUSED)
    url = reverse("admin:strategies_strategy_change", args=[paused.pk])

    admin_client.post(url, {"status": "active", "name": paused.name, "_save": "Save"})

    paused.refresh_from_db()
    assert paused.status == StrategyStatus.PAUSED
    assert not paused.decisions.exclude(kind=DecisionKind.REFUSED).exists()


def test_the_admin_activate_action_stores_the_gates_refusal(admin_client, btc_hourly):
    paused = make_strategy(btc_hourly, status=StrategyStatus.PAUSED)

    admin_client.post(
        reverse("admin:strategies_strategy_changelist"),
        {"action": "activate", "_selected_action": [paused.pk]},
    )

    paused.refresh_from_db()
    refusal = paused.decisions.get()
    assert (paused.status, refusal.kind, refusal.actor) == (
        StrategyStatus.PAUSED,
        DecisionKind.REFUSED,
        "admin",
    )


def test_a_demo_fixture_entry_asking_for_active_is_refused_and_nothing_is_written(
    btc_hourly, tmp_path, monkeypatch
):
    entry = {**RSI_DOCUMENT, "exchange": "coinbase", "status": "active"}
    fixture = tmp_path / "demo_strategies.json"
    fixture.write_text(json.dumps([entry]))
    monkeypatch.setattr(load_demo_strategies, "FIXTURE", fixture)

    with pytest.raises(CommandError, match="activation refused: a new strategy has no backtest"):
        call_command("load_demo_strategies", stdout=StringIO())

    assert not Strategy.objects.exists()


def test_a_replay_copy_is_active_with_a_decision_saying_it_had_no_gate(btc_hourly):
    paused = make_strategy(btc_hourly, status=StrategyStatus.PAUSED)

    copy = strategy_copy(original=paused, target=btc_hourly, timeframe="1h")

    copy.refresh_from_db()
    decision = copy.decisions.get()
    assert (copy.status, decision.kind, decision.actor) == (
        StrategyStatus.ACTIVE,
        DecisionKind.ACTIVATED,
        "replay",
    )
    assert decision.reason.endswith("(a replay: no gate)")
    assert decision.numbers == {"from": "draft", "to": "active", "original": paused.strategy_id, "version": 1}
