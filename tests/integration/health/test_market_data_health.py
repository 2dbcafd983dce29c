"""The health document's market_data component: age of the newest candle per active series, as the
snapshot job computes it and GET /api/health reads it back."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from django.utils import timezone

from apps.market.services.candles import candles_store
from apps.market.services.instruments import instrument_get_or_create
from tests.integration.health.snapshots import take_snapshot

pytestmark = pytest.mark.django_db


def _store_hourly(symbol: str, newest: pd.Timestamp, bars: int = 3) -> None:
    instrument = instrument_get_or_create(symbol=symbol, exchange="binance", timeframes=["1h"])
    index = pd.date_range(end=newest, periods=bars, freq="1h", tz="UTC", name="open_time")
    frame = pd.DataFrame({"open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 3.0}, index=index)
    candles_store(instrument=instrument, timeframe="1h", frame=frame)


def test_fresh_series_are_healthy_and_stale_ones_degrade_the_status(staff_client):
    last_final_hour = pd.Timestamp(timezone.now()).floor("1h") - pd.Timedelta(hours=1)
    _store_hourly("BTCUSDT", last_final_hour)
    _store_hourly("ETHUSDT", last_final_hour - pd.Timedelta(days=2))
    take_snapshot()

    market = staff_client.get("/api/health").json()["components"]["market_data"]

    assert market["series"]["BTCUSDT@binance 1h"]["status"] == "healthy"
    assert market["series"]["ETHUSDT@binance 1h"]["status"] == "degraded"
    assert market["series"]["ETHUSDT@binance 1h"]["age_seconds"] > timedelta(days=2).total_seconds()
    assert market["status"] == "degraded"
    assert market["message"] == "Stale: ETHUSDT@binance 1h"


def test_no_candles_at_all_is_reported(staff_client):
    take_snapshot()
    market = staff_client.get("/api/health").json()["components"]["market_data"]
    assert market["status"] == "degraded"
    assert "No candles" in market["message"]
