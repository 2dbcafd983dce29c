"""What a pattern detector returns, and the candle arrays every detector reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd

from apps.market.domain.indicators import get_indicator
from apps.market.domain.windows import lag, window_mean

T = TypeVar("T")
Kind = Literal["candlestick", "chart"]
Direction = Literal["bullish", "bearish", "neutral"]


class PatternError(ValueError):
    """An unknown pattern name or an unusable frame; the message lists what is valid."""


@dataclass(frozen=True)
class Detection:
    """One occurrence of a pattern.

    ``start``/``end`` delimit the bars that form it. ``confirmed`` is the first bar at whose close
    the detection could be known from bars up to it; it is ``end`` for candlesticks, and later for
    chart patterns built on swings, which need ``order`` bars after a swing to confirm it. A
    backtest must act on ``confirmed``, never earlier. ``confidence`` in [0, 1] is a documented
    shape score (how cleanly the bars fit the rule), not a probability. ``levels`` names the prices
    that matter (a neckline, a target, a band). ``touches`` counts the swings that built a level or
    a line (0 where it does not apply).
    """

    pattern: str
    kind: Kind
    direction: Direction
    start_index: int
    end_index: int
    confirmed_index: int
    start_time: pd.Timestamp
    end_time: pd.Timestamp
    confirmed_time: pd.Timestamp
    confidence: float
    levels: dict[str, float] = field(default_factory=dict)
    touches: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: times as ISO 8601 strings."""
        data = asdict(self)
        for key in ("start_time", "end_time", "confirmed_time"):
            data[key] = pd.Timestamp(data[key]).isoformat()
        return data


class Bars:
    """The candle arrays of one frame, and the derived series several detectors share."""

    TREND_SMA = 5

    def __init__(self, frame: pd.DataFrame) -> None:
        missing = [c for c in ("open", "high", "low", "close") if c not in frame.columns]
        if missing:
            raise PatternError(f"patterns need columns open, high, low, close; missing {', '.join(missing)}")
        self.frame = frame
        self.index = frame.index
        self.open, self.high, self.low, self.close = (
            frame[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close")
        )
        self.n = len(frame)
        self._memo: dict[str, Any] = {}

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()`` once per frame: chart detectors share their swings and levels."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    @cached_property
    def times(self) -> list[pd.Timestamp]:
        """The index as a list: indexing a DatetimeIndex one bar at a time is slow."""
        return self.index.to_list()

    @cached_property
    def body(self) -> np.ndarray:
        return np.abs(self.close - self.open)

    @cached_property
    def range(self) -> np.ndarray:
        return self.high - self.low

    @cached_property
    def upper_shadow(self) -> np.ndarray:
        return self.high - np.maximum(self.open, self.close)

    @cached_property
    def lower_shadow(self) -> np.ndarray:
        return np.minimum(self.open, self.close) - self.low

    @cached_property
    def average_body(self) -> np.ndarray:
        """Mean body of the 10 bars before each bar (NaN for the first 10): what "long" means."""
        return lag(window_mean(self.body, 10), 1)

    @cached_property
    def trend(self) -> np.ndarray:
        """Relative change of the 5-bar SMA of closes over the last 5 bars, ending at each bar:
        negative in a downtrend, positive in an uptrend, NaN while undefined."""
        sma = window_mean(self.close, self.TREND_SMA)
        before = lag(sma, self.TREND_SMA)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (sma - before) / before

    def trend_before(self, bars: int) -> np.ndarray:
        """At each bar t, the trend up to the bar before a pattern of ``bars`` bars ending at t."""
        return lag(self.trend, bars)

    @cached_property
    def atr(self) -> np.ndarray:
        """ATR(14), with the running mean true range standing in for its first 13 bars, so every
        bar has a volatility yardstick built from past bars only."""
        atr = get_indicator("ATR").compute(self.frame)["value"]
        true_range = self.range.copy()
        true_range[1:] = np.maximum(self.high[1:], self.close[:-1]) - np.minimum(
            self.low[1:], self.close[:-1]
        )
        warmup = np.isnan(atr)
        atr[warmup] = (np.cumsum(true_range) / np.arange(1, self.n + 1))[warmup]
        return atr

    def detection(
        self,
        pattern: str,
        kind: Kind,
        direction: Direction,
        start: int,
        end: int,
        confidence: float,
        levels: dict[str, float],
        confirmed: int | None = None,
        touches: int = 0,
    ) -> Detection:
        confirmed = end if confirmed is None else confirmed
        return Detection(
            pattern=pattern,
            kind=kind,
            direction=direction,
            start_index=int(start),
            end_index=int(end),
            confirmed_index=int(confirmed),
            start_time=self.times[start],
            end_time=self.times[end],
            confirmed_time=self.times[confirmed],
            confidence=float(np.clip(confidence, 0.0, 1.0)),
            levels={name: float(value) for name, value in levels.items()},
            touches=touches,
        )
