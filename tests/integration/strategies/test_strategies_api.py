"""The strategies API: create with validation, list with filters, edit into versions, status, delete."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from apps.strategies.models import DecisionKind, Strategy, StrategyDecision, StrategyStatus
from apps.strategies.services.backtests import backtest_create
from tests.integration.strategies.conftest import make_strategy

pytestmark = pytest.mark.django_db

STRATEGY_ID = re.compile(r"^strategy_RSI_Mean_Reversion_BTCUSD_\d{14}$")


def _fields(response) -> dict:
    assert response.status_code == 400, response.content
    return response.json()["error"]["fields"]


def test_it_creates_the_briefs_strategy_with_an_id_in_the_briefs_format(api_client, btc_hourly, rsi_document):
    response = api_client.post("/api/strategies", rsi_document, format="json")

    assert response.status_code == 201
    body = response.json()
    assert STRATEGY_ID.match(body["strategy_id"])
    assert (body["symbol"], body["exchange"], body["timeframe"]) == ("BTCUSD", "coinbase", "1h")
    assert (body["status"], body["source"], body["version"]) == ("draft", "user", 1)
    assert body["rules"] == rsi_document["rules"]
    assert body["parameters"] == rsi_document["parameters"]
    assert api_client.get(body["url"]).json()["strategy_id"] == body["strategy_id"]


def test_two_strategies_created_in_the_same_second_get_different_ids(api_client, btc_hourly, rsi_document):
    first = api_client.post("/api/strategies", rsi_document, format="json").json()["strategy_id"]
    second = api_client.post("/api/strategies", rsi_document, format="json").json()["strategy_id"]

    assert first != second
    assert STRATEGY_ID.match(second)


def test_an_invalid_condition_is_a_400_quoting_the_condition_the_position_and_what_was_expected(
    api_client, btc_hourly, rsi_document
):
    rsi_document["rules"][1]["condition"] = "RSI >> 70"

    response = api_client.post("/api/strategies", rsi_document, format="json")

    problem = _fields(response)["rules"]["1"]
    expected = "a number, field, indicator or parameter"
    assert (problem["position"], problem["expected"]) == ("5", expected)
    assert problem["condition"] == [f"RSI >> 70: unexpected '>' at position 5; expected {expected}"]
    assert response.json()["error"]["message"] == f"rules: 1: condition: {problem['condition'][0]}"
    assert Strategy.objects.count() == 0


@pytest.mark.parametrize(
    ("rule", "field", "says"),
    [
        ({"condition": "RSX(14) < 30", "action": "buy"}, "condition", "unknown indicator 'RSX'"),
        ({"condition": "RSI < rsi_floor", "action": "buy"}, "condition", "unknown name 'rsi_floor'"),
        ({"condition": "RSI(14, 3) < 30", "action": "buy"}, "condition", "RSI given 2 arguments"),
        ({"condition": "MACD.histo > 0", "action": "buy"}, "condition", "an output of MACD"),
        ({"condition": "RSI < 30", "action": "hold"}, "action", "'hold' is not an action"),
        ({"condition": "RSI > 70", "action": "short"}, "action", "set allow_short to true"),
        ({"condition": "RSI < 30", "action": "buy", "priority": "high"}, "priority", "whole number"),
        ({"action": "buy"}, "condition", "this field is required"),
    ],
)
def test_it_rejects_a_rule_naming_the_rule_and_the_problem(
    api_client, btc_hourly, rsi_document, rule, field, says
):
    rsi_document["rules"].append(rule)

    problem = _fields(api_client.post("/api/strategies", rsi_document, format="json"))["rules"]["2"]

    assert says in problem[field][0]


def test_shorting_rules_are_accepted_when_shorting_is_allowed(api_client, btc_hourly, rsi_document):
    rsi_document["parameters"]["allow_short"] = True
    rsi_document["rules"] += [
        {"condition": "RSI > 80", "action": "short"},
        {"condition": "RSI < 50", "action": "cover"},
    ]

    assert api_client.post("/api/strategies", rsi_document, format="json").status_code == 201


def test_it_rejects_an_unknown_indicator_in_the_indicator_list(api_client, btc_hourly, rsi_document):
    rsi_document["indicators"] = ["RSI", "SUPERTREND"]

    problem = _fields(api_client.post("/api/strategies", rsi_document, format="json"))["indicators"]["1"]

    assert "unknown indicator 'SUPERTREND'" in problem[0]
    assert "valid: ADX" in problem[0]


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("stop_loss_pct", 1.5, "stop_loss_pct must be a fraction above 0 and below 1"),
        ("trailing_stop_pct", -0.1, "trailing_stop_pct must be a fraction above 0"),
        ("position_size_pct", 1.2, "position_size_pct must be a fraction above 0 and at most 1"),
        ("max_holding_bars", 0.5, "max_holding_bars must be a whole number of bars >= 1"),
        ("allow_short", "yes", "allow_short must be true or false"),
        ("rsi_oversold", "thirty", "must be a finite number"),
        ("close", 3, "is a price field, keyword, series or indicator name"),
    ],
)
def test_it_rejects_an_invalid_parameter_by_name(api_client, btc_hourly, rsi_document, name, value, says):
    rsi_document["parameters"][name] = value

    problem = _fields(api_client.post("/api/strategies", rsi_document, format="json"))["parameters"][name]

    assert says in problem[0]


def test_an_indicator_parameter_out_of_range_is_reported_in_the_rule_that_reads_it(
    api_client, btc_hourly, rsi_document
):
    rsi_document["parameters"]["rsi_period"] = 0

    problem = _fields(api_client.post("/api/strategies", rsi_document, format="json"))["rules"]["0"]

    assert "period must be a whole number from 1" in problem["condition"][0]


def test_rules_that_never_open_a_position_are_rejected(api_client, btc_hourly, rsi_document):
    rsi_document["rules"] = [{"condition": "RSI > 70", "action": "sell"}]

    assert (
        "no rule opens a position"
        in _fields(api_client.post("/api/strategies", rsi_document, format="json"))["rules"][0]
    )


def test_an_unknown_symbol_is_a_400_listing_the_known_ones(api_client, btc_hourly, rsi_document):
    rsi_document["symbol"] = "DOGEUSD"

    problem = _fields(api_client.post("/api/strategies", rsi_document, format="json"))["symbol"][0]

    assert "unknown symbol 'DOGEUSD'" in problem
    assert "known symbols: BTCUSD" in problem


def test_a_timeframe_without_candles_is_a_400_listing_the_stored_ones(api_client, btc_hourly, rsi_document):
    rsi_document["timeframe"] = "4h"

    problem = _fields(api_client.post("/api/strategies", rsi_document, format="json"))["timeframe"][0]

    assert problem == "no 4h candles are stored for BTCUSD on coinbase; stored timeframes: 1h"


def test_creating_needs_authentication(anon_client, btc_hourly, rsi_document):
    assert anon_client.post("/api/strategies", rsi_document, format="json").status_code == 401


def test_the_list_filters_by_status_and_symbol_and_paginates(api_client, btc_hourly):
    active = [make_strategy(btc_hourly, name=f"Active {i}") for i in range(3)]
    make_strategy(btc_hourly, name="Paused", status=StrategyStatus.PAUSED)

    page = api_client.get("/api/strategies", {"status": "active", "symbol": "BTC/USD", "limit": 2}).json()
    rest = api_client.get(page["next"]).json()

    assert page["count"] == 3
    ids = [s["strategy_id"] for s in page["results"] + rest["results"]]
    assert sorted(ids) == sorted(s.strategy_id for s in active)
    assert api_client.get("/api/strategies", {"symbol": "BTCUSDT"}).json()["count"] == 0
    assert api_client.get("/api/strategies", {"status": "paused"}).json()["count"] == 1
    assert api_client.get("/api/strategies", {"status": "sleeping"}).status_code == 400


@pytest.fixture
def own_strategy(btc_hourly, user):
    """The RSI strategy, made by the user whose token the client holds: theirs to change."""
    return make_strategy(btc_hourly, owner=user)


def test_editing_rules_makes_a_new_version_and_keeps_the_old_one(api_client, own_strategy):
    url = f"/api/strategies/{own_strategy.strategy_id}"
    rules = [
        {"condition": "RSI < 25", "action": "buy", "priority": 1},
        {"condition": "RSI > 75", "action": "sell"},
    ]

    response = api_client.patch(url, {"rules": rules, "reason": "wider bands"}, format="json")

    assert response.status_code == 200
    assert (response.json()["version"], response.json()["rules"]) == (2, rules)
    versions = api_client.get(f"{url}/versions").json()["results"]
    assert [(v["number"], v["rules"][0]["condition"]) for v in versions] == [(2, "RSI < 25"), (1, "RSI < 30")]
    decision = api_client.get(f"{url}/decisions").json()["results"][0]
    assert (decision["kind"], decision["numbers"]) == ("edited", {"version": 2, "previous_version": 1})
    assert "wider bands" in decision["reason"]


def test_a_patch_without_changes_to_the_document_makes_no_version(api_client, own_strategy):
    url = f"/api/strategies/{own_strategy.strategy_id}"
    same = {"parameters": own_strategy.current_version.parameters, "name": "Renamed"}

    body = api_client.patch(url, same, format="json").json()

    assert (body["version"], body["name"]) == (1, "Renamed")


def test_an_invalid_edit_is_a_400_and_changes_nothing(api_client, own_strategy):
    url = f"/api/strategies/{own_strategy.strategy_id}"

    response = api_client.patch(
        url, {"rules": [{"condition": "RSI <", "action": "buy"}], "status": "paused"}, format="json"
    )

    assert "RSI <: expected a number" in _fields(response)["rules"]["0"]["condition"][0]
    own_strategy.refresh_from_db()
    assert (own_strategy.status, own_strategy.current_version.number, own_strategy.versions.count()) == (
        "active",
        1,
        1,
    )


@pytest.mark.parametrize(("status", "kind"), [("paused", "paused"), ("retired", "retired"), ("active", None)])
def test_a_status_change_is_recorded_as_a_decision(api_client, own_strategy, status, kind):
    response = api_client.patch(
        f"/api/strategies/{own_strategy.strategy_id}", {"status": status}, format="json"
    )

    assert response.json()["status"] == status
    kinds = list(StrategyDecision.objects.filter(strategy=own_strategy).values_list("kind", flat=True))
    assert kinds == ([kind] if kind else [])


def test_deleting_a_fresh_draft_deletes_it(api_client, btc_hourly, user):
    draft = make_strategy(btc_hourly, status=StrategyStatus.DRAFT, owner=user)

    response = api_client.delete(f"/api/strategies/{draft.strategy_id}")

    assert response.status_code == 204
    assert not Strategy.objects.filter(pk=draft.pk).exists()


def test_deleting_a_draft_with_a_backtest_retires_it_keeps_the_backtest_and_says_so(
    api_client, btc_hourly, user
):
    draft = make_strategy(btc_hourly, status=StrategyStatus.DRAFT, owner=user)
    backtest = backtest_create(
        strategy=draft, start=datetime(2019, 1, 1, tzinfo=UTC), end=datetime(2019, 2, 1, tzinfo=UTC)
    )

    response = api_client.delete(f"/api/strategies/{draft.strategy_id}")

    assert response.status_code == 200
    assert response.json()["deleted"] is False
    assert "retired and kept" in response.json()["message"]
    draft.refresh_from_db()
    assert draft.status == StrategyStatus.RETIRED
    assert draft.decisions.get().kind == DecisionKind.RETIRED
    assert draft.backtests.get() == backtest


def test_deleting_an_active_strategy_retires_it(api_client, own_strategy):
    assert api_client.delete(f"/api/strategies/{own_strategy.strategy_id}").status_code == 200

    own_strategy.refresh_from_db()
    assert own_strategy.status == StrategyStatus.RETIRED


def test_an_unknown_strategy_is_a_404(api_client, btc_hourly):
    response = api_client.get("/api/strategies/strategy_Nope_BTCUSD_20240101000000")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
