"""Instruments with real candles from the shipped fixtures, for the market admin tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from apps.market.domain.candle_files import read_candles
from apps.market.models import Instrument, MarketAnalysis, MarketEvent, Signal
from apps.market.services.candles import candles_import_file, candles_store
from apps.market.services.instruments import instrument_get_or_create

REPO_ROOT = Path(__file__).resolve().parents[3]
BTC_1H = REPO_ROOT / "fixtures" / "market" / "btc_usd_coinbase_1h_2017-07-01_2019-10-17.csv"


@pytest.fixture
def btc(db) -> Instrument:
    """BTCUSD on coinbase with its 20,000 real hourly candles."""
    return candles_import_file(path=BTC_1H, symbol="BTCUSD", timeframe="1h", exchange="coinbase").instrument


@pytest.fixture
def young_instrument(db) -> Instrument:
    """An instrument with only its first 60 hourly candles: too few to warm every indicator up."""
    instrument = instrument_get_or_create(symbol="YNGUSD", exchange="coinbase", timeframes=["1h"])
    candles_store(instrument=instrument, timeframe="1h", frame=read_candles(BTC_1H).iloc[:60])
    return instrument


@pytest.fixture
def analysis(btc) -> MarketAnalysis:
    """A finished analysis with one signal and one event, as the 30-minute job stores them."""
    slot = datetime(2019, 10, 17, 8, 0, tzinfo=UTC)
    analysis = MarketAnalysis.objects.create(instrument=btc, timeframe="1h", slot=slot, status="completed")
    Signal.objects.create(
        analysis=analysis, instrument=btc, timeframe="1h", time=slot, direction="long", strength=0.7,
        source="rsi", reason="RSI(14) crossed above 30",
    )  # fmt: skip
    MarketEvent.objects.create(
        analysis=analysis, instrument=btc, timeframe="1h", time=slot, kind="volume_spike", magnitude=4.2,
        description="volume 4.2 standard deviations above its 50-bar mean",
    )  # fmt: skip
    return analysis
