"""Benchmark of the trial ledger's writes next to the optimisation whose trials they record.

Run from the repository root: ``python -m tests.bench.bench_trial_ledger``. On a throwaway SQLite
system with the shipped BTC/USD hourly candles, a 100-combination SMA-crossover grid (3 walk-forward
folds, one year of bars) runs through the services as a worker would (create, every chunk, finish,
which records the trials and computes the robustness block). The ledger's share is the median time
of recording 100 trials (one bulk insert, fresh keys each time) over the median optimisation time:
the issue's target is under 5%. Wall-clock medians; the load average is printed with the table.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from .bench_daily_update import throwaway_system

REPEATS = 3
LEDGER_REPEATS = 7
TARGET = 0.05
SPACE = {"fast_period": list(range(5, 55, 5)), "slow_period": list(range(60, 160, 10))}  # 10 x 10
START, END = datetime(2018, 10, 1, tzinfo=UTC), datetime(2019, 10, 1, tzinfo=UTC)
RULES = [
    {"condition": "SMA(fast_period) crosses_above SMA(slow_period)", "action": "buy", "priority": 1},
    {"condition": "SMA(fast_period) crosses_below SMA(slow_period)", "action": "sell", "priority": 1},
]


def median_of(run: Callable[[], object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> int:
    load = os.getloadavg()[0]
    with throwaway_system():
        from django.conf import settings

        from apps.market.services.candles import candles_import_file
        from apps.strategies import selectors
        from apps.strategies.engine.robustness import ReturnMoments
        from apps.strategies.models import TrialSource
        from apps.strategies.services.optimizations import (
            optimization_chunk_run,
            optimization_create,
            optimization_finish,
        )
        from apps.strategies.services.strategies import strategy_create
        from apps.strategies.services.trials import TrialRecord, trials_record

        path = settings.BASE_DIR / "fixtures" / "market" / "btc_usd_coinbase_1h_2017-07-01_2019-10-17.csv"
        instrument = candles_import_file(
            path=path, symbol="BTCUSD", timeframe="1h", exchange="coinbase"
        ).instrument
        strategy = strategy_create(
            name="SMA Crossover",
            type="trend_following",
            instrument=instrument,
            timeframe="1h",
            parameters={"fast_period": 20, "slow_period": 100},
            indicators=["SMA"],
            rules=RULES,
        )

        def optimise() -> None:
            run = optimization_create(strategy=strategy, space=SPACE, folds=3, start=START, end=END)
            for index in range(run.chunks_total):
                optimization_chunk_run(run_id=run.pk, chunk_index=index)
            done = optimization_finish(run_id=run.pk)
            if done is None or done.status != "completed" or "error" in done.robustness:
                raise SystemExit(f"the optimisation did not complete: {done and done.error}")

        family = selectors.strategy_family(strategy=strategy)
        moments = ReturnMoments(8760, 0.01, -0.2, 6.0)
        batches = iter(range(10**6))

        def record() -> None:
            batch = next(batches)
            trials_record(
                family=family,
                source=TrialSource.OPTIMIZATION,
                records=[
                    TrialRecord(f"bench:{batch}:{index}", {"fast_period": 5, "slow_period": 60}, moments)
                    for index in range(100)
                ],
                strategy=strategy,
            )

        optimisation = median_of(optimise, REPEATS)
        ledger = median_of(record, LEDGER_REPEATS)
    share = ledger / optimisation
    print(f"load average {load:.2f}; 100 trials, 3 folds, {START:%Y-%m-%d} .. {END:%Y-%m-%d} (8,760 1h bars)")
    print("| measure | median |")
    print("|---|---|")
    print(
        f"| a 100-combination optimisation (create, chunks, finish with robustness) | {optimisation:.2f} s |"
    )
    print(f"| recording its 100 trials (one bulk insert) | {ledger * 1000:.1f} ms |")
    print(f"| ledger share | {share:.2%} (target < {TARGET:.0%}) |")
    return 0 if share < TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
