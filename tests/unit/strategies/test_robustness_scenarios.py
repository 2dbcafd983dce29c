"""A 500-combination search through the real engine: luck on a random walk, an edge on a planted series.

Both run the optimiser's own grid, chunk, evaluate_chunk and summarise on SMA-crossover rules over 500
(fast, slow) combinations, every trial's bar returns from ``trial_returns``, and the optimisation block.
"""

from __future__ import annotations

import numpy as np

from apps.strategies.engine.optimize import Costs, chunk, evaluate_chunk, grid, in_sample_only, summarise
from apps.strategies.engine.robustness import TrialStatistics, optimisation_block, window_statistics

from .candles import bars, random_walk

RULES = [
    {"condition": "SMA(fast) crosses_above SMA(slow)", "action": "buy"},
    {"condition": "SMA(fast) crosses_below SMA(slow)", "action": "sell"},
]
SPACE = {"fast": list(range(2, 27)), "slow": list(range(30, 130, 5))}  # 25 x 20 = 500 combinations
COSTS = Costs(commission=0.0, timeframe="1h")


def search(frame):
    trials = chunk(grid(SPACE), 1000)[0]
    folds = in_sample_only(len(frame))
    # As a worker does: each chunk keeps its trials' whole-window statistics with their results.
    hook = window_statistics(frame, costs=COSTS)
    results = evaluate_chunk(frame, RULES, {}, trials, folds, costs=COSTS, whole_window=hook)
    summary = summarise(results, "sharpe_ratio")
    statistics = {r["index"]: TrialStatistics.from_dict(r["window"]) for r in results if "window" in r}
    return summary, optimisation_block(frame, RULES, {}, folds, summary, statistics, costs=COSTS)


def trend_planted(bars_count: int, seed: int, edge: float) -> np.ndarray:
    """Hourly candles whose next return drifts ``edge`` volatilities up while the 5-bar mean of the
    closes is above their 40-bar mean, and as far down otherwise: trend-following has a real edge."""
    rng = np.random.default_rng(seed)
    volatility, close = 0.01, np.empty(bars_count)
    close[0] = 100.0
    for t in range(1, bars_count):
        fast, slow = close[max(0, t - 5) : t].mean(), close[max(0, t - 40) : t].mean()
        drift = edge * volatility if fast > slow else -edge * volatility
        close[t] = close[t - 1] * np.exp(drift + rng.normal(0.0, volatility))
    open_ = np.concatenate(([100.0], close[:-1]))
    return bars(
        np.column_stack((open_, np.maximum(open_, close) * 1.002, np.minimum(open_, close) * 0.998, close))
    )


def test_the_best_of_500_tries_on_a_random_walk_looks_good_and_is_not():
    """Seed 13 of the seeds 10-19 tried (3000 hourly bars, no costs): picked because its winner passes
    the undeflated test (PSR 0.973), the trap the DSR is for. Its figures: best (fast 18, slow 115) with
    an in-sample Sharpe ratio of 3.29 a year, DSR 0.69, PBO 0.585. Over seeds 10-19 the DSR ranged
    0.09-0.69 (never near 0.95) and the PBO 0.16-0.66 (mean about 0.47): on one sample of correlated
    trials the PBO is noisy, which is why only this seed's figure is asserted."""
    summary, block = search(random_walk(3000, seed=13))
    assert summary.in_sample_objective > 2.0  # looks good
    assert block.best.psr > 0.95  # and passes a test that ignores the search
    assert block.best.deflated_sharpe < 0.95  # but not one that counts the 500 tries
    assert block.overfitting.pbo > 0.5  # and the in-sample winner is mostly below the median out of sample


def test_a_planted_edge_survives_deflation_and_cscv():
    """Seed 0, 4000 hourly bars, a drift of 0.15 volatilities a bar: best (fast 4, slow 40) with an
    in-sample Sharpe ratio of 8.6 a year, DSR 0.9987, PBO 0.003. A weaker edge (0.05-0.08) often
    fails the DSR here: the trials' Sharpe ratios spread widely when some have a real edge, which
    raises the expected maximum the winner is measured against."""
    summary, block = search(trend_planted(4000, seed=0, edge=0.15))
    assert summary.in_sample_objective > 5.0
    assert block.best.deflated_sharpe >= 0.95
    assert block.overfitting.pbo < 0.1
