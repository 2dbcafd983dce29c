"""Hostile requests get a 4xx in the error shape and change nothing: the ones that were 500s."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from apps.market.models import Instrument
from apps.strategies.models import Backtest, Strategy
from tests.integration.market.conftest import btc_hourly

__all__ = ["btc_hourly"]

pytestmark = pytest.mark.django_db


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "fields"} <= set(body["error"])
    return body["error"]


def _raw(client: APIClient, path: str, body: str | bytes):
    return client.post(path, data=body, content_type="application/json")


@pytest.mark.parametrize("endpoint", ["analyses", "signals", "events"])
def test_a_time_zone_offset_the_database_cannot_hold_is_read_in_utc(api_client, endpoint):
    response = api_client.get(f"/api/market/{endpoint}", {"since": "2020-01-01T00:00:00-22:56"})

    assert response.status_code == 200


def test_a_time_outside_what_can_be_stored_is_a_400(api_client):
    response = api_client.get("/api/market/analyses", {"since": "0001-01-01T00:00:00+05:00"})

    assert response.status_code == 400
    assert "outside the range" in _error(response)["fields"]["since"][0]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/strategies/%00abc", None),
        ("post", "/api/strategies/optimize", {"strategy_id": "\u00fe\u00006"}),
        ("post", "/api/strategies/backtest", {"strategy_id": "a\u0000b", "start_date": "2019-01-01"}),
        ("get", "/api/market/data?symbol=BTC%00USD&timeframe=1h", None),
    ],
)
def test_a_nul_character_is_refused_at_the_edge(api_client, method, path, body):
    response = getattr(api_client, method)(path, body, format="json") if body else api_client.get(path)

    assert response.status_code == 400
    assert "NUL" in _error(response)["message"]


def test_a_lone_surrogate_in_a_body_is_refused(api_client):
    response = _raw(api_client, "/api/strategies", '{"name": "\\ud800", "symbol": "BTCUSD"}')

    assert response.status_code == 400
    assert "lone surrogate" in _error(response)["message"]


@pytest.mark.parametrize("depth", [100_000, 5_000, 33])
def test_deeply_nested_json_is_refused(api_client, depth):
    nested = "[" * depth + "]" * depth
    body = '{"name": "x", "indicators": ' + nested + "}"

    response = _raw(api_client, "/api/strategies", body)

    assert response.status_code == 400
    assert "nested deeper than 32 levels" in _error(response)["message"]
    assert not Strategy.objects.exists()


def test_a_body_over_the_limit_is_a_413(api_client, settings):
    body = json.dumps({"name": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)})

    response = _raw(api_client, "/api/strategies", body)

    assert response.status_code == 413
    assert _error(response)["code"] == "too_large"


@pytest.mark.parametrize("path", ["/api/trading/trades/abc/cancel", "/api/nothing/here"])
def test_a_post_to_an_unknown_path_is_a_404_in_the_error_shape_even_with_a_session(path):
    user = get_user_model().objects.create_user(username="browser", password="correct horse battery")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.post(path, {}, format="json")

    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"


def test_a_session_post_without_its_csrf_token_is_refused_in_the_error_shape(btc_hourly):
    user = get_user_model().objects.create_user(username="browser", password="correct horse battery")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.post("/api/strategies/backtest", {}, format="json")

    assert response.status_code == 403
    assert _error(response)["code"] in ("csrf_failed", "permission_denied")


@pytest.mark.parametrize(
    ("parameters", "says"),
    [
        ({"rsi_period": 10**400}, "from -1e+09 to 1e+09"),
        ({"max_holding_bars": 1e30}, "from -1e+09 to 1e+09"),
        ({"rsi_period": 14, "stop_loss_pct": 10**30}, "from -1e+09 to 1e+09"),
    ],
)
def test_numbers_outside_the_documented_range_are_refused_before_the_engine(
    api_client, btc_hourly, parameters, says
):
    document = {
        "name": "Huge",
        "type": "custom",
        "symbol": "BTCUSD",
        "timeframe": "1h",
        "parameters": parameters,
        "indicators": ["RSI"],
        "rules": [{"condition": "RSI(14) < 30", "action": "buy", "priority": 1}],
    }

    response = api_client.post("/api/strategies", document, format="json")

    assert response.status_code == 400
    assert says in json.dumps(_error(response)["fields"])
    assert not Strategy.objects.exists() and not Backtest.objects.exists()


def test_hostile_input_changes_nothing(api_client, btc_hourly):
    def counts() -> tuple[int, int, int]:
        return Strategy.objects.count(), Backtest.objects.count(), Instrument.objects.count()

    before = counts()

    _raw(api_client, "/api/strategies", '{"name": "\\ud800"}')
    _raw(api_client, "/api/strategies", "[" * 100_000)

    assert (
        Strategy.objects.count(),
        Backtest.objects.count(),
        Instrument.objects.count(),
    ) == before


@pytest.mark.django_db
def test_a_query_naming_a_single_value_twice_is_a_400_naming_it(api_client):
    response = api_client.get("/api/trading/trades?status=FILLED&status=NEW")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"status": ["given more than once"]}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/strategies?simbol=BTCUSD"),  # a list with filters
        ("get", "/api/health?simbol=BTCUSD"),  # public, no parameters at all
        ("get", "/api/trading/portfolio?simbol=BTCUSD"),  # a query serializer
        ("get", "/api/market/data?symbol=BTCUSD&simbol=BTCUSD"),
        ("head", "/api/strategies?simbol=BTCUSD"),
    ],
)
def test_a_query_parameter_the_schema_does_not_document_is_a_400_naming_it(api_client, method, path):
    response = getattr(api_client, method)(path)

    assert response.status_code == 400
    if method != "head":
        error = _error(response)
        assert error["fields"] == {"simbol": ["not a query parameter of this endpoint"]}
        assert error["message"].startswith("simbol: not a query parameter")


@pytest.mark.django_db
def test_the_refusal_lists_what_the_endpoint_reads(api_client):
    error = _error(api_client.get("/api/trading/trades?stat=FILLED"))

    assert "it reads account, limit, offset, status, symbol" in error["message"]


@pytest.mark.django_db
def test_an_undocumented_query_parameter_on_a_post_creates_nothing(api_client):
    body = {"name": "Dip", "rules": [{"when": "RSI(14) < 30", "action": "BUY"}]}

    response = api_client.post("/api/strategies?dry_run=1", body, format="json")

    assert response.status_code == 400
    assert _error(response)["fields"] == {"dry_run": ["not a query parameter of this endpoint"]}
    assert not Strategy.objects.exists()


@pytest.mark.django_db
def test_documented_query_parameters_are_read(api_client):
    """The trades list read ``status``, ``symbol`` and ``account`` without the schema naming them."""
    assert api_client.get("/api/trading/trades?status=FILLED&symbol=BTCUSD").status_code == 200
    assert api_client.get("/api/strategies?symbol=BTCUSD&limit=5").status_code == 200
