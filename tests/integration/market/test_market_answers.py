"""Market answers are rendered once per write of their candles: reused, revalidated, never stale."""

from __future__ import annotations

import pandas as pd
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.market.api import answers
from apps.market.services.candles import candles_store

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    "/api/market/data?symbol=BTCUSD&timeframe=1h&limit=300",
    "/api/market/data/indicators?symbol=BTCUSD&timeframe=1h&indicators=RSI,BB(20,2)&limit=300",
    "/api/market/data/patterns?symbol=BTCUSD&timeframe=1h&limit=300",
]


def _get(api_client, path: str, **headers):
    """The response and the SQL it took."""
    with CaptureQueriesContext(connection) as queries:
        response = api_client.get(path, **headers)
    return response, [query["sql"] for query in queries.captured_queries]


def _reads_candles(queries: list[str]) -> bool:
    return any('market_candle"' in sql or "market_candle " in sql for sql in queries)


def _store_next_hour(instrument) -> None:
    """One more closed candle after the shipped history's last (2019-10-17 09:00)."""
    frame = pd.DataFrame(
        {"open": [8000.0], "high": [8100.0], "low": [7900.0], "close": [8050.0], "volume": [12.5]},
        index=pd.DatetimeIndex([pd.Timestamp("2019-10-17T10:00:00Z")], name="open_time"),
    )
    assert candles_store(instrument=instrument, timeframe="1h", frame=frame).inserted == 1


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_repeated_query_is_answered_from_its_rendering_not_the_candles(api_client, btc_hourly, path):
    first, first_queries = _get(api_client, path)
    again, again_queries = _get(api_client, path)

    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert _reads_candles(first_queries)
    assert not _reads_candles(again_queries)
    assert len(again_queries) < len(first_queries)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_the_next_answer_after_a_write_is_built_from_the_new_candles(api_client, btc_hourly, path):
    api_client.get(path)
    _store_next_hour(btc_hourly)

    after, queries = _get(api_client, path)

    assert after.status_code == 200
    assert _reads_candles(queries)
    body = after.json()
    times = [c["time"] for c in body["candles"]] if "candles" in body else body.get("times")
    if times is not None:  # candles and indicators; patterns answer whatever they find there
        assert times[-1] == "2019-10-17T10:00:00+00:00"


def test_an_etag_sent_back_gets_304_until_the_series_is_written(api_client, btc_hourly):
    path = ENDPOINTS[0]
    first = api_client.get(path)
    etag = first["ETag"]
    assert etag.startswith('W/"') and first["Cache-Control"] == "private, no-cache"

    unchanged = api_client.get(path, HTTP_IF_NONE_MATCH=etag)
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged["ETag"] == etag

    _store_next_hour(btc_hourly)
    changed = api_client.get(path, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert changed.json()["candles"][-1]["time"] == "2019-10-17T10:00:00+00:00"


def test_another_process_reuses_the_answer_from_the_shared_cache(api_client, btc_hourly):
    path = ENDPOINTS[1]
    first = api_client.get(path)
    answers.memory.clear()  # as a second web process, which has not rendered it

    again, queries = _get(api_client, path)

    assert again.content == first.content
    assert not _reads_candles(queries)


def test_no_answer_is_kept_when_the_cache_time_is_zero(api_client, btc_hourly, settings):
    settings.MARKET_ANSWER_CACHE_SECONDS = 0
    path = ENDPOINTS[0]
    first = api_client.get(path)

    again, queries = _get(api_client, path)

    assert again.content == first.content
    assert _reads_candles(queries)


def test_an_answer_whose_instrument_is_gone_is_not_reused(api_client, btc_hourly):
    path = ENDPOINTS[0]
    assert api_client.get(path).status_code == 200
    btc_hourly.delete()

    response = api_client.get(path)

    assert response.status_code == 400
    assert "unknown symbol" in response.json()["error"]["fields"]["symbol"][0]


def test_a_refused_query_is_never_kept(api_client, btc_hourly):
    path = "/api/market/data?symbol=BTCUSD&timeframe=4h"
    for _ in range(2):
        response, queries = _get(api_client, path)
        assert response.status_code == 400
        assert any("market_instrument" in sql for sql in queries)  # validated each time


def test_the_memory_of_a_process_keeps_the_newest_answers_within_its_bytes(monkeypatch):
    monkeypatch.setattr(answers, "MEMORY_BYTES", 250)
    memory = answers._Memory()
    for name in ("a", "b", "c"):
        memory.put(name, answers.Answer(series_id=1, written="v", body=b"x" * 100, expires=0.0))
    assert memory.get("a") is None  # the oldest went to make room
    assert memory.get("b") is not None and memory.get("c") is not None
    memory.put("b", answers.Answer(series_id=1, written="w", body=b"y" * 50, expires=0.0))
    assert memory.get("b").body == b"y" * 50
