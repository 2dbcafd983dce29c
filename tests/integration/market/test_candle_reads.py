"""Candles read back exactly as stored, in time order, on either database (on PostgreSQL each
column comes back as one binary value; see apps/market/candle_reads.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.market import selectors
from apps.market.services.candles import candles_store
from apps.market.services.instruments import instrument_get_or_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored() -> tuple:
    """600 5m candles with prices no decimal text would round-trip, stored newest half first so the
    rows' physical order is not their time order."""
    rng = np.random.default_rng(7)
    index = pd.date_range("2021-03-01", periods=600, freq="5min", tz="UTC", name="open_time")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 600))) + rng.random(600) * 1e-9
    frame = pd.DataFrame(
        {
            "open": close * (1 + rng.normal(0, 1e-3, 600)),
            "close": close,
            "volume": rng.gamma(2.0, 3.0, 600),
        },
        index=index,
    )
    frame["high"] = frame[["open", "close"]].max(axis=1) * 1.001
    frame["low"] = frame[["open", "close"]].min(axis=1) * 0.999
    frame = frame[["open", "high", "low", "close", "volume"]]
    instrument = instrument_get_or_create(symbol="READUSD", exchange="test", timeframes=["5m"])
    candles_store(instrument=instrument, timeframe="5m", frame=frame.iloc[300:])
    candles_store(instrument=instrument, timeframe="5m", frame=frame.iloc[:300])
    return instrument, frame


def test_every_value_and_time_comes_back_exactly_in_time_order(stored):
    instrument, frame = stored
    read = selectors.candles_frame(instrument=instrument, timeframe="5m")
    pd.testing.assert_frame_equal(read, frame, check_exact=True, check_index_type=False, check_freq=False)
    assert str(read.index.tz) == "UTC" and read.index.name == "open_time"


def test_a_window_and_the_newest_n_are_the_stored_ones_oldest_first(stored):
    instrument, frame = stored
    start, end = frame.index[100], frame.index[449]
    window = selectors.candles_frame(instrument=instrument, timeframe="5m", start=start, end=end)
    pd.testing.assert_frame_equal(window, frame.loc[start:end], check_exact=True, check_freq=False)
    newest = selectors.candles_frame(instrument=instrument, timeframe="5m", limit=7)
    pd.testing.assert_frame_equal(newest, frame.iloc[-7:], check_exact=True, check_freq=False)
    before = selectors.candles_frame(instrument=instrument, timeframe="5m", end=end, limit=3)
    pd.testing.assert_frame_equal(before, frame.loc[:end].iloc[-3:], check_exact=True, check_freq=False)


def test_a_window_without_candles_is_an_empty_candle_frame(stored):
    instrument, frame = stored
    empty = selectors.candles_frame(
        instrument=instrument, timeframe="5m", start=frame.index[-1] + pd.Timedelta("1h")
    )
    assert empty.empty and list(empty.columns) == list(frame.columns)
    assert str(empty.index.dtype) == "datetime64[us, UTC]"
    assert selectors.candles_frame(instrument=instrument, timeframe="1h").empty


def test_a_count_over_the_whole_series_reads_its_summary_row_and_a_part_counts_candles(stored):
    instrument, frame = stored
    first, newest = frame.index[0], frame.index[-1]
    hour = pd.Timedelta(hours=1)

    def count(start=None, end=None) -> tuple[int, bool]:
        with CaptureQueriesContext(connection) as queries:
            found = selectors.candle_count(instrument=instrument, timeframe="5m", start=start, end=end)
        return found, any('"market_candle"' in query["sql"] for query in queries)

    assert count() == (600, False)
    assert count(first - hour, newest + hour) == (600, False)
    assert count(first, newest) == (600, False)
    assert count(first + pd.Timedelta(minutes=5), newest) == (599, True)
    assert count(frame.index[100], frame.index[199]) == (100, True)
    assert count(end=frame.index[9]) == (10, True)
    assert count(newest + hour) == (0, False)
    assert count(end=first - hour) == (0, False)
    assert selectors.candle_count(instrument=instrument, timeframe="1h") == 0
