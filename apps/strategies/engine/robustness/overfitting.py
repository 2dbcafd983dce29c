"""Probability of backtest overfitting (PBO) by combinatorially symmetric cross-validation (CSCV).

Bailey, Borwein, López de Prado & Zhu (2015), "The Probability of Backtest Overfitting", Journal of
Computational Finance 20(4). Input: a matrix of ``T`` observations (rows, oldest first) by ``N`` trials
(columns), each column one trial's per-bar returns (or per-period performance).

1. Drop the oldest ``T mod S`` rows and cut the rest into ``S`` (even) consecutive blocks of equal size.
2. For each of the ``C(S, S/2)`` ways to choose half the blocks as the training set ``J`` (the other half,
   ``J'``, is the test set; both keep time order): score every trial by its Sharpe ratio on ``J`` and
   on ``J'``; take the trial ``n*`` that is best on ``J``; find its relative rank on ``J'``,
   ``w = rank / (N + 1)`` (rank 1 the worst, ties share their average rank), and its logit
   ``lambda = ln(w / (1 - w))``.
3. PBO is the share of combinations with ``lambda <= 0``: how often the in-sample winner is no better
   than the median trial out of sample. Skill-less trials give about 0.5; a real, stable edge near 0.

The paper draws the distribution of ``lambda``: :meth:`Overfitting.logit_histogram` keeps it in
``LOGIT_BINS`` bins symmetric about 0, so the bins left of 0 hold exactly the PBO's combinations.

The *performance degradation* pairs are the in-sample and out-of-sample Sharpe ratios of ``n*`` per
combination; ``probability_of_loss`` is the share where ``n*`` loses out of sample, and the slope of
the least-squares line through the pairs is the paper's degradation slope. A trial whose returns do
not vary over a half (it never trades there) scores a Sharpe ratio of 0 on it.

Vectorised: per block and trial the sums of returns and of squared returns (about a per-trial centre,
which keeps the variance accurate) are computed once; each combination's training sums are then a
matrix product of a 0/1 block selector with them, and a combination's test half is the training half
of its complement combination, whose Sharpe ratios are computed in the same step. Those
per-block sums (:class:`BlockSums`, a few dozen numbers) are all CSCV needs of a trial, so the workers
that backtest the trials can reduce each one's returns to them (:func:`block_sums`) and the step that
concludes the search runs CSCV without the returns matrix (:func:`overfitting_from_blocks`).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..metrics import finite_or_none
from .histogram import Histogram

DEFAULT_PARTITIONS = 16
LOGIT_BINS = 20
_COMBINATIONS_PER_STEP = 1024
# (sum of squared deviations) / (sum of squares about the centre) below this: the half does not vary.
_FLAT = 1e-9


class OverfittingError(ValueError):
    """A performance matrix or partition count CSCV cannot work with."""


@dataclass(frozen=True)
class Overfitting:
    """The outcome of CSCV; per-combination arrays are in :func:`itertools.combinations` order."""

    pbo: float
    logits: NDArray[np.float64]
    in_sample: NDArray[np.float64]  # the chosen trial's in-sample Sharpe ratio, per combination
    out_of_sample: NDArray[np.float64]  # its out-of-sample Sharpe ratio
    chosen: NDArray[np.intp]  # the chosen trial's column
    probability_of_loss: float
    degradation_slope: float | None
    partitions: int
    observations: int  # rows used, after dropping the oldest T mod S
    trials: int

    @property
    def combinations(self) -> int:
        return len(self.logits)

    def logit_histogram(self) -> Histogram:
        """The logits in ``LOGIT_BINS`` bins about 0; those left of it count ``lambda <= 0``."""
        return Histogram.around_zero(self.logits, LOGIT_BINS)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: the figures, the logits and their histogram, and the degradation pairs."""
        return {
            "pbo": self.pbo,
            "probability_of_loss": self.probability_of_loss,
            "degradation_slope": finite_or_none(self.degradation_slope),
            "partitions": self.partitions,
            "combinations": self.combinations,
            "observations": self.observations,
            "trials": self.trials,
            "logits": self.logits.tolist(),
            "logit_histogram": self.logit_histogram().to_dict(),
            "degradation": {
                "in_sample": self.in_sample.tolist(),
                "out_of_sample": self.out_of_sample.tolist(),
            },
        }


@dataclass(frozen=True)
class BlockSums:
    """One trial's returns as CSCV cuts them into ``partitions`` blocks of ``block`` observations (the
    oldest ``T mod partitions`` dropped): per block, the sum of the deviations from ``centre`` (the
    trial's mean over the kept rows) and the sum of their squares."""

    centre: float
    sums: NDArray[np.float64]
    squares: NDArray[np.float64]
    block: int

    def to_dict(self) -> dict[str, object]:
        return {
            "centre": self.centre,
            "block": self.block,
            "sums": self.sums.tolist(),
            "squares": self.squares.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BlockSums:
        return cls(
            centre=float(data["centre"]),
            sums=np.asarray(data["sums"], dtype=np.float64),
            squares=np.asarray(data["squares"], dtype=np.float64),
            block=int(data["block"]),
        )


def block_sums(returns: NDArray[np.float64], partitions: int = DEFAULT_PARTITIONS) -> BlockSums:
    """The per-block sums of one trial's per-bar ``returns`` that CSCV reads; exactly what
    :func:`probability_of_overfitting` computes for that column of its matrix."""
    column = _checked(np.asarray(returns, dtype=np.float64).reshape(-1, 1), partitions, trials=1)
    centre, sums, squares, block = _sums(column, partitions)
    return BlockSums(float(centre[0]), sums[:, 0], squares[:, 0], block)


def probability_of_overfitting(
    performance: NDArray[np.float64], partitions: int = DEFAULT_PARTITIONS
) -> Overfitting:
    """CSCV over a (T observations x N trials) matrix with ``partitions`` blocks; see the module docstring."""
    centre, sums, squares, block = _sums(_checked(performance, partitions), partitions)
    return _cscv(centre, sums, squares, block, partitions)


def overfitting_from_blocks(blocks: Sequence[BlockSums], partitions: int = DEFAULT_PARTITIONS) -> Overfitting:
    """CSCV over trials given by their :func:`block_sums` (all of the same window and ``partitions``):
    the same result as :func:`probability_of_overfitting` over their returns matrix."""
    if len(blocks) < 2:
        raise OverfittingError(f"CSCV compares trials: it needs at least 2, got {len(blocks)}")
    sizes = {item.block for item in blocks}
    if len(sizes) != 1 or any(
        len(item.sums) != partitions or len(item.squares) != partitions for item in blocks
    ):
        raise OverfittingError(
            f"the trials' block sums are not all of one window cut into {partitions} blocks"
        )
    centre = np.array([item.centre for item in blocks])
    sums = np.column_stack([item.sums for item in blocks])
    squares = np.column_stack([item.squares for item in blocks])
    if not (np.isfinite(centre).all() and np.isfinite(sums).all() and np.isfinite(squares).all()):
        raise OverfittingError("the trials' block sums must be finite numbers")
    return _cscv(centre, sums, squares, sizes.pop(), partitions)


def _sums(
    matrix: NDArray[np.float64], partitions: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], int]:
    """Per trial, the centre and the per-block sums of deviations and of their squares."""
    observations, trials = matrix.shape
    block = observations // partitions
    matrix = matrix[observations - block * partitions :]
    centre = matrix.mean(axis=0)
    deviations = (matrix - centre).reshape(partitions, block, trials)
    return centre, deviations.sum(axis=1), np.einsum("sbn,sbn->sn", deviations, deviations), block


def _cscv(
    centre: NDArray[np.float64],
    sums: NDArray[np.float64],
    squares: NDArray[np.float64],
    block: int,
    partitions: int,
) -> Overfitting:
    trials = sums.shape[1]
    selectors = _half_selectors(partitions)
    total, half = len(selectors), block * partitions // 2
    logit, pairs_in, pairs_out = np.empty(total), np.empty(total), np.empty(total)
    chosen = np.empty(total, dtype=np.intp)
    # The test half of combination i is the training half of combination total-1-i (complements reverse
    # the lexicographic order of half-size subsets), so each pair's Sharpe ratios are computed once.
    for start in range(0, total // 2, _COMBINATIONS_PER_STEP):
        first = np.arange(start, min(start + _COMBINATIONS_PER_STEP, total // 2))
        second = total - 1 - first  # the complements, row for row
        sharpe_first = _sharpe(selectors[first] @ sums, selectors[first] @ squares, half, centre)
        sharpe_second = _sharpe(selectors[second] @ sums, selectors[second] @ squares, half, centre)
        for rows, sharpe_in, sharpe_out in (
            (first, sharpe_first, sharpe_second),
            (second, sharpe_second, sharpe_first),
        ):
            best = np.argmax(sharpe_in, axis=1)
            each = np.arange(len(best))
            best_out = sharpe_out[each, best]
            below = (sharpe_out < best_out[:, None]).sum(axis=1)
            ties = (sharpe_out == best_out[:, None]).sum(axis=1)
            relative_rank = (below + (ties + 1) / 2.0) / (trials + 1)
            logit[rows] = np.log(relative_rank / (1.0 - relative_rank))
            pairs_in[rows], pairs_out[rows], chosen[rows] = sharpe_in[each, best], best_out, best
    return Overfitting(
        pbo=float(np.mean(logit <= 0.0)),
        logits=logit,
        in_sample=pairs_in,
        out_of_sample=pairs_out,
        chosen=chosen,
        probability_of_loss=float(np.mean(pairs_out < 0.0)),
        degradation_slope=_slope(pairs_in, pairs_out),
        partitions=partitions,
        observations=block * partitions,
        trials=trials,
    )


def _checked(performance: NDArray[np.float64], partitions: int, trials: int = 2) -> NDArray[np.float64]:
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 2 or partitions % 2:
        raise OverfittingError(f"partitions must be an even whole number >= 2, got {partitions!r}")
    matrix = np.asarray(performance, dtype=np.float64)
    if matrix.ndim != 2 or not np.isfinite(matrix).all():
        raise OverfittingError("performance must be a two-dimensional matrix of finite numbers")
    observations, columns = matrix.shape
    if columns < trials:
        raise OverfittingError(f"CSCV compares trials: it needs at least {trials} columns, got {columns}")
    if observations // partitions < 2:
        raise OverfittingError(
            f"{observations} observations are too few for {partitions} partitions: "
            "each partition needs at least 2"
        )
    return matrix


@functools.lru_cache(maxsize=4)
def _half_selectors(partitions: int) -> NDArray[np.float64]:
    """One row per choice of half the blocks, 1.0 on the chosen blocks (read-only: it is shared by
    every CSCV with this many partitions)."""
    chosen = np.array(list(itertools.combinations(range(partitions), partitions // 2)))
    selectors = np.zeros((len(chosen), partitions))
    np.put_along_axis(selectors, chosen, 1.0, axis=1)
    selectors.flags.writeable = False
    return selectors


def _sharpe(
    sums: NDArray[np.float64], squares: NDArray[np.float64], count: int, centre: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Sharpe ratios (ddof=1) from sums of deviations from ``centre`` and of their squares. In place
    where it can: CSCV calls it on every combination of blocks, and the temporaries were its cost."""
    spread = np.square(sums)
    spread /= count
    np.subtract(squares, spread, out=spread)
    flat = spread <= _FLAT * squares
    np.copyto(spread, 1.0, where=flat)
    spread /= count - 1
    np.sqrt(spread, out=spread)
    sharpe = sums / count
    sharpe += centre
    sharpe /= spread
    np.copyto(sharpe, 0.0, where=flat)
    return sharpe


def _slope(x: NDArray[np.float64], y: NDArray[np.float64]) -> float | None:
    spread = x - x.mean()
    denominator = float(spread @ spread)
    if denominator == 0.0 or not math.isfinite(denominator):
        return None
    return float(spread @ (y - y.mean())) / denominator
