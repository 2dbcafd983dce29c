"""Only closed candles are ever stored: the forming candle is left out, a future one is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from apps.core import clock
from apps.market import selectors
from apps.market.errors import MarketInputError
from apps.market.services.candles import candles_store
from apps.market.services.instruments import instrument_get_or_create

pytestmark = pytest.mark.django_db
NOW = datetime(2024, 3, 1, 12, 9, tzinfo=UTC)  # nine minutes into the 12:00 hourly candle


def _candles(*opens: str) -> pd.DataFrame:
    index = pd.DatetimeIndex([pd.Timestamp(o, tz="UTC") for o in opens], name="open_time")
    return pd.DataFrame(
        {"open": 100.0, "high": 101.0, "low": 99.0, "close": 100.5, "volume": 3.0}, index=index
    )


@pytest.fixture
def btc():
    return instrument_get_or_create(symbol="BTCUSDT", exchange="binance")


def test_the_candle_still_forming_is_not_stored(btc):
    with clock.replaying(NOW):
        counts = candles_store(
            instrument=btc,
            timeframe="1h",
            frame=_candles("2024-03-01 10:00", "2024-03-01 11:00", "2024-03-01 12:00"),
        )

    assert counts.inserted == 2
    assert selectors.newest_candle_time(instrument=btc, timeframe="1h") == datetime(
        2024, 3, 1, 11, tzinfo=UTC
    )


def test_a_candle_from_the_future_is_refused_and_nothing_is_stored(btc):
    with clock.replaying(NOW), pytest.raises(MarketInputError, match="opens in the future"):
        candles_store(instrument=btc, timeframe="1h", frame=_candles("2024-03-01 11:00", "2024-03-01 13:00"))

    assert selectors.newest_candle_time(instrument=btc, timeframe="1h") is None


def test_a_daily_candle_closes_at_midnight(btc):
    with clock.replaying(NOW):
        counts = candles_store(instrument=btc, timeframe="1d", frame=_candles("2024-02-29", "2024-03-01"))

    assert counts.inserted == 1  # 2024-03-01 closes at midnight, 12 hours from NOW
