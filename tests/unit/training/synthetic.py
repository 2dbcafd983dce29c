"""Seeded synthetic candles for the training tests and benchmark: a geometric random walk, and
autocorrelated returns with a planted edge."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.signal import lfilter


def random_walk_candles(
    bars: int, *, seed: int, volatility: float = 0.01, start: str = "2020-01-01"
) -> pd.DataFrame:
    """Hourly candles whose closes follow a driftless geometric random walk: nothing is predictable.

    Each bar opens at the previous close; wicks and volumes are independent noise.
    """
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, volatility, bars)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, volatility / 2, bars)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, volatility / 2, bars)))
    volume = rng.lognormal(mean=3.0, sigma=0.5, size=bars)
    index = pd.date_range(start, periods=bars, freq="h", tz="UTC", name="open_time")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def autocorrelated_candles(
    phis: tuple[float, ...], lengths: tuple[int, ...], *, seed: int, volatility: float = 0.01, end: str
) -> pd.DataFrame:
    """Hourly candles ending at ``end`` whose log returns follow AR(1) with coefficient ``phis[i]`` for
    ``lengths[i]`` bars: a planted edge (the sign of the last return predicts the next one's; 0 is a
    random walk) that may change from one regime to the next."""
    rng = np.random.default_rng(seed)
    returns = []
    for phi, length in zip(phis, lengths, strict=True):
        shocks = rng.normal(0.0, volatility, length)
        returns.append(lfilter([1.0], [1.0, -phi], shocks))
    close = 100.0 * np.exp(np.cumsum(np.concatenate(returns)))
    bars = len(close)
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, volatility / 2, bars)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, volatility / 2, bars)))
    volume = rng.lognormal(mean=3.0, sigma=0.5, size=bars)
    index = pd.date_range(end=end, periods=bars, freq="h", tz="UTC", name="open_time")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )
