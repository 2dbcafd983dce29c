"""A histogram small enough to store with a report: bin edges and counts of values over many paths.

A report keeps the shape of a distribution (the maximum drawdowns over Monte Carlo paths, the logits
of CSCV's combinations) in ``bins + 1`` edges and ``bins`` counts, never the values themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..metrics import finite_or_none

# A spread this small relative to the values is rounding, not a distribution.
_ROUNDING = 1e-12


@dataclass(frozen=True)
class Histogram:
    """``counts[i]`` values fell between ``edges[i]`` and ``edges[i + 1]``; the counts sum to the
    number of values."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]

    @classmethod
    def of(cls, values: NDArray[np.floating] | NDArray[np.integer], bins: int) -> Histogram:
        """``bins`` equal bins from the smallest value to the largest, as :func:`numpy.histogram`:
        each bin holds its left edge, the last one its right edge too (one value: a bin around it).
        Values that differ only by rounding count as one value: numpy refuses bins narrower than the
        spacing of floats there (the drawdowns of paths that reorder the same few trades)."""
        data = np.asarray(values, dtype=np.float64)
        if data.size:
            low, high = float(data.min()), float(data.max())
            if high - low <= _ROUNDING * max(abs(low), abs(high)):
                data = np.full(data.shape, low)  # numpy puts equal values in one bin around them
        counts, edges = np.histogram(data, bins=bins)
        return cls(tuple(edges.tolist()), tuple(counts.tolist()))

    @classmethod
    def around_zero(cls, values: NDArray[np.floating], bins: int) -> Histogram:
        """``bins`` (even) equal bins symmetric about 0, each holding its *right* edge (the first one
        both), so the bins left of 0 hold exactly the values <= 0."""
        if bins < 2 or bins % 2:
            raise ValueError(f"bins must be an even whole number >= 2, got {bins!r}")
        data = np.asarray(values, dtype=np.float64)
        bound = float(np.abs(data).max(initial=0.0)) or 1.0
        edges = np.linspace(-bound, bound, bins + 1)
        edges[bins // 2] = 0.0  # exact, whatever linspace's rounding
        # numpy's bins hold their left edge: count the negated values over the mirrored edges.
        counts = np.histogram(-data, bins=-edges[::-1])[0][::-1]
        return cls(tuple(edges.tolist()), tuple(counts.tolist()))

    def to_dict(self) -> dict[str, list[float | None] | list[int]]:
        return {"edges": [finite_or_none(edge) for edge in self.edges], "counts": list(self.counts)}
