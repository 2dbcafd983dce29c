"""Benchmark of the robustness statistics: CSCV, Monte Carlo, and the robustness block next to a backtest.

Run from the repository root: ``python -m tests.bench.bench_robustness``. Figures are medians of a few
runs (the machine may be shared: the load average is printed with the table).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import numpy as np

from apps.strategies.engine.backtest import RiskSettings, run_backtest
from apps.strategies.engine.metrics import bar_returns
from apps.strategies.engine.robustness import (
    bootstrap_returns,
    probability_of_overfitting,
    reshuffle_trades,
    robustness_block,
    trade_returns,
)
from apps.strategies.engine.rules import signals

from .bench_backtest import BARS, SMA_CROSSOVER, synthetic_candles

TRIALS = 500
PATHS = 1000


def median_of(run: Callable[[], object], repeats: int) -> tuple[float, object]:
    timings, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings), result


def main() -> None:
    rows = []
    matrix = np.random.default_rng(1).normal(0.0, 0.01, (10_000, TRIALS))
    seconds, result = median_of(lambda: probability_of_overfitting(matrix, 16), 5)
    rows.append(
        (
            f"CSCV, 16 partitions ({result.combinations} combinations), {TRIALS} trials x 10k bars",
            seconds,
            2.0,
        )
    )

    frame = synthetic_candles(BARS)
    risk = RiskSettings()
    codes = signals(SMA_CROSSOVER, frame, {})
    report = run_backtest(frame, SMA_CROSSOVER, {})
    returns = bar_returns(report.equity_curve.equity)
    seconds, _ = median_of(lambda: bootstrap_returns(returns, paths=PATHS, seed=1), 3)
    rows.append((f"block bootstrap, {PATHS} paths x 1M bars, mean block sqrt(T) = 1000 bars", seconds, 2.0))
    seconds, _ = median_of(
        lambda: bootstrap_returns(returns, paths=PATHS, mean_block_length=100.0, seed=1), 1
    )
    rows.append(
        (f"block bootstrap, {PATHS} paths x 1M bars, mean block T^(1/3) = 100 bars, one run", seconds, None)
    )
    trades = trade_returns(report)
    seconds, _ = median_of(lambda: reshuffle_trades(trades, paths=PATHS, seed=1), 3)
    rows.append(
        (f"trade reshuffle, {PATHS} paths x {len(trades)} trades (the same 1M-bar strategy)", seconds, 2.0)
    )

    # Backtest and block alternate, so that both see the same share of a busy machine.
    backtests, blocks = [], []
    for _ in range(7):
        backtest, _ = median_of(lambda: run_backtest(frame, SMA_CROSSOVER, {}), 1)
        block, _ = median_of(lambda: robustness_block(frame, codes, risk, report, paths=0), 1)
        backtests.append(backtest)
        blocks.append(block)
    backtest = statistics.median(backtests)
    rows.append((f"SMA(10/20) backtest alone, 1M bars ({report.num_trades} trades), seconds", backtest, None))
    rows.append(("robustness block without Monte Carlo, seconds", statistics.median(blocks), None))
    ratios = [block / backtest for block, backtest in zip(blocks, backtests, strict=True)]
    rows.append(
        (
            "robustness block without Monte Carlo / backtest (median of 7 pairs)",
            statistics.median(ratios),
            0.2,
        )
    )
    full, _ = median_of(lambda: robustness_block(frame, codes, risk, report, paths=PATHS), 1)
    rows.append(
        (f"robustness block with both {PATHS}-path Monte Carlos / backtest, one run", full / backtest, None)
    )

    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"Load average (1, 5, 15 min) before the table: {load}; {os.cpu_count()} CPUs.\n")
    print("| benchmark | figure (seconds, or a ratio where stated) | target | result |")
    print("| --- | ---: | ---: | --- |")
    for name, figure, target in rows:
        verdict = "info" if target is None else ("pass" if figure < target else "FAIL")
        print(f"| {name} | {figure:.3f} | {'-' if target is None else f'< {target}'} | {verdict} |")


if __name__ == "__main__":
    main()
