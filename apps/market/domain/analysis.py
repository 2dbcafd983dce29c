"""Market insights from recent candles: the latest indicator readings, the regime, signals and events.

Everything is computed from closed candles up to the newest one, so an insight about bar t uses
bars 0..t only. Thresholds are module constants, documented where they are defined.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from apps.market.domain.indicators import compute, get_indicator

# Indicators whose latest values an analysis reports, as (name, params).
SNAPSHOT_INDICATORS = (
    ("RSI", (14,)),
    ("MACD", (12, 26, 9)),
    ("SMA", (50,)),
    ("SMA", (200,)),
    ("EMA", (20,)),
    ("BB", (20, 2)),
    ("ATR", (14,)),
    ("ADX", (14,)),
    ("STOCH", (14, 3)),
)
RSI_OVERSOLD, RSI_OVERBOUGHT = 30.0, 70.0
ADX_TRENDING = 25.0  # Wilder's rule of thumb: above it the market trends
SPIKE_Z = 3.0  # a bar this many standard deviations from the recent norm is an event
NORM_WINDOW = 100  # bars that define "recent norm" for spikes
PRICE_GAP_PCT = 2.0  # open this far from the previous close (per cent) is a price gap
MIN_BARS = 60


@dataclass(frozen=True)
class Insight:
    """One signal (direction long/short/neutral) or event (kind) found on the newest bars."""

    time: pd.Timestamp
    source: str
    direction: str = "neutral"
    strength: float = 0.0
    reason: str = ""
    kind: str = ""
    magnitude: float = 0.0
    details: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class MarketInsights:
    last_time: pd.Timestamp
    last_close: float
    indicators: dict[str, float | None]
    regime: dict[str, object]
    signals: list[Insight]
    events: list[Insight]

    def summary(self) -> str:
        trend, volatility = self.regime.get("trend"), self.regime.get("volatility")
        directions = [signal.direction for signal in self.signals]
        bias = max(("long", "short", "neutral"), key=directions.count) if directions else "no"
        return (
            f"{trend} market with {volatility} volatility; {len(self.signals)} signal(s) ({bias} bias), "
            f"{len(self.events)} event(s) on the newest bar"
        )


def _latest(values: NDArray[np.float64]) -> float | None:
    last = float(values[-1])
    return None if np.isnan(last) else round(last, 10)


def indicator_snapshot(frame: pd.DataFrame) -> dict[str, NDArray[np.float64]]:
    """Every output of the SNAPSHOT_INDICATORS, keyed like ``MACD(12,26,9).signal``."""
    snapshot = {}
    for name, params in SNAPSHOT_INDICATORS:
        indicator = get_indicator(name)
        resolved = indicator.resolve(params)
        outputs = indicator.compute(frame, resolved)
        for output, values in outputs.items():
            snapshot[indicator.key(resolved, output)] = values
    return snapshot


def detect_regime(frame: pd.DataFrame) -> dict[str, object]:
    """Trend (up / down / range) from the SMA(50) slope and ADX; volatility from ATR's percentile."""
    close = frame["close"].to_numpy()
    sma = compute(frame, "SMA", (50,))["value"]
    adx = compute(frame, "ADX", (14,))["adx"][-1]
    atr_pct = compute(frame, "ATR", (14,))["value"] / close
    slope = (sma[-1] / sma[-11] - 1) * 100 if len(sma) > 11 and not np.isnan(sma[-11]) else np.nan
    trending = not np.isnan(adx) and adx >= ADX_TRENDING
    if trending and slope > 0:
        trend = "up"
    elif trending and slope < 0:
        trend = "down"
    else:
        trend = "range"
    recent = atr_pct[~np.isnan(atr_pct)][-NORM_WINDOW * 5 :]
    percentile = (
        float((recent < atr_pct[-1]).mean() * 100) if len(recent) and not np.isnan(atr_pct[-1]) else np.nan
    )
    volatility = (
        "unknown"
        if np.isnan(percentile)
        else "high"
        if percentile >= 80
        else "low"
        if percentile <= 20
        else "normal"
    )
    return {
        "trend": trend,
        "volatility": volatility,
        "adx": None if np.isnan(adx) else round(float(adx), 2),
        "sma50_slope_pct_10_bars": None if np.isnan(slope) else round(float(slope), 4),
        "atr_pct_percentile": None if np.isnan(percentile) else round(percentile, 1),
    }


def _crossed(a: NDArray[np.float64], b: NDArray[np.float64]) -> int:
    """+1 when a crossed above b on the last bar, -1 when below, 0 otherwise."""
    if len(a) < 2 or np.isnan(a[-2:]).any() or np.isnan(b[-2:]).any():
        return 0
    if a[-1] > b[-1] and a[-2] <= b[-2]:
        return 1
    if a[-1] < b[-1] and a[-2] >= b[-2]:
        return -1
    return 0


def derive_signals(frame: pd.DataFrame) -> list[Insight]:
    """Classic, explainable signals on the newest bar: RSI extremes, MACD and SMA crosses, bands."""
    time, close = frame.index[-1], frame["close"].to_numpy()
    signals = []
    rsi = compute(frame, "RSI", (14,))["value"][-1]
    if rsi < RSI_OVERSOLD:
        signals.append(
            Insight(
                time,
                "rsi",
                "long",
                round((RSI_OVERSOLD - rsi) / RSI_OVERSOLD, 3),
                f"RSI(14) {rsi:.1f} < {RSI_OVERSOLD:g}: oversold",
            )
        )
    elif rsi > RSI_OVERBOUGHT:
        signals.append(
            Insight(
                time,
                "rsi",
                "short",
                round((rsi - RSI_OVERBOUGHT) / (100 - RSI_OVERBOUGHT), 3),
                f"RSI(14) {rsi:.1f} > {RSI_OVERBOUGHT:g}: overbought",
            )
        )
    macd = compute(frame, "MACD", (12, 26, 9))
    cross = _crossed(macd["macd"], macd["signal"])
    if cross:
        direction = "long" if cross > 0 else "short"
        signals.append(
            Insight(
                time,
                "macd_cross",
                direction,
                0.5,
                f"MACD crossed {'above' if cross > 0 else 'below'} its signal line",
            )
        )
    fast, slow = compute(frame, "SMA", (50,))["value"], compute(frame, "SMA", (200,))["value"]
    cross = _crossed(fast, slow)
    if cross:
        name = "golden cross" if cross > 0 else "death cross"
        signals.append(
            Insight(
                time, "sma_cross", "long" if cross > 0 else "short", 0.7, f"SMA(50) crossed SMA(200): {name}"
            )
        )
    bands = compute(frame, "BB", (20, 2))
    if close[-1] > bands["upper"][-1]:
        signals.append(
            Insight(time, "bollinger", "long", 0.4, "close above the upper Bollinger band (breakout)")
        )
    elif close[-1] < bands["lower"][-1]:
        signals.append(
            Insight(time, "bollinger", "short", 0.4, "close below the lower Bollinger band (breakdown)")
        )
    return signals


def _zscore_last(values: NDArray[np.float64]) -> float:
    history = values[-NORM_WINDOW - 1 : -1]
    history = history[~np.isnan(history)]
    if len(history) < NORM_WINDOW // 2:
        return np.nan
    spread = history.std()
    return np.nan if spread == 0 else float((values[-1] - history.mean()) / spread)


def detect_events(frame: pd.DataFrame, timeframe_seconds: float) -> list[Insight]:
    """Events on the newest bar: volatility and volume spikes, trend changes, price and time gaps."""
    time = frame.index[-1]
    close, open_ = frame["close"].to_numpy(), frame["open"].to_numpy()
    events = []
    returns = np.diff(np.log(close), prepend=np.nan)
    z = _zscore_last(np.abs(returns))
    if not np.isnan(z) and z >= SPIKE_Z:
        events.append(
            Insight(
                time,
                "volatility",
                kind="volatility_spike",
                magnitude=round(z, 2),
                reason=(
                    f"absolute return {abs(returns[-1]) * 100:.2f}% is {z:.1f} standard deviations "
                    f"above the last {NORM_WINDOW} bars"
                ),
            )
        )
    z = _zscore_last(frame["volume"].to_numpy())
    if not np.isnan(z) and z >= SPIKE_Z:
        events.append(
            Insight(
                time,
                "volume",
                kind="volume_spike",
                magnitude=round(z, 2),
                reason=f"volume is {z:.1f} standard deviations above the last {NORM_WINDOW} bars",
            )
        )
    cross = _crossed(compute(frame, "EMA", (20,))["value"], compute(frame, "SMA", (50,))["value"])
    if cross:
        events.append(
            Insight(
                time,
                "trend",
                kind="trend_change",
                magnitude=1.0 if cross > 0 else -1.0,
                reason=f"EMA(20) crossed {'above' if cross > 0 else 'below'} SMA(50)",
            )
        )
    gap_pct = (open_[-1] / close[-2] - 1) * 100 if len(close) > 1 else 0.0
    if abs(gap_pct) >= PRICE_GAP_PCT:
        events.append(
            Insight(
                time,
                "price_gap",
                kind="gap",
                magnitude=round(gap_pct, 3),
                reason=f"opened {gap_pct:+.2f}% from the previous close",
            )
        )
    if len(frame) > 1:
        missing = round((frame.index[-1] - frame.index[-2]).total_seconds() / timeframe_seconds) - 1
        if missing > 0:
            events.append(
                Insight(
                    time,
                    "missing_candles",
                    kind="gap",
                    magnitude=float(missing),
                    reason=f"{missing} candle(s) missing before this one",
                    details={"missing": missing},
                )
            )
    return events


def analyse(frame: pd.DataFrame, timeframe_seconds: float) -> MarketInsights:
    """Insights about the newest candle of ``frame`` (a candle frame of at least MIN_BARS bars)."""
    if len(frame) < MIN_BARS:
        raise ValueError(f"an analysis needs at least {MIN_BARS} candles, got {len(frame)}")
    snapshot = indicator_snapshot(frame)
    return MarketInsights(
        last_time=frame.index[-1],
        last_close=float(frame["close"].iloc[-1]),
        indicators={key: _latest(values) for key, values in snapshot.items()},
        regime=detect_regime(frame),
        signals=derive_signals(frame),
        events=detect_events(frame, timeframe_seconds),
    )
