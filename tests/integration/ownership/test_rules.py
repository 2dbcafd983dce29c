"""The rules around the matrix: costly work needs the researchers' permission, each user has a cap on
queued jobs, a cancel frees a slot, another user's id in a body reads like an unknown one, the
researchers group is made by the migrations and granted with a command, and the system's jobs
record who they are."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from apps.core.models import JobStatus
from apps.core.ownership import RESEARCHERS, researchers_group
from apps.strategies.models import (
    Backtest,
    GenerationRun,
    OptimizationRun,
    Strategy,
    StrategyDecision,
    StrategyUpdateItem,
)
from apps.strategies.services import generation
from apps.strategies.services.backtests import backtest_create
from apps.strategies.services.daily_update import strategies_daily_update
from apps.strategies.services.generation import generation_create, generation_run
from apps.strategies.services.optimizations import optimization_create
from apps.training.models import MLModel
from tests.integration.ownership.conftest import client_for
from tests.integration.ownership.test_matrix import WINDOW, make_strategy

pytestmark = pytest.mark.django_db

GENERATE = ("/api/strategies/generate", {"symbol": "BTCUSD", "timeframe": "1h", "count": 1})
TRAIN = (
    "/api/training/train",
    {"symbol": "BTCUSD", "timeframe": "1h", "model_type": "price_prediction", "lookback_period": 1000},
)
COSTLY = {"generation": (GENERATE, GenerationRun), "training": (TRAIN, MLModel)}
SPAN = {"start": datetime(2019, 1, 1, tzinfo=UTC), "end": datetime(2019, 3, 1, tzinfo=UTC)}


def _error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    return body["error"]["message"]


# --- costly work is a permission -----------------------------------------------------------------------


@pytest.mark.parametrize("work", list(COSTLY))
def test_costly_work_without_the_researchers_group_is_a_403_and_starts_nothing(work, api_client, btc_hourly):
    (path, body), model = COSTLY[work]

    message = _error(api_client.post(path, body, format="json"), 403, "permission_required")

    assert RESEARCHERS in message
    assert not model.objects.exists()


@pytest.mark.parametrize("work", list(COSTLY))
def test_a_researcher_starts_costly_work_and_owns_it(work, researcher, api_client, btc_hourly):
    (path, body), model = COSTLY[work]

    response = api_client.post(path, body, format="json")

    assert response.status_code == 202, response.content
    assert model.objects.get().owner == researcher


@pytest.mark.parametrize("work", list(COSTLY))
def test_staff_start_costly_work_without_the_group(work, staff_user, btc_hourly):
    (path, body), model = COSTLY[work]

    assert client_for(staff_user).post(path, body, format="json").status_code == 202
    assert model.objects.get().owner == staff_user


def test_the_researchers_group_made_by_the_migrations_holds_both_permissions(db):
    Group.objects.filter(name=RESEARCHERS).delete()  # as a flushed test database has it
    for module, function in (
        ("apps.strategies.migrations.0006_ownership", "researchers_may_generate"),
        ("apps.training.migrations.0003_ownership", "researchers_may_train"),
    ):
        getattr(importlib.import_module(module), function)(apps, None)

    group = Group.objects.get(name=RESEARCHERS)
    assert sorted(group.permissions.values_list("content_type__app_label", "codename")) == [
        ("strategies", "run_generation"),
        ("training", "run_training"),
    ]
    assert researchers_group() == group  # and the same group, healed, when it was deleted


def test_the_researcher_command_grants_and_takes_back_the_permission(user):
    out = StringIO()

    call_command("researcher", "trader", stdout=out)
    granted = type(user).objects.get(pk=user.pk)  # a fresh user: permissions are cached per object
    assert granted.has_perm("strategies.run_generation") and granted.has_perm("training.run_training")
    call_command("researcher", "trader", "--remove", stdout=out)
    revoked = type(user).objects.get(pk=user.pk)

    assert not revoked.has_perm("strategies.run_generation")
    assert "is now in the 'researchers' group" in out.getvalue()
    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("researcher", "nobody")


# --- the cap on queued jobs ----------------------------------------------------------------------------


def _queue(owner, instrument, jobs: int) -> Strategy:
    """``jobs`` pending jobs of ``owner`` of three kinds; returns the strategy they run on."""
    strategy = make_strategy(instrument, owner)
    makers = [
        lambda: backtest_create(strategy=strategy, owner=owner, **SPAN),
        lambda: optimization_create(strategy=strategy, space={"rsi_period": [10, 14]}, folds=0, owner=owner),
        lambda: generation_create(instrument=instrument, timeframe="1h", count=1, owner=owner),
    ]
    for index in range(jobs):
        makers[index % len(makers)]()
    return strategy


def _job_rows() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Backtest, OptimizationRun, GenerationRun, MLModel))


@pytest.mark.parametrize("request_kind", ["backtest", "optimisation", "generation", "training"])
def test_the_request_past_the_cap_is_a_429_and_creates_nothing(
    request_kind, researcher, api_client, btc_hourly, settings
):
    settings.API_MAX_QUEUED_JOBS_PER_USER = 3
    strategy = _queue(researcher, btc_hourly, 3)
    path, body = {
        "backtest": ("/api/strategies/backtest", {"strategy_id": strategy.strategy_id, **WINDOW}),
        "optimisation": (
            "/api/strategies/optimize",
            {"strategy_id": strategy.strategy_id, "space": {"rsi_period": [10, 14]}, "folds": 0},
        ),
        "generation": GENERATE,
        "training": TRAIN,
    }[request_kind]
    before = _job_rows()

    message = _error(api_client.post(path, body, format="json"), 429, "too_many_jobs")

    assert "trader has 3 jobs pending or running" in message
    assert _job_rows() == before


def test_the_cap_counts_only_the_users_unfinished_jobs(
    researcher, other_user, api_client, btc_hourly, settings
):
    settings.API_MAX_QUEUED_JOBS_PER_USER = 2
    strategy = _queue(researcher, btc_hourly, 2)
    _queue(other_user, btc_hourly, 2)  # another user's queue
    _queue(None, btc_hourly, 2)  # and the system's do not count
    request = {"strategy_id": strategy.strategy_id, **WINDOW}
    assert api_client.post("/api/strategies/backtest", request, format="json").status_code == 429

    Backtest.objects.filter(owner=researcher).update(status=JobStatus.COMPLETED)  # one finished

    assert api_client.post("/api/strategies/backtest", request, format="json").status_code == 202
    assert api_client.post("/api/strategies/backtest", request, format="json").status_code == 429


def test_canceling_a_queued_job_frees_its_slot_and_a_finished_one_cannot_be_canceled(
    researcher, api_client, btc_hourly, settings
):
    settings.API_MAX_QUEUED_JOBS_PER_USER = 1
    strategy = _queue(researcher, btc_hourly, 0)
    request = {"strategy_id": strategy.strategy_id, **WINDOW}
    first = api_client.post("/api/strategies/backtest", request, format="json").json()
    assert api_client.post("/api/strategies/backtest", request, format="json").status_code == 429

    canceled = api_client.post(f"{first['url']}/cancel")

    assert canceled.status_code == 200
    assert (canceled.json()["status"], canceled.json()["error"]) == ("failed", "Canceled by trader.")
    assert api_client.post("/api/strategies/backtest", request, format="json").status_code == 202
    again = _error(api_client.post(f"{first['url']}/cancel"), 409, "not_cancelable")
    assert f"backtest {first['id']} is failed" in again


def test_canceling_an_optimisation_fails_its_pending_chunks(researcher, api_client, btc_hourly):
    run = optimization_create(
        strategy=make_strategy(btc_hourly, researcher),
        space={"rsi_period": [8, 10, 12, 14]},
        folds=0,
        owner=researcher,
    )

    assert api_client.post(f"/api/strategies/optimizations/{run.pk}/cancel").status_code == 200

    assert set(run.chunks.values_list("status", flat=True)) == {JobStatus.FAILED}


# --- another user's object in a body reads like an unknown one --------------------------------------


def test_another_users_strategy_in_a_request_body_reads_exactly_like_an_unknown_one(
    people, other_user, btc_hourly
):
    theirs = make_strategy(btc_hourly, people["owner"])
    client = client_for(other_user)

    def refusal(strategy_id: str) -> dict:
        response = client.post(
            "/api/strategies/backtest", {"strategy_id": strategy_id, **WINDOW}, format="json"
        )
        assert response.status_code == 400
        return response.json()["error"]["fields"]["strategy_id"]

    assert refusal(theirs.strategy_id) == [f"unknown strategy {theirs.strategy_id!r}"]
    missing = theirs.strategy_id.replace("RSI", "XYZ")
    assert refusal(missing) == [f"unknown strategy {missing!r}"]


# --- the system's jobs: who they are, and who sees their work ----------------------------------------


def test_the_daily_updates_work_on_a_users_strategy_is_the_systems_shown_to_the_owner_only(
    people, btc_hourly, settings
):
    settings.STRATEGY_UPDATE_WINDOW_BARS = 2160
    settings.STRATEGY_MIN_ACTIVE = 0  # no generation: this is about the strategy's own update
    mine = make_strategy(btc_hourly, people["owner"])

    run = strategies_daily_update(now=datetime(2019, 10, 17, 10, 5, tzinfo=UTC))

    decisions = StrategyDecision.objects.filter(strategy=mine)
    assert decisions.exists() and set(decisions.values_list("actor", flat=True)) == {"daily update"}
    backtest = Backtest.objects.get(strategy=mine)
    assert backtest.owner is None  # made by the system
    owner, rival = client_for(people["owner"]), client_for(people["other"])
    assert owner.get(f"/api/strategies/backtests/{backtest.pk}").status_code == 200
    assert rival.get(f"/api/strategies/backtests/{backtest.pk}").status_code == 404  # not their strategy
    assert StrategyUpdateItem.objects.filter(run=run, strategy=mine).exists()
    assert [i["strategy_id"] for i in owner.get(f"/api/strategies/updates/{run.pk}").json()["items"]] == [
        mine.strategy_id
    ]
    hidden = rival.get(f"/api/strategies/updates/{run.pk}").json()
    assert hidden["items"] == []
    assert mine.strategy_id not in {row["strategy_id"] for row in hidden["decisions"]}


def test_a_users_generation_keeps_strategies_for_them_named_in_its_decisions(
    researcher, api_client, btc_hourly, monkeypatch
):
    monkeypatch.setattr(generation, "holdout_verdict", lambda metrics, min_sharpe: None)  # keep them all
    monkeypatch.setattr(generation, "deflation_verdict", lambda deflated_sharpe: None)  # luck too
    run = generation_create(
        instrument=btc_hourly, timeframe="1h", count=3, provider="offline", owner=researcher
    )

    generation_run(run_id=run.pk)

    kept = Strategy.objects.filter(generation_candidates__run=run)
    assert kept.exists()
    assert {s.owner for s in kept} == {researcher}
    assert set(StrategyDecision.objects.filter(strategy__in=kept).values_list("actor", flat=True)) == {
        "trader"
    }
    listed = api_client.get("/api/strategies/generations").json()["results"]
    assert [(row["id"], row["owner"]) for row in listed] == [(run.pk, "trader")]


def test_a_status_change_through_the_api_names_the_user(people, btc_hourly):
    mine = make_strategy(btc_hourly, people["owner"])

    client_for(people["owner"]).patch(
        f"/api/strategies/{mine.strategy_id}", {"status": "paused"}, format="json"
    )
    refused = client_for(people["staff"]).patch(
        f"/api/strategies/{mine.strategy_id}", {"status": "active"}, format="json"
    )

    assert refused.status_code == 400  # no backtest, so no evidence that it is more than luck
    decisions = StrategyDecision.objects.filter(strategy=mine).order_by("id")
    assert [(d.kind, d.actor) for d in decisions] == [("paused", "trader"), ("refused", "operator")]
    shown = client_for(people["owner"]).get(f"/api/strategies/{mine.strategy_id}/decisions").json()
    assert [row["actor"] for row in shown["results"]] == ["operator", "trader"]
    assert client_for(people["owner"]).get(f"/api/strategies/{mine.strategy_id}").json()["owner"] == "trader"
