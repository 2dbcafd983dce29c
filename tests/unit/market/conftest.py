"""Shared fixtures for the market domain tests: the real BTC/USD hourly candles."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from apps.market.domain.candle_files import read_candles
from tests.conftest import SHIPPED_MARKET_DATA

BTC_1H = "btc_usd_coinbase_1h_2017-07-01_2019-10-17.csv"
BTC_1D = "btc_usd_coinbase_1d_2014-12-01_2019-10-17.csv"


def data_file(name: str) -> Path:
    """A real candle file shipped in fixtures/market/."""
    return SHIPPED_MARKET_DATA / name


@pytest.fixture(scope="session")
def btc_1h() -> pd.DataFrame:
    return read_candles(data_file(BTC_1H))


@pytest.fixture(scope="session")
def btc_1d() -> pd.DataFrame:
    return read_candles(data_file(BTC_1D))
