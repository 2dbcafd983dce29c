"""Shared fixtures for the market domain tests: the real BTC/USD hourly candles."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from apps.market.domain.candles import read_candles

REPO = Path(__file__).resolve().parents[3]
BTC_1H = "btc_usd_coinbase_1h_2017-07-01_2019-10-17.csv"
BTC_1D = "btc_usd_coinbase_1d_2014-12-01_2019-10-17.csv"


def data_file(name: str) -> Path:
    """A data file from the shipped fixtures, else from the shared data beside the repo; skips if neither."""
    for folder in (REPO / "fixtures" / "market", REPO / ".." / "shared" / "data"):
        if (folder / name).is_file():
            return folder / name
    pytest.skip(f"{name} is in neither fixtures/market/ nor ../shared/data/")


@pytest.fixture(scope="session")
def btc_1h() -> pd.DataFrame:
    return read_candles(data_file(BTC_1H))


@pytest.fixture(scope="session")
def btc_1d() -> pd.DataFrame:
    return read_candles(data_file(BTC_1D))
