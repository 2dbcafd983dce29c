"""Seeded synthetic candle frames for the market tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from apps.market.domain.candles import INDEX_NAME


def candle_frame(
    close: np.ndarray, *, spread: float = 0.002, seed: int = 0, start: str = "2021-01-04"
) -> pd.DataFrame:
    """Hourly candles around a close path: each opens at the previous close and its wicks reach a
    random ``spread`` fraction beyond the body."""
    rng = np.random.default_rng(seed)
    close = np.asarray(close, dtype=np.float64)
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(open_, close) * (1.0 + spread * rng.random(len(close)))
    low = np.minimum(open_, close) * (1.0 - spread * rng.random(len(close)))
    volume = rng.lognormal(3.0, 1.0, len(close))
    index = pd.date_range(start, periods=len(close), freq="h", tz="UTC", name=INDEX_NAME)
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def random_walk(seed: int, bars: int = 1500, *, halts: bool = False) -> pd.DataFrame:
    """A geometric random walk from 10,000 with 1 % hourly moves. With ``halts``, two stretches of
    40 bars are frozen (open = high = low = close, no volume), like an exchange outage."""
    rng = np.random.default_rng(seed)
    close = 10_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, bars)))
    frame = candle_frame(close, spread=0.004, seed=seed + 1)
    if halts:
        for start in (bars // 3, 2 * bars // 3):
            frozen = frame.index[start : start + 40]
            price = frame["close"].iloc[start - 1]
            frame.loc[frozen, ["open", "high", "low", "close"]] = price
            frame.loc[frozen, "volume"] = 0.0
            after = frame.index[start + 40]
            frame.loc[after, "open"] = price
            frame.loc[after, "high"] = max(frame.loc[after, "high"], price)
            frame.loc[after, "low"] = min(frame.loc[after, "low"], price)
    return frame
