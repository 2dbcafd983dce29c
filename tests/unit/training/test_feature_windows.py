"""The O(bars) window features equal their first definitions, window views, on synthetic and real bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from apps.market.domain.candle_files import read_candles
from apps.training.domain.features import Bars, VolatilityFeature, VolumeZScoreFeature
from tests.conftest import SHIPPED_MARKET_DATA

REAL = SHIPPED_MARKET_DATA / "btc_usd_coinbase_1h_2017-07-01_2019-10-17.csv"


def volatility_by_window_view(bars: Bars, window: int) -> np.ndarray:
    """The first definition: std(axis=1) of a bars x window view of the returns."""
    out = np.full(len(bars), np.nan)
    if len(bars) > window:
        out[window:] = sliding_window_view(bars.bar_returns[1:], window).std(axis=1)
    return out


def volume_z_by_window_view(bars: Bars, window: int) -> np.ndarray:
    out = np.full(len(bars), np.nan)
    if len(bars) >= window:
        log_volume = np.log1p(np.maximum(bars.volume, 0.0))
        windows = sliding_window_view(log_volume, window)
        std = windows.std(axis=1)
        std[std < 1e-12] = 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (log_volume[window - 1 :] - windows.mean(axis=1)) / std
        out[window - 1 :] = np.where(std == 0.0, np.nan, z)
    return out


def with_a_dead_market(frame: pd.DataFrame) -> pd.DataFrame:
    """Two stretches without trades or moves, long enough to hold whole windows."""
    frame = frame.copy()
    for start in (len(frame) // 4, len(frame) // 2):
        frame.iloc[start : start + 100, :4] = frame["close"].iloc[start - 1]
        frame.iloc[start : start + 100, 4] = 3.0
    return frame


@pytest.fixture(scope="module")
def datasets(walk: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {
        "walk": walk,
        "walk with a dead market": with_a_dead_market(walk),
        "real BTC hours": read_candles(REAL),
    }


@pytest.mark.parametrize("name", ["walk", "walk with a dead market", "real BTC hours"])
@pytest.mark.parametrize("window", [2, 6, 24, 72])
def test_volatility_equals_the_std_of_each_window_view(datasets, name, window):
    bars = Bars(datasets[name])
    expected = volatility_by_window_view(bars, window)
    assert np.isfinite(expected).sum() > len(bars) - window - 1
    np.testing.assert_allclose(VolatilityFeature(window).compute(bars), expected, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("name", ["walk", "walk with a dead market", "real BTC hours"])
@pytest.mark.parametrize("window", [2, 24, 72])
def test_volume_zscores_equal_those_of_each_window_view(datasets, name, window):
    bars = Bars(datasets[name])
    expected = volume_z_by_window_view(bars, window)
    np.testing.assert_allclose(VolumeZScoreFeature(window).compute(bars), expected, rtol=1e-9, atol=1e-9)


def test_dead_markets_give_zero_volatility_and_no_volume_zscore(datasets):
    frame = datasets["walk with a dead market"]
    bars = Bars(frame)
    quiet = slice(len(frame) // 4 + 30, len(frame) // 4 + 100)
    assert (VolatilityFeature(24).compute(bars)[quiet] == 0.0).all()
    assert np.isnan(VolumeZScoreFeature(24).compute(bars)[quiet]).all()


@pytest.mark.parametrize("first_row", [0, 1, 23, 24, 25, 71, 72, 1000, 5999])
def test_building_from_a_later_row_gives_bit_identical_values(walk, first_row):
    for feature in (
        VolatilityFeature(24),
        VolatilityFeature(72),
        VolumeZScoreFeature(24),
        VolumeZScoreFeature(72),
    ):
        everything = feature.compute(Bars(walk))
        newest = feature.compute(Bars(walk, first_row=first_row))
        np.testing.assert_array_equal(newest[first_row:], everything[first_row:])
