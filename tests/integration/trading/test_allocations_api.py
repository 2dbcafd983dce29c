"""Allocations and auto-trading through the API, the lifecycle policy, and the orchestrator's records:
an allocation that could never trade is refused with why, the policy allocates active strategies
and winds down retired ones (each a decision), and with it off the API and health say what waits."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from knox.models import AuthToken
from rest_framework.test import APIClient

from apps.health.checks import check_trading_orchestrator
from apps.market.services.instruments import instrument_get_or_create
from apps.strategies.models import DecisionKind, StrategyDecision, StrategyStatus
from apps.trading import orchestrator, performance
from apps.trading.models import AccountKind, Order, OrderSource, OrderStatus, Position, StrategyAllocation
from tests.integration.active_strategies import strategy_create_as
from tests.unit.market_providers.conftest import hourly_rows

from .conftest import store_candles
from .test_orchestrator import ALWAYS_BUY, NOW, PARAMETERS

pytestmark = pytest.mark.django_db
D = Decimal


def _strategy(instrument, name: str, status: str = StrategyStatus.ACTIVE):
    return strategy_create_as(
        name=name,
        type="custom",
        instrument=instrument,
        timeframe="1h",
        parameters=PARAMETERS,
        indicators=[],
        rules=ALWAYS_BUY,
        status=status,
    )


def _market(symbol: str, exchange: str):
    instrument = instrument_get_or_create(symbol=symbol, exchange=exchange, timeframes=["1h"])
    store_candles(instrument, hourly_rows(5))
    return instrument


def _client(user) -> APIClient:
    _, token = AuthToken.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def active(btcusdt):
    return _strategy(btcusdt, "Always in")


def test_allocating_an_active_strategy_records_who_and_shows_its_book(api_client, paper_account, active):
    response = api_client.post(
        "/api/trading/allocations",
        {"strategy_id": active.strategy_id, "account": paper_account.pk, "capital_pct": "0.5"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["strategy_id"], body["capital_pct"], body["enabled"], body["created_by"]) == (
        active.strategy_id,
        "0.500000",
        True,
        "trader",
    )
    assert D(body["book_quantity"]) == 0
    decision = StrategyDecision.objects.get(strategy=active, kind=DecisionKind.ALLOCATED)
    assert "by trader" in decision.reason and decision.numbers["allocation"] == body["id"]
    listed = api_client.get("/api/trading/allocations", {"account": paper_account.pk}).json()
    assert [row["id"] for row in listed["results"]] == [body["id"]]


@pytest.mark.parametrize("case", ["draft", "retired", "other_quote", "live_other_exchange", "share", "twice"])
def test_an_allocation_that_could_never_trade_is_refused_with_why_and_nothing_changes(
    case, api_client, paper_account, make_account, btcusdt, active
):
    account, strategy, share = paper_account, active, "0.5"
    expected = {"draft": "is draft", "retired": "is retired", "other_quote": "quoted in USD"}
    if case in ("draft", "retired"):
        strategy = _strategy(btcusdt, f"A {case} one", status=case)
    elif case == "other_quote":
        btcusd = _market("BTCUSD", "bitstamp")
        strategy = _strategy(btcusd, "Dollar")
    elif case == "live_other_exchange":
        kraken = _market("XBTUSDT", "kraken")
        strategy = _strategy(kraken, "Kraken")
        account = make_account(name="Live", kind=AccountKind.LIVE)
        expected[case] = "is on binance"
    elif case == "share":
        other = _strategy(btcusdt, "Other")
        StrategyAllocation.objects.create(account=account, strategy=other, capital_pct=D("0.7"))
        expected[case] = "at most 0.3000 is left"
    else:
        StrategyAllocation.objects.create(account=account, strategy=strategy, capital_pct=D("0.1"))
        expected[case] = "already has an allocation"
    before = (StrategyAllocation.objects.count(), StrategyDecision.objects.count())

    response = api_client.post(
        "/api/trading/allocations",
        {"strategy_id": strategy.strategy_id, "account": account.pk, "capital_pct": share},
        format="json",
    )

    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "invalid" and expected[case] in error["message"], error
    assert (StrategyAllocation.objects.count(), StrategyDecision.objects.count()) == before


def test_bad_allocation_input_is_a_400_and_unknown_ids_are_404(api_client, paper_account, active):
    for body in (
        {"strategy_id": active.strategy_id, "capital_pct": "1.5"},
        {"strategy_id": active.strategy_id, "capital_pct": "0"},
        {"strategy_id": "no-such-strategy", "capital_pct": "0.1"},
        {"strategy_id": active.strategy_id, "capital_pct": "0.1", "account": 99999},
    ):
        assert api_client.post("/api/trading/allocations", body, format="json").status_code == 400, body
    assert (
        api_client.patch("/api/trading/allocations/99999", {"enabled": False}, format="json").status_code
        == 404
    )
    assert api_client.patch(f"/api/trading/accounts/{paper_account.pk}", {}, format="json").status_code == 400
    assert not StrategyAllocation.objects.exists()


def test_auto_trading_is_switched_by_the_owner_or_staff_only(api_client, paper_account, staff_user):
    outsider = get_user_model().objects.create_user(username="mallory", password="x" * 12)
    url = f"/api/trading/accounts/{paper_account.pk}"

    assert _client(outsider).patch(url, {"auto_trading": True}, format="json").status_code == 404
    paper_account.refresh_from_db()
    assert paper_account.auto_trading is False
    owner = api_client.patch(url, {"auto_trading": True}, format="json")
    assert owner.status_code == 200 and owner.json()["auto_trading"] is True
    staff = _client(staff_user).patch(url, {"auto_trading": False, "auto_allocate": True}, format="json")
    assert staff.status_code == 200
    assert (staff.json()["auto_trading"], staff.json()["auto_allocate"]) == (False, True)


def test_switching_off_keeps_the_book_and_delete_winds_it_down_then_switches_it_off(
    api_client, paper_account, active
):
    paper_account.auto_trading = True
    paper_account.save()
    made = api_client.post(
        "/api/trading/allocations", {"strategy_id": active.strategy_id, "capital_pct": "0.5"}, format="json"
    ).json()
    orchestrator.orchestrator_run(now=NOW)
    held = Position.objects.get(allocation_id=made["id"]).quantity
    assert held > 0
    url = f"/api/trading/allocations/{made['id']}"

    off = api_client.patch(url, {"enabled": False}, format="json").json()
    assert (off["enabled"], D(off["book_quantity"])) == (False, held)
    on = api_client.patch(url, {"enabled": True, "capital_pct": "0.4"}, format="json").json()
    assert (on["enabled"], on["capital_pct"]) == (True, "0.400000")
    winding = api_client.delete(url)
    assert winding.status_code == 200
    assert (winding.json()["enabled"], winding.json()["winding_down"]) == (True, True)
    assert api_client.patch(url, {"capital_pct": "0.3"}, format="json").status_code == 200

    store_candles(active.instrument, hourly_rows(6))  # the next candle closes
    cycle = orchestrator.orchestrator_run(now=NOW + timedelta(hours=1)).cycle
    allocation = StrategyAllocation.objects.get(pk=made["id"])
    assert (allocation.enabled, allocation.winding_down) == (False, False)
    assert Position.objects.get(allocation=allocation).quantity == 0
    exit_order = Order.objects.filter(allocation=allocation, side="SELL", source=OrderSource.STRATEGY).get()
    assert exit_order.status == OrderStatus.FILLED and exit_order.quantity == held
    assert not Order.objects.filter(allocation=allocation, status=OrderStatus.OPEN).exists()  # stop, target
    assert [e["outcome"] for e in cycle.summary] == ["acted"]
    kinds = list(StrategyDecision.objects.filter(strategy=active).values_list("kind", flat=True))
    assert kinds.count(DecisionKind.WOUND_DOWN) == 2  # winding down asked, then done
    assert api_client.delete(url).json()["enabled"] is False  # already off: nothing more


def test_the_lifecycle_policy_allocates_active_strategies_and_winds_down_retired_ones(
    api_client, paper_account, btcusdt, active, settings
):
    settings.TRADING_AUTO_ALLOCATE_CAPITAL_PCT = "0.25"
    draft = _strategy(btcusdt, "Not yet", status=StrategyStatus.DRAFT)
    btcusd = _market("BTCUSD", "bitstamp")
    _strategy(btcusd, "Dollar")  # cannot trade on a USDT account: never allocated
    api_client.patch(
        f"/api/trading/accounts/{paper_account.pk}",
        {"auto_trading": True, "auto_allocate": True},
        format="json",
    )

    first = orchestrator.orchestrator_run(now=NOW).cycle

    (allocation,) = StrategyAllocation.objects.filter(account=paper_account)
    assert (allocation.strategy, allocation.capital_pct, allocation.created_by) == (
        active,
        D("0.25"),
        "lifecycle policy",
    )
    assert [e["outcome"] for e in first.summary] == ["lifecycle", "acted"]
    assert first.summary[0]["action"] == "allocate" and first.summary[0]["allocation"] == allocation.pk
    assert Position.objects.get(allocation=allocation).quantity > 0
    assert not StrategyAllocation.objects.filter(strategy=draft).exists()

    active.status = StrategyStatus.RETIRED
    active.save()
    store_candles(btcusdt, hourly_rows(6))
    second = orchestrator.orchestrator_run(now=NOW + timedelta(hours=1)).cycle

    allocation.refresh_from_db()
    assert [e.get("action", e["outcome"]) for e in second.summary] == ["wind_down", "acted"]
    assert (allocation.enabled, Position.objects.get(allocation=allocation).quantity) == (False, 0)
    assert StrategyDecision.objects.filter(strategy=active, kind=DecisionKind.WOUND_DOWN).count() == 2


def test_with_the_policy_off_the_api_and_health_say_what_waits_for_an_operator(
    api_client, paper_account, btcusdt, active, settings
):
    retired = _strategy(btcusdt, "Old")
    old = StrategyAllocation.objects.create(account=paper_account, strategy=retired, capital_pct=D("0.2"))
    retired.status = StrategyStatus.RETIRED
    retired.save()
    api_client.patch(f"/api/trading/accounts/{paper_account.pk}", {"auto_trading": True}, format="json")

    cycle = orchestrator.orchestrator_run(now=NOW).cycle

    assert StrategyAllocation.objects.filter(account=paper_account).count() == 1  # nothing allocated
    (skip,) = cycle.summary
    assert skip["code"] == "strategy_inactive"
    assert f"DELETE /api/trading/allocations/{old.pk}" in skip["reason"]
    lifecycle = api_client.get(f"/api/trading/accounts/{paper_account.pk}").json()["lifecycle"]
    assert (lifecycle["policy"], lifecycle["allowed"]) == (False, True)
    assert [(s["action"], s["strategy_id"]) for s in lifecycle["plan"]] == [
        ("wind_down", retired.strategy_id),
        ("allocate", active.strategy_id),
    ]
    health = check_trading_orchestrator(now=NOW)
    assert health["status"] == "degraded"
    assert "1 active strategies to allocate, 1 retired ones to wind down" in health["message"]
    assert health["waiting"] == {"allocate": 1, "wind_down": 1}

    settings.TRADING_AUTO_ALLOCATE = False  # the operator forbids the policy: the flag does nothing
    api_client.patch(f"/api/trading/accounts/{paper_account.pk}", {"auto_allocate": True}, format="json")
    orchestrator.orchestrator_run(now=NOW + timedelta(hours=1))
    assert StrategyAllocation.objects.filter(account=paper_account).count() == 1


def test_the_orchestrators_records_are_readable_and_each_user_sees_only_their_own(
    api_client, paper_account, active, make_account, staff_user
):
    paper_account.auto_trading = True
    paper_account.save()
    mine = StrategyAllocation.objects.create(account=paper_account, strategy=active, capital_pct=D("0.5"))
    outsider = get_user_model().objects.create_user(username="mallory", password="x" * 12)
    cycle = orchestrator.orchestrator_run(now=NOW).cycle
    performance.performance_record_all(now=NOW)

    cycles = api_client.get("/api/trading/cycles").json()
    assert (
        cycles["results"][0]["id"] == cycle.pk and cycles["results"][0]["summary"][0]["allocation"] == mine.pk
    )
    assert api_client.get(f"/api/trading/cycles/{cycle.pk}").json()["acted"] == 1
    assert _client(outsider).get(f"/api/trading/cycles/{cycle.pk}").json()["summary"] == []
    assert len(_client(staff_user).get(f"/api/trading/cycles/{cycle.pk}").json()["summary"]) == 1
    actions = api_client.get("/api/trading/actions", {"strategy_id": active.strategy_id}).json()["results"]
    assert [(a["allocation"], a["signal"], a["cycle"]) for a in actions] == [(mine.pk, "buy", cycle.pk)]
    assert _client(outsider).get("/api/trading/actions").json()["results"] == []
    records = api_client.get("/api/trading/performance", {"allocation": mine.pk}).json()["results"]
    assert len(records) == 1 and records[0]["strategy_id"] == active.strategy_id
    assert records[0]["trades"] == 1
    assert _client(outsider).get("/api/trading/performance").json()["results"] == []
    assert _client(outsider).get(f"/api/trading/allocations/{mine.pk}").status_code == 404
    assert api_client.get("/api/trading/actions", {"allocation": "x"}).status_code == 400
