"""Fixtures for market integration tests: the shipped real candles and a fake exchange."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.market.models import Instrument
from apps.market.services.candles import candles_import_file
from tests.fakes.exchange import FakeExchange
from tests.integration.llm.conftest import fake_llm  # noqa: F401  (the commentary tests use it)

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "market"
BTC_HOURLY = FIXTURES / "btc_usd_coinbase_1h_2017-07-01_2019-10-17.csv"


@pytest.fixture
def btc_hourly(db) -> Instrument:
    """BTCUSD 1h from Coinbase, 20,111 real candles, imported as `make run` does."""
    return candles_import_file(
        path=BTC_HOURLY, symbol="BTCUSD", timeframe="1h", exchange="coinbase"
    ).instrument


@pytest.fixture
def fake_exchange(settings) -> Iterator[FakeExchange]:
    """A fake Binance on 127.0.0.1 that the project's ccxt provider is pointed at, with fast retries."""
    with FakeExchange() as fake:
        settings.CCXT_URLS_OVERRIDE = {"binance": fake.base_url}
        settings.CCXT_MAX_RETRIES = 1
        yield fake
