"""Fixtures: a running fake exchange, providers and ccxt clients pointed at it, candle rows."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import ccxt
import pytest

from apps.market.providers.ccxt_provider import CcxtProvider
from tests.conftest import SHIPPED_MARKET_DATA
from tests.fakes.exchange import FakeExchange

BTC_HOURLY_CSV = SHIPPED_MARKET_DATA / "btc_usd_coinbase_1h_2017-07-01_2019-10-17.csv"
SPOT_ONLY = {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}
HOUR_MS = 3_600_000
START = datetime(2024, 1, 1, tzinfo=UTC)

Row = tuple[int, str, str, str, str, str]


def hourly_rows(count: int, start: datetime = START) -> list[Row]:
    """Deterministic hourly candles from ``start``: a gentle climb with a distinct close per bar."""
    first = int(start.timestamp() * 1000)
    rows = []
    for i in range(count):
        open_ = 100 + i * 0.5
        rows.append(
            (
                first + i * HOUR_MS,
                f"{open_}",
                f"{open_ + 2}",
                f"{open_ - 1}",
                f"{open_ + 0.25}",
                f"{10 + i % 7}",
            )
        )
    return rows


def open_time(row: Row) -> datetime:
    return datetime.fromtimestamp(row[0] / 1000, tz=UTC)


@pytest.fixture
def fake() -> Iterator[FakeExchange]:
    with FakeExchange() as exchange:
        yield exchange


@pytest.fixture
def sleeps() -> list[float]:
    """Every backoff the provider asked for, in seconds (nothing really sleeps)."""
    return []


@pytest.fixture
def make_provider(fake: FakeExchange, sleeps: list[float]) -> Callable[..., CcxtProvider]:
    def make(**overrides: Any) -> CcxtProvider:
        settings: dict[str, Any] = {
            "urls_override": fake.base_url,
            "timeout_ms": 2_000,
            "backoff_base": 0.01,
            "sleep": sleeps.append,
            "rate_limit_ms": 1,
            "now": lambda: START + timedelta(days=365),
        }
        return CcxtProvider(**{**settings, **overrides})

    return make


@pytest.fixture
def binance(fake: FakeExchange) -> ccxt.binance:
    """The real ccxt Binance client, keyed, with every API URL on the fake and a short timeout."""
    client = ccxt.binance(
        {
            "apiKey": "test-key",
            "secret": "test-secret",
            "timeout": 1_000,
            "rateLimit": 1,
            "options": SPOT_ONLY,
        }
    )
    client.urls["api"] = fake.api_urls(client.urls["api"])
    client.load_markets()
    return client


@pytest.fixture(scope="session")
def btc_hourly_rows() -> list[Row]:
    with BTC_HOURLY_CSV.open(newline="") as handle:
        return [
            (int(r["timestamp"]), r["open"], r["high"], r["low"], r["close"], r["volume"])
            for r in csv.DictReader(handle)
        ]
