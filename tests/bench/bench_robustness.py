"""Benchmark of the robustness statistics: CSCV, Monte Carlo, and the robustness block next to a backtest.

Run from the repository root: ``python -m tests.bench.bench_robustness``. Figures are wall-clock
medians of a few runs, except the block's overhead, a ratio of CPU times (the machine may be shared:
the load average is printed with the table). The block is measured twice: after a rule backtest that
loses (no break-even exists, so none is solved) and after a profitable one (all four are solved).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from apps.strategies.engine.backtest import RiskSettings, backtest_signals, run_backtest
from apps.strategies.engine.metrics import BacktestReport, bar_returns
from apps.strategies.engine.robustness import (
    bootstrap_returns,
    probability_of_overfitting,
    reshuffle_trades,
    robustness_block,
    trade_returns,
)
from apps.strategies.engine.rules import Action, signals

from .bench_backtest import BARS, SMA_CROSSOVER, synthetic_candles

TRIALS = 500
PATHS = 1000
PAIRS = 7


def median_of(run: Callable[[], object], repeats: int) -> tuple[float, object]:
    timings, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings), result


def peeking_codes(frame: pd.DataFrame) -> np.ndarray:
    """A strategy that makes money: on 3% of the bars it knows whether the next bar rises."""
    opens = frame["open"].to_numpy()
    rising = np.append(opens[2:] > opens[1:-1], [False, False])
    act = np.random.default_rng(0).random(len(opens)) < 0.03
    return np.where(act, np.where(rising, Action.BUY, Action.SELL), Action.NONE).astype(np.int8)


def block_overhead(
    label: str,
    backtest: Callable[[], object],
    frame: pd.DataFrame,
    codes: np.ndarray,
    report: BacktestReport,
) -> list[tuple[str, float, float | None]]:
    """The backtest alone and the block without Monte Carlo, alternating so that both see the same
    share of a busy machine. The ratio is of CPU time (this process's), the median over the pairs:
    on a shared machine it measures the work the block adds, which wall time blurs."""
    walls, ratios = [], []
    for _ in range(PAIRS):
        wall, cpu = time.perf_counter(), time.process_time()
        backtest()
        middle_wall, middle_cpu = time.perf_counter(), time.process_time()
        robustness_block(frame, codes, RiskSettings(), report, paths=0)
        end_wall, end_cpu = time.perf_counter(), time.process_time()
        walls.append((middle_wall - wall, end_wall - middle_wall))
        ratios.append((end_cpu - middle_cpu) / (middle_cpu - cpu))
    return [
        (f"{label}: backtest alone, seconds", statistics.median(w[0] for w in walls), None),
        (
            f"{label}: robustness block without Monte Carlo, seconds",
            statistics.median(w[1] for w in walls),
            None,
        ),
        (f"{label}: block / backtest, CPU time (median of {PAIRS} pairs)", statistics.median(ratios), 0.2),
    ]


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

    rows += block_overhead(
        "SMA(10/20) rules, 1M bars (losing: no break-even to solve)",
        lambda: run_backtest(frame, SMA_CROSSOVER, {}),
        frame,
        codes,
        report,
    )
    peeking = peeking_codes(frame)
    profitable = backtest_signals(frame, peeking, risk)
    rows += block_overhead(
        f"signals peeking a bar ahead on 3% of bars, 1M bars ({profitable.num_trades} trades, "
        "every break-even solved)",
        lambda: backtest_signals(frame, peeking, risk),
        frame,
        peeking,
        profitable,
    )
    full, _ = median_of(lambda: robustness_block(frame, codes, risk, report, paths=PATHS), 1)
    rows.append((f"SMA(10/20): robustness block with both {PATHS}-path Monte Carlos, one run", full, None))

    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"Load average (1, 5, 15 min) before the table: {load}; {os.cpu_count()} CPUs.\n")
    print("| benchmark | figure (seconds, or a ratio where stated) | target | result |")
    print("| --- | ---: | ---: | --- |")
    for name, figure, target in rows:
        verdict = "info" if target is None else ("pass" if figure < target else "FAIL")
        print(f"| {name} | {figure:.3f} | {'-' if target is None else f'< {target}'} | {verdict} |")


if __name__ == "__main__":
    main()
