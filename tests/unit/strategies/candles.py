"""Candle frames for the strategy engine tests: hand-written bars and seeded random walks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from apps.strategies.engine.rules import Action


def bars(rows: Sequence[tuple[float, float, float, float]], *, freq: str = "h") -> pd.DataFrame:
    """Candles from (open, high, low, close) rows, hourly from 2024-01-01 UTC."""
    table = np.asarray(rows, dtype=np.float64)
    index = pd.date_range("2024-01-01", periods=len(table), freq=freq, tz="UTC", name="open_time")
    return pd.DataFrame(
        {"open": table[:, 0], "high": table[:, 1], "low": table[:, 2], "close": table[:, 3], "volume": 1.0},
        index=index,
    )


def flat(prices: Sequence[float]) -> pd.DataFrame:
    """Bars that open, close and range at one price each."""
    return bars([(p, p, p, p) for p in prices])


def random_walk(n: int, seed: int, *, volatility: float = 0.01, gaps: float = 0.002) -> pd.DataFrame:
    """A seeded geometric random walk whose opens gap away from the previous close a little."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, volatility, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0.0, gaps, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, volatility / 2, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, volatility / 2, n)))
    frame = bars(np.column_stack((open_, high, low, close)))
    frame["volume"] = rng.lognormal(3.0, 0.5, n)
    return frame


def random_codes(n: int, seed: int, *, density: float = 0.2) -> np.ndarray:
    """Random action codes: each bar has an action with probability ``density``."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(Action.BUY, Action.COVER + 1, n).astype(np.int8)
    codes[rng.random(n) >= density] = Action.NONE
    return codes
