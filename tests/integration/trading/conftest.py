"""Fixtures for trading integration tests: a market with candles, accounts, the API and a fake exchange."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from apps.market.models import Instrument
from apps.market.services.candles import candles_store
from apps.market.services.instruments import instrument_get_or_create
from apps.trading.models import Account, AccountKind
from apps.trading.services.accounts import account_create
from tests.fakes.exchange import FakeExchange
from tests.unit.market_providers.conftest import hourly_rows

D = Decimal
START = datetime(2024, 1, 1, tzinfo=UTC)
LAST_CLOSE = D("102.25")  # the close of the fifth of hourly_rows(), the fake exchange's last price too
NO_LIMITS = {
    "max_exposure_pct": None,
    "max_open_orders": None,
    "max_open_positions": None,
    "price_band_pct": None,
    "max_orders_per_minute": None,
    "max_daily_loss_pct": None,
    "max_drawdown_pct": None,
}


def candle_frame(rows: list[tuple]) -> pd.DataFrame:
    """A candle frame from (open ms, open, high, low, close, volume) rows."""
    index = pd.DatetimeIndex([pd.Timestamp(r[0], unit="ms", tz="UTC") for r in rows], name="open_time")
    columns = ("open", "high", "low", "close", "volume")
    return pd.DataFrame({c: [float(r[i + 1]) for r in rows] for i, c in enumerate(columns)}, index=index)


def store_candles(instrument: Instrument, rows: list[tuple], timeframe: str = "1h") -> None:
    candles_store(instrument=instrument, timeframe=timeframe, frame=candle_frame(rows))


def hour(n: int) -> datetime:
    """Open time of the n-th hourly candle of hourly_rows()."""
    return START + timedelta(hours=n)


@pytest.fixture
def btcusdt(db) -> Instrument:
    """BTCUSDT on binance with the fake exchange's filters and five hourly candles (last close 102.25)."""
    instrument = instrument_get_or_create(symbol="BTCUSDT", exchange="binance", timeframes=["1h"])
    Instrument.objects.filter(pk=instrument.pk).update(
        amount_step=D("0.00001"), price_step=D("0.01"), min_amount=D("0.00001"), min_notional=D(5)
    )
    instrument.refresh_from_db()
    store_candles(instrument, hourly_rows(5))
    return instrument


@pytest.fixture
def make_account(user) -> Callable[..., Account]:
    def make(**fields: object) -> Account:
        settings = {
            "owner": user,
            "name": f"Account {Account.objects.count() + 1}",
            "starting_cash": D(10000),
        }
        return account_create(**{**settings, **fields})

    return make


@pytest.fixture
def paper_account(make_account) -> Account:
    """A paper account of the test user with 10,000 USDT and no risk limits in the way."""
    return make_account(name="Paper", **NO_LIMITS)


@pytest.fixture
def fake_exchange(settings) -> Iterator[FakeExchange]:
    """A fake Binance on 127.0.0.1 with the same candles, live trading on and pointed at it."""
    with FakeExchange() as fake:
        fake.load_klines("BTCUSDT", "1h", hourly_rows(5))
        settings.LIVE_TRADING_ENABLED = True
        settings.CCXT_URLS_OVERRIDE = {"binance": fake.base_url}
        settings.CCXT_TIMEOUT_MS = 1000
        yield fake


@pytest.fixture
def live_account(make_account, fake_exchange, btcusdt) -> Account:
    """A live account with keys, 1,000 USDT on the fake exchange and in the ledger."""
    fake_exchange.set_balance("USDT", "1000")
    return make_account(
        name="Live",
        kind=AccountKind.LIVE,
        starting_cash=D(1000),
        api_key="live-api-key-123",
        secret="live-secret-456",
        **NO_LIMITS,
    )
