"""read_candle_file: the bundled CSV layout and ccxt JSON arrays, through the domain parser."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from apps.market.providers.base import PermanentProviderError
from apps.market.providers.files import read_candle_file

from .conftest import BTC_HOURLY_CSV, START, hourly_rows


def write_json(tmp_path, rows) -> str:
    path = tmp_path / "candles.json"
    path.write_text(json.dumps([[r[0], *(float(v) for v in r[1:])] for r in rows]))
    return str(path)


def test_it_reads_a_ccxt_json_array_as_a_final_batch(tmp_path):
    batch = read_candle_file(write_json(tmp_path, hourly_rows(24)), symbol="BTCUSDT", timeframe="1h")

    assert (batch.symbol, batch.timeframe, len(batch.candles)) == ("BTCUSDT", "1h", 24)
    assert batch.candles.index[0] == START
    assert batch.complete_until == START + timedelta(hours=24)
    assert batch.candles["close"].iloc[-1] == 100 + 23 * 0.5 + 0.25


def test_it_reads_the_bundled_csv_layout(btc_hourly_rows):
    batch = read_candle_file(BTC_HOURLY_CSV, symbol="BTCUSD", timeframe="1h")

    assert len(batch.candles) == len(btc_hourly_rows)
    np.testing.assert_array_equal(
        batch.candles.iloc[0].to_numpy(), [float(v) for v in btc_hourly_rows[0][1:]]
    )
    last = datetime.fromtimestamp(btc_hourly_rows[-1][0] / 1000, tz=UTC)
    assert batch.complete_until == last + timedelta(hours=1)


def test_it_refuses_candles_off_the_timeframe_grid(tmp_path):
    path = write_json(tmp_path, hourly_rows(24))

    with pytest.raises(
        PermanentProviderError, match=r"candles.json: the candle at 2024-01-01 01:00:00\+00:00"
    ):
        read_candle_file(path, symbol="BTCUSDT", timeframe="4h")


def test_it_names_the_place_of_a_malformed_candle(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n1704067200000,1,2,0.5,1.5,10\n1704070800000,1,2,0.5,n/a,10\n"
    )

    with pytest.raises(PermanentProviderError, match=r"bad.csv: line 3: close 'n/a' is not a number"):
        read_candle_file(path, symbol="BTCUSDT", timeframe="1h")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "cannot read the file"),
        ("empty.json", "[]", "the file has no candles"),
        ("candles.txt", "", "unknown candle file type"),
    ],
)
def test_it_refuses_a_file_it_cannot_use(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)

    with pytest.raises(PermanentProviderError, match=message):
        read_candle_file(path, symbol="BTCUSDT", timeframe="1h")


def test_it_refuses_an_unknown_timeframe(tmp_path):
    with pytest.raises(PermanentProviderError, match="unknown timeframe '2h'"):
        read_candle_file(write_json(tmp_path, hourly_rows(2)), symbol="BTCUSDT", timeframe="2h")
