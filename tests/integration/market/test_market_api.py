"""The market API of the brief: candles, indicators and patterns, with 400s that name the field."""

from __future__ import annotations

import numpy as np
import pytest

from apps.market import selectors
from apps.market.domain.indicators import compute

pytestmark = pytest.mark.django_db


def _error_fields(response) -> dict:
    assert response.status_code == 400, response.content
    return response.json()["error"]["fields"]


def test_market_data_returns_the_newest_candles_oldest_first(api_client, btc_hourly):
    body = api_client.get("/api/market/data?symbol=BTCUSD&timeframe=1h&limit=100").json()

    times = [candle["time"] for candle in body["candles"]]
    assert body["count"] == 100
    assert times == sorted(times)
    assert times[-1] == "2019-10-17T09:00:00+00:00"
    assert set(body["candles"][0]) == {"time", "open", "high", "low", "close", "volume"}
    assert (body["symbol"], body["exchange"], body["timeframe"]) == ("BTCUSD", "coinbase", "1h")


def test_market_data_honours_start_and_end(api_client, btc_hourly):
    body = api_client.get(
        "/api/market/data?symbol=btcusd&timeframe=1h&start=2018-01-01T00:00:00Z&end=2018-01-01T05:00:00Z&limit=1000"
    ).json()

    assert [c["time"][11:16] for c in body["candles"]] == [
        "00:00",
        "01:00",
        "02:00",
        "03:00",
        "04:00",
        "05:00",
    ]


def test_indicators_are_aligned_to_candle_times_and_equal_the_full_history_values(api_client, btc_hourly):
    body = api_client.get(
        "/api/market/data/indicators?symbol=BTCUSD&timeframe=1h&indicators=RSI,MACD,SMA(50),BB(20,2)&limit=300"
    ).json()

    full = selectors.candles_frame(instrument=btc_hourly, timeframe="1h")
    assert body["times"] == [t.isoformat() for t in full.index[-300:]]
    assert set(body["indicators"]) == {"RSI(14)", "MACD(12,26,9)", "SMA(50)", "BB(20,2)"}
    assert set(body["indicators"]["MACD(12,26,9)"]) == {"macd", "signal", "histogram"}
    for label, name, params, output in [
        ("RSI(14)", "RSI", (14,), "value"),
        ("MACD(12,26,9)", "MACD", (12, 26, 9), "signal"),
    ]:
        expected = compute(full, name, params)[output][-300:]
        np.testing.assert_allclose(body["indicators"][label][output], expected, rtol=1e-9)


def test_warm_up_bars_are_null_not_nan(api_client, db, tmp_path):
    from apps.market.services.candles import candles_import_file

    path = tmp_path / "short.csv"
    start = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        + "\n".join(f"{start + i * 3_600_000},10,12,9,{10 + i % 3},5" for i in range(30))
    )
    candles_import_file(path=path, symbol="ETHUSDT", timeframe="1h", exchange="binance")

    values = api_client.get(
        "/api/market/data/indicators?symbol=ETHUSDT&timeframe=1h&indicators=SMA(20)"
    ).json()["indicators"]["SMA(20)"]["value"]

    assert values[:19] == [None] * 19
    assert values[19] == pytest.approx(np.mean([10 + i % 3 for i in range(20)]))


@pytest.mark.parametrize(
    ("query", "field", "hint"),
    [
        ("symbol=NOPE&timeframe=1h", "symbol", "known symbols: BTCUSD"),
        ("symbol=BTCUSD&timeframe=2h", "timeframe", "valid choice"),
        ("symbol=BTCUSD&timeframe=4h", "timeframe", "stored: 1h"),
        ("symbol=BTCUSD&timeframe=1h&limit=0", "limit", "greater than or equal to 1"),
        ("symbol=BTCUSD&timeframe=1h&start=yesterday", "start", "format"),
        ("symbol=BTCUSD&timeframe=1h&start=2019-02-01T00:00Z&end=2019-01-01T00:00Z", "end", "before start"),
        ("timeframe=1h", "symbol", "required"),
    ],
)
def test_bad_market_queries_are_400s_that_name_the_field(api_client, btc_hourly, query, field, hint):
    fields = _error_fields(api_client.get(f"/api/market/data?{query}"))
    assert field in fields
    assert hint in " ".join(fields[field])


@pytest.mark.parametrize(
    ("indicators", "hint"),
    [
        ("FOO", "valid: ADX, ATR, BB"),
        ("RSI(0)", "period must be a whole number"),
        ("SMA(abc)", "is not a number"),
        ("MACD(30,10,9)", "MACD"),
        ("RSI(14", "NAME(arg, ...)"),
    ],
)
def test_bad_indicator_lists_are_400s_that_say_what_is_valid(api_client, btc_hourly, indicators, hint):
    fields = _error_fields(
        api_client.get(f"/api/market/data/indicators?symbol=BTCUSD&timeframe=1h&indicators={indicators}")
    )
    assert hint in fields["indicators"][0]


def test_market_endpoints_need_authentication(anon_client, btc_hourly):
    assert anon_client.get("/api/market/data?symbol=BTCUSD&timeframe=1h").status_code == 401


def test_instruments_are_listable_and_filterable(api_client, btc_hourly):
    body = api_client.get("/api/market/instruments?symbol=btcusd").json()
    assert body["count"] == 1
    assert body["results"][0]["timeframes"] == ["1h"]
    assert api_client.get("/api/market/instruments?symbol=ETHUSD").json()["count"] == 0


def test_patterns_are_detected_on_the_newest_bars(api_client, btc_hourly):
    body = api_client.get(
        "/api/market/data/patterns?symbol=BTCUSD&timeframe=1h&patterns=all&limit=500"
    ).json()

    assert body["count"] == len(body["patterns"]) > 0
    first_bar = api_client.get("/api/market/data?symbol=BTCUSD&timeframe=1h&limit=500").json()["candles"][0][
        "time"
    ]
    for detection in body["patterns"]:
        assert first_bar <= detection["start_time"] <= detection["end_time"] <= detection["confirmed_time"]
        assert 0 <= detection["confidence"] <= 1
        assert detection["direction"] in {"bullish", "bearish", "neutral"}


def test_a_pattern_list_filters_the_detections(api_client, btc_hourly):
    body = api_client.get("/api/market/data/patterns?symbol=BTCUSD&timeframe=1h&patterns=doji,hammer").json()
    assert {d["pattern"] for d in body["patterns"]} <= {"doji", "hammer"}
    assert body["count"] > 0


def test_an_unknown_pattern_is_a_400_listing_the_valid_ones(api_client, btc_hourly):
    fields = _error_fields(
        api_client.get("/api/market/data/patterns?symbol=BTCUSD&timeframe=1h&patterns=doji,unicorn")
    )
    assert "unicorn" in fields["patterns"][0]
    assert "head_and_shoulders" in fields["patterns"][0]
