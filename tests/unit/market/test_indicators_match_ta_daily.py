"""The compiled indicators equal `ta`'s on the shipped daily BTC, ETH and LTC candles too."""

from __future__ import annotations

from functools import cache

import pandas as pd
import pytest

from apps.market.domain.candle_files import read_candles
from apps.market.domain.indicators import REGISTRY
from tests.unit.market.conftest import data_file
from tests.unit.market.test_indicators_match_ta import OTHER_PARAMS, assert_matches_ta

DAILY = {
    "btc": "btc_usd_coinbase_1d_2014-12-01_2019-10-17.csv",
    "eth": "eth_usd_bitstamp_1d_2017-11-09_2020-01-17.csv",
    "ltc": "ltc_usd_bitstamp_1d_2017-06-25_2020-01-17.csv",
}


@cache
def daily(name: str) -> pd.DataFrame:
    return read_candles(data_file(DAILY[name]))


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("market", sorted(DAILY))
def test_it_matches_ta_on_real_daily_candles(market, name):
    assert_matches_ta(daily(market), name, None)
    assert_matches_ta(daily(market), name, OTHER_PARAMS[name])
