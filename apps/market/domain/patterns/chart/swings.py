"""Swing points, the alternating swing sequence and the swing high and low patterns.

*Swing high* at bar i: its high is above the highs of the ``order`` bars before it and not below
those of the ``order`` bars after it (swing lows mirror this). Deciding that takes the ``order``
bars after i, so the swing is *confirmed* at bar i + order, and every pattern built on swings is
reported no earlier than its last swing's confirmation.

The patterns read the *swing sequence*: swings in order of confirmation, kept alternating high,
low, high... (a new swing of the same kind as the last one replaces it if it is more extreme, and is
ignored otherwise). After every change the detectors look at its tail, exactly as a live system
would, so running them on history finds what a live system would have found on each bar.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from apps.market.domain.patterns.base import BEARISH, BULLISH, Bars, Hits
from apps.market.domain.windows import kernel, lag, window_max

SWING_ORDER = 5  # bars on each side of a swing
TAIL = 5  # the longest tail of the swing sequence a detector reads


@dataclass(frozen=True)
class Swing:
    """A swing point: the bar of the extreme, the bar it is confirmed on, its price and kind."""

    index: int
    confirmed: int
    price: float
    kind: Literal["high", "low"]


@dataclass(frozen=True)
class Swings:
    """Every swing high and low as columns, sorted by confirmation bar (then highs first)."""

    index: NDArray[np.int64]
    confirmed: NDArray[np.int64]
    price: NDArray[np.float64]
    high: NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.index)

    def __iter__(self) -> Iterator[Swing]:
        for i, c, p, h in zip(self.index, self.confirmed, self.price, self.high, strict=True):
            yield Swing(int(i), int(c), float(p), "high" if h else "low")


def find_swings(b: Bars, order: int = SWING_ORDER) -> Swings:
    """Every swing high and low, sorted by confirmation bar (then by bar)."""

    def swings_of(values: NDArray[np.float64], sign: float) -> NDArray[np.intp]:
        signed = sign * values
        before = lag(window_max(signed, order), 1)
        after = np.full(b.n, np.nan)
        after[: max(0, b.n - order)] = window_max(signed, order)[order:]
        return np.flatnonzero((signed > before) & (signed >= after))

    highs, lows = swings_of(b.high, 1.0), swings_of(b.low, -1.0)
    index = np.concatenate((highs, lows))
    high = np.concatenate((np.ones(len(highs), bool), np.zeros(len(lows), bool)))
    order_ = np.lexsort((~high, index + order))
    index, high = index[order_], high[order_]
    return Swings(index, index + order, np.where(high, b.high[index], b.low[index]), high)


def swings(b: Bars) -> Swings:
    return b.memo("swings", lambda: find_swings(b))


def swing_tails(b: Bars) -> NDArray[np.int64]:
    """The last ``TAIL`` swings of the alternating sequence after each change to it: one row per
    change, swing numbers oldest to newest, -1 where the sequence was shorter."""
    return b.memo("tails", lambda: _tails(swings(b).price, swings(b).high, TAIL))


@kernel
def _tails(price: NDArray[np.float64], high: NDArray[np.bool_], length: int) -> NDArray[np.int64]:
    tails = np.full((len(price), length), -1, dtype=np.int64)
    sequence = np.empty(len(price), dtype=np.int64)
    size = changes = 0
    for s in range(len(price)):
        if size and high[sequence[size - 1]] == high[s]:
            last = sequence[size - 1]
            if not (price[s] > price[last] if high[s] else price[s] < price[last]):
                continue
            sequence[size - 1] = s
        else:
            sequence[size] = s
            size += 1
        for k in range(min(size, length)):
            tails[changes, length - 1 - k] = sequence[size - 1 - k]
        changes += 1
    return tails[:changes]


def detect_swings(b: Bars, kind: Literal["high", "low"]) -> Hits:
    """Swing highs (bearish: a local top) or lows (bullish), reported on their confirmation bar.
    Confidence: the swing's height above the lowest low (depth below the highest high) of the bars
    around it, up to 4 ATRs."""
    s = swings(b)
    mine = s.high if kind == "high" else ~s.high
    index, confirmed, price = s.index[mine], s.confirmed[mine], s.price[mine]
    height = _swing_heights(index, confirmed, price, b.low if kind == "high" else b.high, kind == "high")
    return Hits.of(
        f"swing_{kind}",
        "chart",
        BEARISH if kind == "high" else BULLISH,
        index,
        index,
        height / (4 * b.atr[confirmed]),
        {"price": price},
        confirmed,
    )


@kernel
def _swing_heights(
    index: NDArray[np.int64],
    confirmed: NDArray[np.int64],
    price: NDArray[np.float64],
    far: NDArray[np.float64],
    high: bool,
) -> NDArray[np.float64]:
    """Each swing's height above the lowest low (or depth below the highest high) of the bars
    from ``SWING_ORDER`` before it to its confirmation."""
    out = np.empty(len(index))
    for k in range(len(index)):
        extreme = far[max(0, index[k] - SWING_ORDER)]
        for t in range(max(0, index[k] - SWING_ORDER), confirmed[k] + 1):
            extreme = min(extreme, far[t]) if high else max(extreme, far[t])
        out[k] = price[k] - extreme if high else extreme - price[k]
    return out
