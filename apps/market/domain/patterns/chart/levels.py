"""Support and resistance: swings clustered into price levels, each reported from its second touch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from apps.market.domain.patterns.base import BEARISH, BULLISH, Bars, Hits
from apps.market.domain.patterns.chart.swings import swings
from apps.market.domain.windows import kernel

LEVEL_TOLERANCE = 1.0  # ATRs: a swing this close to a level touches it


@dataclass(frozen=True)
class Levels:
    """Where each swing went: the level it touched or started (numbered in order of creation), the
    level's price and touch count after it, and each level's touches as a chain of swings."""

    level: NDArray[np.int64]
    price: NDArray[np.float64]
    count: NDArray[np.int64]
    first_touch: NDArray[np.int64]
    next_touch: NDArray[np.int64]


def price_levels(b: Bars) -> Levels:
    """Cluster swings into levels, one swing at a time in confirmation order: a swing within
    ``LEVEL_TOLERANCE`` ATRs of the nearest level touches it (the level moves to the mean of its
    touches), else it starts a level."""

    def build() -> Levels:
        s = swings(b)
        tolerance = LEVEL_TOLERANCE * b.atr[s.confirmed]
        return Levels(*_cluster(s.price, tolerance))

    return b.memo("levels", build)


@kernel
def _cluster(
    price: NDArray[np.float64], tolerance: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    count = len(price)
    level = np.empty(count, dtype=np.int64)
    after = np.empty(count)
    touches = np.empty(count, dtype=np.int64)
    first = np.empty(count, dtype=np.int64)
    last = np.empty(count, dtype=np.int64)
    next_touch = np.full(count, -1, dtype=np.int64)
    sizes = np.empty(count, dtype=np.int64)
    scratch = np.empty(count)
    # The levels' prices kept sorted (with each level's place), so the nearest is a binary search
    # away and a touch moves its level only past the levels it overtakes.
    keys = np.empty(count)
    ids = np.empty(count, dtype=np.int64)
    place = np.empty(count, dtype=np.int64)
    levels = 0
    for s in range(count):
        p = price[s]
        low, right = 0, levels  # binary search: right = the first level priced at or above p
        while low < right:
            middle = (low + right) // 2
            if keys[middle] < p:
                low = middle + 1
            else:
                right = middle
        distance = np.inf
        if right < levels:
            distance = abs(keys[right] - p)
        if right > 0:
            distance = min(distance, abs(keys[right - 1] - p))
        # argmin over all levels: of the equally near ones (adjacent here), the oldest.
        nearest = -1
        k = right - 1
        while k >= 0 and abs(keys[k] - p) == distance:
            nearest = ids[k] if nearest < 0 else min(nearest, ids[k])
            k -= 1
        k = right
        while k < levels and abs(keys[k] - p) == distance:
            nearest = ids[k] if nearest < 0 else min(nearest, ids[k])
            k += 1
        if nearest >= 0 and distance <= tolerance[s]:
            next_touch[last[nearest]] = s
            last[nearest] = s
            sizes[nearest] += 1
            touch, n = first[nearest], 0
            while touch >= 0:
                scratch[n] = price[touch]
                touch, n = next_touch[touch], n + 1
            moved = _pairwise_sum(scratch, 0, n) / n  # what np.mean gives, to the bit
            k = place[nearest]
            while k + 1 < levels and keys[k + 1] < moved:
                keys[k], ids[k], place[ids[k + 1]] = keys[k + 1], ids[k + 1], k
                k += 1
            while k > 0 and keys[k - 1] > moved:
                keys[k], ids[k], place[ids[k - 1]] = keys[k - 1], ids[k - 1], k
                k -= 1
            keys[k], ids[k], place[nearest] = moved, nearest, k
            level[s] = nearest
        else:
            for k in range(levels, right, -1):
                keys[k], ids[k], place[ids[k - 1]] = keys[k - 1], ids[k - 1], k
            keys[right], ids[right], place[levels] = p, levels, right
            sizes[levels], first[levels], last[levels] = 1, s, s
            level[s] = levels
            levels += 1
        after[s], touches[s] = keys[place[level[s]]], sizes[level[s]]
    return level, after, touches, first[:levels], next_touch


@kernel
def _pairwise_sum(a: NDArray[np.float64], start: int, n: int) -> float:
    """numpy's float64 summation, to the bit: runs of up to 128 values summed with eight
    accumulators, longer runs split in two (at a multiple of 8) and their sums added. The halving
    is walked with an explicit stack, as numba cannot cache recursive functions."""
    starts, sizes = np.empty(64, dtype=np.int64), np.empty(64, dtype=np.int64)
    steps, lefts = np.zeros(64, dtype=np.int64), np.empty(64)
    starts[0], sizes[0], top, returned = start, n, 1, 0.0
    while top:
        s, m = starts[top - 1], sizes[top - 1]
        half = m // 2 - (m // 2) % 8
        if m <= 128:
            returned, top = _run_sum(a, s, m), top - 1
        elif steps[top - 1] == 0:  # sum the first half
            steps[top - 1] = 1
            starts[top], sizes[top], steps[top], top = s, half, 0, top + 1
        elif steps[top - 1] == 1:  # then the second
            steps[top - 1], lefts[top - 1] = 2, returned
            starts[top], sizes[top], steps[top], top = s + half, m - half, 0, top + 1
        else:
            returned, top = lefts[top - 1] + returned, top - 1
    return returned


@kernel
def _run_sum(a: NDArray[np.float64], start: int, n: int) -> float:
    if n < 8:
        total = 0.0
        for i in range(start, start + n):
            total += a[i]
        return total
    r0, r1, r2, r3 = a[start], a[start + 1], a[start + 2], a[start + 3]
    r4, r5, r6, r7 = a[start + 4], a[start + 5], a[start + 6], a[start + 7]
    i = 8
    while i < n - n % 8:
        r0, r1, r2, r3 = (
            r0 + a[start + i],
            r1 + a[start + i + 1],
            r2 + a[start + i + 2],
            r3 + a[start + i + 3],
        )
        r4, r5, r6, r7 = (
            r4 + a[start + i + 4],
            r5 + a[start + i + 5],
            r6 + a[start + i + 6],
            r7 + a[start + i + 7],
        )
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        total += a[start + i]
        i += 1
    return float(total)


def detect_levels(b: Bars, pattern: Literal["support", "resistance"]) -> Hits:
    """Support (resistance): a level touched by at least two swings, with the close on the bar that
    confirmed its latest touch above (below) it. Reported again on every further touch, so each
    detection is the level as known on its confirmation bar; ``start_index`` (the first touch)
    identifies the level across its reports. Confidence (strength) = 1 - 0.5 ** (touches - 1):
    0.5, 0.75, 0.875..."""
    rows = b.memo("level_reports", lambda: _level_reports(b))
    start, end, confirmed, price, low, high, count = rows
    support = b.close[confirmed] >= price
    mine = support if pattern == "support" else ~support
    return Hits.of(
        pattern,
        "chart",
        BULLISH if pattern == "support" else BEARISH,
        start[mine],
        end[mine],
        1.0 - 0.5 ** (count[mine] - 1),
        {"price": price[mine], "zone_low": low[mine], "zone_high": high[mine]},
        confirmed[mine],
        count[mine],
    )


def _level_reports(
    b: Bars,
) -> tuple[
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.int64],
]:
    s, levels = swings(b), price_levels(b)
    return _reports(
        s.index, s.confirmed, s.price, levels.price, levels.count, levels.first_touch, levels.next_touch
    )


@kernel
def _reports(
    index: NDArray[np.int64],
    confirmed: NDArray[np.int64],
    price: NDArray[np.float64],
    level_price: NDArray[np.float64],
    level_count: NDArray[np.int64],
    first_touch: NDArray[np.int64],
    next_touch: NDArray[np.int64],
) -> tuple[
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.int64],
]:
    """Every level from its second touch on, level by level: first and latest touched bar, the bar
    that confirmed the touch, the level's price, the lowest and highest touch, the touch count."""
    rows = len(index)
    start, end, when = (
        np.empty(rows, dtype=np.int64),
        np.empty(rows, dtype=np.int64),
        np.empty(rows, dtype=np.int64),
    )
    at, low, high = np.empty(rows), np.empty(rows), np.empty(rows)
    count = np.empty(rows, dtype=np.int64)
    n = 0
    for first in first_touch:
        latest, lowest, highest = index[first], price[first], price[first]
        touch = next_touch[first]
        while touch >= 0:
            latest = max(latest, index[touch])
            lowest, highest = min(lowest, price[touch]), max(highest, price[touch])
            start[n], end[n], when[n] = index[first], latest, confirmed[touch]
            at[n], low[n], high[n], count[n] = level_price[touch], lowest, highest, level_count[touch]
            n += 1
            touch = next_touch[touch]
    return start[:n], end[:n], when[:n], at[:n], low[:n], high[:n], count[:n]
