"""Monte Carlo stress of a backtest: its trades in shuffled order, and its bar returns block-bootstrapped.

Both give, over ``paths`` seeded paths, the 5th/25th/50th/75th/95th percentiles of the final return,
the maximum drawdown and the longest drawdown, and the probability of ruin: the share of paths whose
maximum drawdown reaches ``ruin_drawdown`` (a fraction, 0.5 = a 50% fall from a high). For a chart
they also keep, from the same paths, the *fan* (the same percentiles of the return after each of at
most ``FAN_POINTS`` evenly spaced steps, beside the backtest's own path) and a histogram of the
maximum drawdowns (``DRAWDOWN_BINS`` bins): a few hundred numbers, whatever the number of paths.

* :func:`reshuffle_trades`: each trade's return on the equity it started with (after fees; trades
  never overlap, so this is exactly how the backtest compounded them) applied in a random order.
  Compounding is commutative, so every path ends at the backtest's own final return: what the order
  changes is the path, i.e. the drawdowns. Equity is seen only between trades, so drawdowns inside a
  trade are missed and durations count trades, not bars.
* :func:`bootstrap_returns`: the stationary block bootstrap of the equity curve's bar returns
  (Politis & Romano 1994; see :mod:`.block_bootstrap`), which keeps serial dependence up to about the
  mean block length and changes the final return as well; durations are in bars.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..metrics import BacktestReport, finite_or_none
from .block_bootstrap import (
    RUIN_FLOOR,
    BootstrapError,
    bootstrap_statistics,
    default_mean_block_length,
)
from .histogram import Histogram

PERCENTILES = (5, 25, 50, 75, 95)
DEFAULT_PATHS = 1000
DEFAULT_RUIN_DRAWDOWN = 0.5
FAN_POINTS = 101  # steps of the fan: the start, then every 1% of the way
DRAWDOWN_BINS = 20
_RESHUFFLE_VALUES = 2**22  # trades x paths shuffled per step, to bound memory


@dataclass(frozen=True)
class Percentiles:
    """The 5th, 25th, 50th, 75th and 95th percentiles of a figure over the paths."""

    p5: float
    p25: float
    p50: float
    p75: float
    p95: float

    @classmethod
    def of(cls, values: NDArray[np.float64] | NDArray[np.int64]) -> Percentiles:
        return cls(*(float(v) for v in np.percentile(values, PERCENTILES)))

    def to_dict(self) -> dict[str, float | None]:
        return {f"p{q}": finite_or_none(getattr(self, f"p{q}")) for q in PERCENTILES}


@dataclass(frozen=True)
class Fan:
    """The paths' return in percent after each of ``steps`` (trades or bars from the start, the first
    0 and the last the end): its percentiles over the paths, and the backtest's own path."""

    steps: tuple[int, ...]
    p5: tuple[float, ...]
    p25: tuple[float, ...]
    p50: tuple[float, ...]
    p75: tuple[float, ...]
    p95: tuple[float, ...]
    backtest: tuple[float, ...]

    @classmethod
    def of(cls, steps: NDArray[np.int64], levels: NDArray[np.float64], own: NDArray[np.float64]) -> Fan:
        """From the log-equity ``levels`` of each path (rows) at ``steps`` (columns) and the
        backtest's own log-equity ``own`` at the same steps. Percentiles of the returns, not of the
        logs, so that the last step's equal the final return's percentiles exactly."""
        bands = np.percentile(100.0 * np.expm1(levels), PERCENTILES, axis=0)
        p5, p25, p50, p75, p95 = (tuple(band.tolist()) for band in bands)
        return cls(
            steps=tuple(steps.tolist()),
            p5=p5,
            p25=p25,
            p50=p50,
            p75=p75,
            p95=p95,
            backtest=tuple((100.0 * np.expm1(own)).tolist()),
        )

    def to_dict(self) -> dict[str, list[int] | list[float | None]]:
        return {
            "steps": list(self.steps),
            **{
                name: [finite_or_none(v) for v in getattr(self, name)]
                for name in (*(f"p{q}" for q in PERCENTILES), "backtest")
            },
        }


def fan_steps(length: int) -> NDArray[np.int64]:
    """At most ``FAN_POINTS`` evenly spaced steps from 0 to ``length``, both included."""
    return np.unique(np.linspace(0, length, min(length + 1, FAN_POINTS)).round().astype(np.int64))


@dataclass(frozen=True)
class MonteCarlo:
    """Percentiles over the paths; returns and drawdowns in percent like the report's."""

    method: str  # "trade_reshuffle" or "block_bootstrap"
    paths: int
    seed: int
    final_return_pct: Percentiles
    max_drawdown_pct: Percentiles
    max_drawdown_duration: Percentiles
    duration_unit: str  # "trades" or "bars"
    ruin_drawdown_pct: float
    probability_of_ruin: float
    mean_block_length: float | None  # the bootstrap's, in bars
    fan: Fan
    max_drawdown_histogram: Histogram  # of the paths' maximum drawdowns, in percent

    def to_dict(self) -> dict[str, object]:
        return {
            "method": self.method,
            "paths": self.paths,
            "seed": self.seed,
            "final_return_pct": self.final_return_pct.to_dict(),
            "max_drawdown_pct": self.max_drawdown_pct.to_dict(),
            "max_drawdown_duration": self.max_drawdown_duration.to_dict(),
            "duration_unit": self.duration_unit,
            "ruin_drawdown_pct": self.ruin_drawdown_pct,
            "probability_of_ruin": self.probability_of_ruin,
            "mean_block_length": finite_or_none(self.mean_block_length),
            "fan": self.fan.to_dict(),
            "max_drawdown_histogram": self.max_drawdown_histogram.to_dict(),
        }


def trade_returns(report: BacktestReport) -> NDArray[np.float64]:
    """Each trade's growth factor minus 1: the equity at its exit bar's close over the equity at the
    close before its entry bar. The account is flat at both (the next entry fills after this exit's
    bar), so this is exactly the factor the backtest compounded, with no precision lost to equity
    that has shrunk or grown by orders of magnitude (as a running sum of pnl would)."""
    equity, trades = report.equity_curve.equity, report.trades
    return equity[trades.exit_bar] / equity[trades.entry_bar - 1] - 1.0


def reshuffle_trades(
    returns: NDArray[np.float64],
    *,
    paths: int = DEFAULT_PATHS,
    seed: int = 0,
    ruin_drawdown: float = DEFAULT_RUIN_DRAWDOWN,
) -> MonteCarlo:
    """Percentiles over ``paths`` random orders of the trade ``returns`` (see the module docstring)."""
    growth = _log_growth(returns, paths, ruin_drawdown)
    if len(growth) == 0:
        raise BootstrapError("there are no trades to reshuffle")
    rng = np.random.default_rng(seed)
    step = max(1, _RESHUFFLE_VALUES // len(growth))
    steps = fan_steps(len(growth))
    finals, drawdowns, durations, sampled = [], [], [], []
    shuffled = np.empty((min(step, paths), len(growth)))
    levels = np.zeros((min(step, paths), len(growth) + 1))
    for first in range(0, paths, step):
        rows = min(step, paths - first)
        # Shuffled in place in reused buffers: fresh arrays this size would mostly cost page faults.
        shuffled[:rows] = growth
        rng.permuted(shuffled[:rows], axis=1, out=shuffled[:rows])
        np.cumsum(shuffled[:rows], axis=1, out=levels[:rows, 1:])
        final, drawdown, duration = _path_statistics(levels[:rows])
        finals.append(final)
        drawdowns.append(drawdown)
        durations.append(duration)
        sampled.append(levels[:rows, steps])
    return _summary(
        "trade_reshuffle",
        paths,
        seed,
        np.concatenate(finals),
        np.concatenate(drawdowns),
        np.concatenate(durations),
        "trades",
        ruin_drawdown,
        None,
        Fan.of(steps, np.concatenate(sampled), _own_levels(growth, steps)),
    )


def bootstrap_returns(
    returns: NDArray[np.float64],
    *,
    paths: int = DEFAULT_PATHS,
    mean_block_length: float | None = None,
    seed: int = 0,
    ruin_drawdown: float = DEFAULT_RUIN_DRAWDOWN,
) -> MonteCarlo:
    """Percentiles over ``paths`` stationary block bootstraps of the bar ``returns``; the mean block
    length defaults to :func:`~.block_bootstrap.default_mean_block_length`."""
    growth = _log_growth(returns, paths, ruin_drawdown)
    length = (
        default_mean_block_length(len(returns)) if mean_block_length is None else float(mean_block_length)
    )
    steps = fan_steps(len(returns))
    final, drawdown, duration, sampled = bootstrap_statistics(
        returns, paths=paths, mean_block_length=length, seed=seed, steps=steps
    )
    fan = Fan.of(steps, sampled, _own_levels(growth, steps))
    return _summary(
        "block_bootstrap", paths, seed, final, drawdown, duration, "bars", ruin_drawdown, length, fan
    )


def _path_statistics(
    levels: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Final log return, maximum drawdown (log) and longest stretch under water (in steps) of each row
    of log-equity ``levels`` (first column the start, 0); a stretch runs from the last step at a high to
    the first step back at or above it, or to the last step."""
    running = np.maximum.accumulate(levels, axis=1)
    # Steps at a high, row by row: the stretches under water are the gaps between them.
    rows, steps = np.nonzero(levels >= running)
    running -= levels
    drawdown = running.max(axis=1)
    gaps = np.diff(steps)
    same_row = rows[1:] == rows[:-1]
    closed = np.zeros(len(levels), dtype=np.int64)
    np.maximum.at(closed, rows[1:][same_row], np.where(gaps[same_row] >= 2, gaps[same_row], 0))
    last = np.flatnonzero(np.append(~same_row, True))  # the last high of each row (every row has step 0)
    open_end = levels.shape[1] - 1 - steps[last]
    return levels[:, -1], drawdown, np.maximum(closed, open_end)


def _own_levels(growth: NDArray[np.float64], steps: NDArray[np.int64]) -> NDArray[np.float64]:
    """The backtest's own log equity (its steps in their order) at ``steps``."""
    return np.concatenate(([0.0], np.cumsum(growth)))[steps]


def _log_growth(returns: NDArray[np.float64], paths: int, ruin_drawdown: float) -> NDArray[np.float64]:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1 or not np.isfinite(r).all():
        raise BootstrapError("returns must be a one-dimensional array of finite numbers")
    if isinstance(paths, bool) or not isinstance(paths, int) or paths < 1:
        raise BootstrapError(f"paths must be a whole number >= 1, got {paths!r}")
    if not 0.0 < ruin_drawdown < 1.0:
        raise BootstrapError(f"ruin_drawdown must be a fraction between 0 and 1, got {ruin_drawdown!r}")
    # A loss of everything (or more, after a short squeeze) keeps RUIN_FLOOR of the equity.
    return np.log(np.maximum(1.0 + r, RUIN_FLOOR))


def _summary(
    method: str,
    paths: int,
    seed: int,
    final: NDArray[np.float64],
    drawdown: NDArray[np.float64],
    duration: NDArray[np.int64],
    unit: str,
    ruin_drawdown: float,
    mean_block_length: float | None,
    fan: Fan,
) -> MonteCarlo:
    drawdown_pct = -100.0 * np.expm1(-drawdown)
    return MonteCarlo(
        method=method,
        paths=paths,
        seed=seed,
        final_return_pct=Percentiles.of(100.0 * np.expm1(final)),
        max_drawdown_pct=Percentiles.of(drawdown_pct),
        max_drawdown_duration=Percentiles.of(duration),
        duration_unit=unit,
        ruin_drawdown_pct=100.0 * ruin_drawdown,
        # Compared in log terms, where the drawdowns were measured, so a path exactly at the level counts.
        probability_of_ruin=float(np.mean(drawdown >= -math.log1p(-ruin_drawdown))),
        mean_block_length=mean_block_length,
        fan=fan,
        max_drawdown_histogram=Histogram.of(drawdown_pct, DRAWDOWN_BINS),
    )
