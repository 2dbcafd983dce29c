"""Ownership where strategies meet accounts: a strategy a live account trades is changed by staff only,
an account trades only what its owner may see, and every order and decision names who made it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from apps.strategies.models import DecisionKind, Strategy, StrategyDecision, StrategyStatus
from apps.trading import orchestrator
from apps.trading.models import AccountKind, Order, OrderSource, StrategyAllocation
from tests.integration.active_strategies import strategy_create_as
from tests.integration.ownership.conftest import client_for

from .test_orchestrator import ALWAYS_BUY, NOW, PARAMETERS

pytestmark = pytest.mark.django_db
D = Decimal
EDITS = {
    "rules": lambda c, url: c.patch(url, {"rules": ALWAYS_BUY * 2}, format="json"),
    "pause": lambda c, url: c.patch(url, {"status": "paused"}, format="json"),
    "delete": lambda c, url: c.delete(url),
}


def _strategy(instrument, owner, name: str = "Always in") -> Strategy:
    return strategy_create_as(
        name=name,
        type="custom",
        instrument=instrument,
        timeframe="1h",
        parameters=PARAMETERS,
        indicators=[],
        rules=ALWAYS_BUY,
        status=StrategyStatus.ACTIVE,
        owner=owner,
    )


def _state(strategy: Strategy) -> tuple:
    strategy.refresh_from_db()
    return strategy.status, strategy.current_version_id, strategy.decisions.count()


@pytest.fixture
def rival(db):
    return get_user_model().objects.create_user(username="rival", password="another horse battery")


@pytest.mark.parametrize("edit", list(EDITS))
def test_a_strategy_a_live_account_trades_is_changed_by_staff_only(
    edit, user, staff_user, make_account, btcusdt
):
    mine = _strategy(btcusdt, user)
    live = make_account(name="Live", kind=AccountKind.LIVE)
    StrategyAllocation.objects.create(account=live, strategy=mine, capital_pct=D("0.5"))
    url = f"/api/strategies/{mine.strategy_id}"
    before = _state(mine)

    refused = EDITS[edit](client_for(user), url)

    assert refused.status_code == 403, refused.content
    error = refused.json()["error"]
    assert error["code"] == "staff_only"
    assert f"traded by live account {live.pk}" in error["message"]
    assert _state(mine) == before
    assert EDITS[edit](client_for(staff_user), url).status_code == 200
    assert _state(mine) != before


@pytest.mark.parametrize("allocation", ["on a paper account", "switched off on a live account"])
def test_the_owner_changes_a_strategy_no_live_account_trades(allocation, user, make_account, btcusdt):
    mine = _strategy(btcusdt, user)
    if allocation == "on a paper account":
        account, enabled = make_account(name="Paper"), True
    else:
        account, enabled = make_account(name="Live", kind=AccountKind.LIVE), False
    StrategyAllocation.objects.create(account=account, strategy=mine, capital_pct=D("0.5"), enabled=enabled)

    response = EDITS["rules"](client_for(user), f"/api/strategies/{mine.strategy_id}")

    assert response.status_code == 200, response.content


def test_another_users_strategy_cannot_be_allocated_and_reads_like_an_unknown_one(
    api_client, paper_account, rival, btcusdt
):
    theirs = _strategy(btcusdt, rival)

    response = api_client.post(
        "/api/trading/allocations", {"strategy_id": theirs.strategy_id, "capital_pct": "0.5"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"strategy_id": [f"no strategy {theirs.strategy_id!r}"]}
    assert not StrategyAllocation.objects.exists()


def test_the_lifecycle_policy_allocates_only_what_the_accounts_owner_may_see(
    api_client, paper_account, user, rival, btcusdt, settings
):
    settings.TRADING_AUTO_ALLOCATE_CAPITAL_PCT = "0.25"
    mine = _strategy(btcusdt, user, "Mine")
    system = _strategy(btcusdt, None, "The system's")
    _strategy(btcusdt, rival, "The rival's")  # would let the rival steer this account
    api_client.patch(
        f"/api/trading/accounts/{paper_account.pk}",
        {"auto_trading": True, "auto_allocate": True},
        format="json",
    )

    orchestrator.orchestrator_run(now=NOW)

    allocated = set(
        StrategyAllocation.objects.filter(account=paper_account).values_list("strategy", flat=True)
    )
    assert allocated == {mine.pk, system.pk}
    decisions = StrategyDecision.objects.filter(kind=DecisionKind.ALLOCATED)
    assert set(decisions.values_list("actor", flat=True)) == {"lifecycle policy"}


def test_orders_and_decisions_name_who_made_them(api_client, paper_account, user, btcusdt):
    mine = _strategy(btcusdt, user)
    paper_account.auto_trading = True
    paper_account.save()
    made = api_client.post(
        "/api/trading/allocations", {"strategy_id": mine.strategy_id, "capital_pct": "0.5"}, format="json"
    ).json()
    manual = api_client.post(
        "/api/trading/trades",
        {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.1"},
        format="json",
    ).json()

    orchestrator.orchestrator_run(now=NOW)
    call_command("place_order", "--account", paper_account.pk, "--symbol", "BTCUSDT", "--side", "BUY",
                 "--type", "MARKET", "--quantity", "0.1")  # fmt: skip

    entry = Order.objects.get(source=OrderSource.STRATEGY)
    placers = {
        "api": Order.objects.get(pk=manual["id"]).created_by,
        "strategy": entry.created_by,
        "protective": set(entry.children.values_list("created_by", flat=True)),
        "command": Order.objects.get(source=OrderSource.COMMAND).created_by,
    }
    assert placers == {
        "api": "trader",
        "strategy": "orchestrator",
        "protective": {"orchestrator"},
        "command": "place_order command",
    }
    assert manual["created_by"] == "trader"
    allocated = StrategyDecision.objects.get(strategy=mine, kind=DecisionKind.ALLOCATED)
    assert (allocated.actor, made["created_by"]) == ("trader", "trader")
