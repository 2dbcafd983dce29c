"""The fake exchange's market data side: loading klines, its clock, Binance's answers to bad input."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import timedelta

import ccxt
import pandas as pd
import pytest

from apps.market.domain.candle_files import candles_from_rows
from tests.fakes.exchange import Fault

from .conftest import START, hourly_rows


def served(binance, **kwargs) -> list[list[float]]:
    return binance.fetch_ohlcv("BTC/USDT", "1h", **kwargs)


def test_klines_load_alike_from_rows_a_csv_shaped_frame_and_a_candle_frame(fake, binance):
    rows = hourly_rows(30)
    numeric = [[r[0], *(float(v) for v in r[1:])] for r in rows]
    csv_shaped = pd.DataFrame(numeric, columns=["timestamp", "open", "high", "low", "close", "volume"])
    answers = []
    for source in (rows, csv_shaped, candles_from_rows(numeric)):
        fake.load_klines("BTCUSDT", "1h", source)
        answers.append(served(binance, since=rows[0][0], limit=100))
        fake.load_klines("BTCUSDT", "1h", [(r[0], 1, 1, 1, 1, 1) for r in rows])  # overwrite between rounds

    assert answers[0] == answers[1] == answers[2] == numeric


def test_klines_without_since_are_the_newest_visible_at_the_fake_clock(fake, binance):
    rows = hourly_rows(30)
    fake.load_klines("BTCUSDT", "1h", rows)
    fake.set_time(rows[19][0] + 60_000)

    newest = served(binance, limit=5)

    assert [r[0] for r in newest] == [r[0] for r in rows[15:20]]
    assert fake.last_price("BTCUSDT") == pytest.approx(float(rows[19][4]))
    assert binance.fetch_time() == rows[19][0] + 60_000


def test_a_limit_above_binance_maximum_is_refused(fake):
    url = f"{fake.base_url}/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=1001"

    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(url, timeout=2)

    assert json.loads(raised.value.read()) == {
        "code": -1130,
        "msg": "Data sent for parameter 'limit' is not valid.",
    }


def test_an_unknown_interval_is_refused_as_binance_does(fake):
    url = f"{fake.base_url}/api/v3/klines?symbol=BTCUSDT&interval=2w"

    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(url, timeout=2)

    assert raised.value.code == 400
    assert json.loads(raised.value.read()) == {"code": -1120, "msg": "Invalid interval."}


def test_scripted_answers_are_used_once_each_in_order_then_normal_service_resumes(fake, binance):
    fake.load_klines("BTCUSDT", "1h", hourly_rows(3))
    fake.script("GET /api/v3/klines", Fault.server_error(502), Fault.rate_limited(retry_after=1))

    with pytest.raises(ccxt.ExchangeNotAvailable):
        served(binance, since=int(START.timestamp() * 1000))
    with pytest.raises(ccxt.DDoSProtection):
        served(binance, since=int(START.timestamp() * 1000))
    assert fake.pending_faults() == 0
    assert len(served(binance, since=int((START + timedelta(hours=1)).timestamp() * 1000))) == 2
    assert [r.status for r in fake.requests("GET /api/v3/klines")] == [502, 429, 200]
