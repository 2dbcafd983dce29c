"""Benchmark: the seven core indicators on 1M synthetic bars, against `ta`.

Run from the repo root: ``python -m tests.bench.bench_indicators``. Prints markdown tables; the
target is the seven computed together, keeping every output, in under 100 ms. `ta` runs once on
200k bars and its time is scaled linearly to 1M (its slow indicators are Python loops, linear in
the bar count). The "memory floor" row times only allocating and filling as many 1M-float64
arrays as the seven return: the kernel's first touch of fresh pages, which no algorithm avoids.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import ta

from apps.market.domain.indicators import REGISTRY, get_indicator

BARS = 1_000_000
TA_BARS = 200_000
REPEATS = 5
TARGET_MS = 100.0
CORE = ("RSI", "MACD", "SMA", "EMA", "BB", "ATR", "STOCH")


def synthetic_candles(bars: int, seed: int = 7) -> pd.DataFrame:
    """A geometric random walk with plausible OHLCV candles, hourly from 2000-01-01."""
    rng = np.random.default_rng(seed)
    close = 10_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, bars)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(open_, close) * (1.0 + rng.exponential(0.003, bars))
    low = np.minimum(open_, close) * (1.0 - rng.exponential(0.003, bars))
    volume = rng.lognormal(3.0, 1.0, bars)
    index = pd.date_range("2000-01-01", periods=bars, freq="h", tz="UTC", name="open_time")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def best_ms(work: Callable[[], object], repeats: int = REPEATS) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best * 1000.0


def ta_core(frame: pd.DataFrame) -> dict[str, Callable[[], object]]:
    """The same seven with `ta`'s default parameters, on RangeIndex series."""
    high, low, c = (pd.Series(frame[column].to_numpy()) for column in ("high", "low", "close"))
    return {
        "RSI": lambda: ta.momentum.RSIIndicator(c, 14).rsi(),
        "MACD": lambda: [f() for m in [ta.trend.MACD(c)] for f in (m.macd, m.macd_signal, m.macd_diff)],
        "SMA": lambda: ta.trend.SMAIndicator(c, 20).sma_indicator(),
        "EMA": lambda: ta.trend.EMAIndicator(c, 20).ema_indicator(),
        "BB": lambda: [
            f()
            for b in [ta.volatility.BollingerBands(c)]
            for f in (
                b.bollinger_mavg,
                b.bollinger_hband,
                b.bollinger_lband,
                b.bollinger_wband,
                b.bollinger_pband,
            )
        ],
        "ATR": lambda: ta.volatility.AverageTrueRange(high, low, c, 14).average_true_range(),
        "STOCH": lambda: [
            f() for s in [ta.momentum.StochasticOscillator(high, low, c)] for f in (s.stoch, s.stoch_signal)
        ],
    }


def main() -> None:
    frame = synthetic_candles(BARS)
    small = frame.iloc[:TA_BARS]
    scale = BARS / TA_BARS
    core = {name: get_indicator(name) for name in CORE}
    params = {name: indicator.resolve() for name, indicator in core.items()}

    print(f"## Core indicators on {BARS:,} bars (best of {REPEATS})")
    print(f"ta: one run on {TA_BARS:,} bars, time x {scale:g}\n")
    print("| indicator | ours ms | ta ms | speed-up | target | result |")
    print("| --- | ---: | ---: | ---: | --- | --- |")
    ta_total = 0.0
    for name, ta_work in ta_core(small).items():
        ours = best_ms(lambda name=name: core[name].compute(frame, params[name]))
        theirs = best_ms(ta_work, repeats=1) * scale
        ta_total += theirs
        print(
            f"| {core[name].key(params[name])} | {ours:.1f} | {theirs:.0f} | {theirs / ours:.0f}x | - | - |"
        )
    total = best_ms(lambda: [core[name].compute(frame, params[name]) for name in CORE])
    verdict = "pass" if total < TARGET_MS else "FAIL"
    figures = f"**{total:.1f}** | {ta_total:.0f} | {ta_total / total:.0f}x"
    print(f"| **all seven** | {figures} | < {TARGET_MS:g} ms | {verdict} |")
    outputs = sum(len(indicator.outputs) for indicator in core.values())
    floor = best_ms(lambda: [np.ones(BARS) for _ in range(outputs)])
    print(f"| memory floor: {outputs} fresh output arrays | {floor:.1f} | - | - | - | - |")

    print(f"\n## Every other indicator on {BARS:,} bars (ours, best of 3)\n")
    print("| indicator | ms |")
    print("| --- | ---: |")
    for name, indicator in REGISTRY.items():
        if name not in CORE:
            p = indicator.resolve()
            elapsed = best_ms(lambda i=indicator, p=p: i.compute(frame, p), repeats=3)
            print(f"| {indicator.key(p)} | {elapsed:.1f} |")


if __name__ == "__main__":
    main()
