"""Walk-forward out of sample: each fold's test window traded with its training window's pick, stitched.

Uses the folds of :func:`..optimize.walk_forward_folds` and the per-fold picks of
:func:`..optimize.summarise` (the trial with the best in-sample objective on each training window).
Each test window is backtested on its own, as :func:`..optimize.evaluate_chunk` judged it (signals on
the whole frame, sliced; flat at the window's start, closed at its last close), and the windows are
chained by compounding: fold ``k``'s curve is scaled to start at the equity fold ``k - 1`` ended with.
The test windows are consecutive, so the result is one out-of-sample equity curve over the end of the
data, with no parameter ever chosen on the bars it trades. The walk-forward efficiency is the
summary's (mean out-of-sample over mean in-sample objective of the picks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..backtest import CheckedBars, RiskSettings, backtest_signals
from ..metrics import EquityCurve, finite_or_none, iso_times
from ..optimize import Costs, Fold, Summary
from ..rules import Rule, signals
from .trials import DEFAULT_COSTS


@dataclass(frozen=True)
class WalkForward:
    """The stitched out-of-sample equity curve and each fold's share of it."""

    curve: EquityCurve
    fold_starts: NDArray[np.int64]  # position in ``curve`` of each fold's first test bar
    folds: list[dict[str, object]]  # per fold: fold, best_index, best_params, start, end, return_pct
    total_return_pct: float
    efficiency: float | None

    def to_dict(self, equity_points: int | None = None) -> dict[str, object]:
        curve = self.curve if equity_points is None else self.curve.downsample(equity_points)
        return {
            "total_return_pct": finite_or_none(self.total_return_pct),
            "walk_forward_efficiency": finite_or_none(self.efficiency),
            "folds": self.folds,
            "equity_curve": curve.to_dict(),
        }


def stitched_out_of_sample(
    frame: pd.DataFrame,
    rules: Sequence[Rule | Mapping[str, object]],
    base_parameters: Mapping[str, object],
    folds: Sequence[Fold],
    summary: Summary,
    *,
    costs: Costs = DEFAULT_COSTS,
    external: Mapping[str, NDArray[np.floating] | pd.Series] | None = None,
    bars: CheckedBars | None = None,
) -> WalkForward | None:
    """The stitched curve of ``summary``'s per-fold picks over ``folds``' test windows; None when a
    fold has no test window (in-sample only) or no trial succeeded. ``bars``: ``frame`` checked, where
    the caller keeps it."""
    picks = {pick["fold"]: pick for pick in summary.folds}
    tests = [(fold.index, fold.test) for fold in folds if fold.test is not None and fold.index in picks]
    if not folds or len(tests) < len(folds):
        return None
    scale = 1.0
    parts: list[EquityCurve] = []
    starts: list[int] = []
    described: list[dict[str, object]] = []
    bars = bars if bars is not None else CheckedBars.of(frame)
    for index, test in sorted(tests, key=lambda t: t[1].start):
        pick = picks[index]
        parameters = {**base_parameters, **pick["best_params"]}
        codes = signals(rules, frame, parameters, external)
        report = backtest_signals(
            bars.window(test.slice),
            codes[test.slice],
            RiskSettings.from_parameters(parameters),
            initial_capital=costs.initial_capital,
            commission=costs.commission,
            slippage=costs.slippage,
            timeframe=costs.timeframe,
        )
        curve = report.equity_curve
        starts.append(sum(len(part) for part in parts))
        parts.append(
            EquityCurve(curve.times, curve.equity * scale, curve.cash * scale, curve.position * scale)
        )
        described.append(
            {
                "fold": index,
                "best_index": pick["best_index"],
                "best_params": pick["best_params"],
                "start": iso_times(curve.times[:1])[0],
                "end": iso_times(curve.times[-1:])[0],
                "return_pct": finite_or_none(report.total_return_pct),
            }
        )
        scale *= report.final_equity / costs.initial_capital
    stitched = EquityCurve(*(np.concatenate([getattr(p, name) for p in parts]) for name in _CURVE_FIELDS))
    return WalkForward(
        curve=stitched,
        fold_starts=np.asarray(starts, dtype=np.int64),
        folds=described,
        total_return_pct=100.0 * (scale - 1.0),
        efficiency=summary.walk_forward_efficiency,
    )


_CURVE_FIELDS = ("times", "equity", "cash", "position")
