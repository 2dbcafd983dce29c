"""Chart patterns built on confirmed swing points, each reported on the bar it becomes knowable.

*Swing high* at bar i: its high is above the highs of the ``order`` bars before it and not below
those of the ``order`` bars after it (swing lows mirror this). Deciding that takes the ``order``
bars after i, so the swing is *confirmed* at bar i + order, and every pattern built on swings is
reported no earlier than its last swing's confirmation.

The patterns read the *swing sequence*: swings in order of confirmation, kept alternating high,
low, high... (a new swing of the same kind as the last one replaces it if it is more extreme, and is
ignored otherwise). After every change the detectors look at its tail, exactly as a live system
would, so running them on history finds what a live system would have found on each bar.

Price tolerances scale with volatility: ATR(14) on the bar where the decision is made.

The scans over the swing sequence are sequential (a level moves with each touch, a pattern found
suppresses its overlapping repeats), so they are compiled loops over arrays of swings; each
detector returns :class:`~apps.market.domain.patterns.base.Hits`, columns with a row per hit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from apps.market.domain.patterns.base import BEARISH, BULLISH, NEUTRAL, Bars, Hits
from apps.market.domain.windows import kernel, lag, window_max

SWING_ORDER = 5  # bars on each side of a swing
LEVEL_TOLERANCE = 1.0  # ATRs: a swing this close to a level touches it
PEAK_TOLERANCE = 1.0  # ATRs: two tops (bottoms, shoulders) this close count as equal
MIN_DEPTH = 3.0  # ATRs: the dip between double tops (or the head above the shoulders: 1 ATR)
LINE_TOLERANCE = 1.0  # ATRs: a line fits its swings, is "flat", or two lines are "parallel"
BREAKOUT_MARGIN = 0.5  # ATRs: a close this far past a level breaks it
LEVEL_MEMORY = 500  # bars: a level not touched for this long is forgotten by the breakout detector
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


# --- support and resistance ------------------------------------------------------------------------


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


def detect_breakouts(b: Bars) -> Hits:
    """Breakout: a close more than ``BREAKOUT_MARGIN`` ATRs above a level that at least two swing
    highs had touched (resistance; bullish), or below a level at least two swing lows had touched
    (support; bearish), right after a close that was not; the touches must be confirmed before the
    bar, and the last of them at most ``LEVEL_MEMORY`` bars before. A level's breakouts alternate
    in direction: after breaking up it must break down before it can break up again, so chop
    around a level is not a stream of signals. Confidence averages the level's strength
    (1 - 0.5 ** (touches - 1), counting touches on the broken side) and the distance of the close
    past the level, up to 2 ATRs."""
    s, levels = swings(b), price_levels(b)
    start, end, direction, confidence, level, close, touches = _breakouts(
        s.index, s.confirmed, s.high, levels.price, levels.first_touch, levels.next_touch, b.close, b.atr
    )
    return Hits.of(
        "breakout",
        "chart",
        direction,
        start,
        end,
        confidence,
        {"level": level, "close": close},
        touches=touches,
    )


@kernel
def _breakouts(
    index: NDArray[np.int64],
    confirmed: NDArray[np.int64],
    high: NDArray[np.bool_],
    level_price: NDArray[np.float64],
    first_touch: NDArray[np.int64],
    next_touch: NDArray[np.int64],
    close: NDArray[np.float64],
    atr: NDArray[np.float64],
) -> tuple[
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.int64],
]:
    bars = len(close)
    room = 0  # at most one breakout per level and bar scanned
    for touch in range(len(index)):
        after = next_touch[touch]
        until = confirmed[after] if after >= 0 else bars - 1
        room += max(0, min(until, confirmed[touch] + LEVEL_MEMORY) - confirmed[touch])
    start, end = np.empty(room, dtype=np.int64), np.empty(room, dtype=np.int64)
    direction, touches = np.empty(room, dtype=np.int64), np.empty(room, dtype=np.int64)
    confidence, level, closed = np.empty(room), np.empty(room), np.empty(room)
    n = 0
    for first in first_touch:
        last_direction = NEUTRAL  # none yet
        highs = lows = 0
        touch = first
        while touch >= 0:
            highs, lows = highs + high[touch], lows + (not high[touch])
            since, price = confirmed[touch], level_price[touch]
            after = next_touch[touch]
            until = confirmed[after] if after >= 0 else bars - 1
            touch = after
            if max(highs, lows) < 2:
                continue
            for t in range(since + 1, min(until, since + LEVEL_MEMORY) + 1):
                margin = BREAKOUT_MARGIN * atr[t]
                up = close[t] > price + margin and close[t - 1] <= price + margin and highs >= 2
                down = close[t] < price - margin and close[t - 1] >= price - margin and lows >= 2
                if not (up or down):
                    continue
                way = BULLISH if close[t] > price else BEARISH
                if way == last_direction:
                    continue
                last_direction = way
                count = highs if way == BULLISH else lows
                strength = 1.0 - 0.5 ** (count - 1)
                distance = abs(close[t] - price) / (2 * atr[t])
                confidence[n] = 0.5 * strength + 0.5 * (distance if distance < 1.0 else 1.0)
                start[n], end[n], direction[n], touches[n] = index[first], t, way, count
                level[n], closed[n] = price, close[t]
                n += 1
    return start[:n], end[:n], direction[:n], confidence[:n], level[:n], closed[:n], touches[:n]


# --- double tops and bottoms, head and shoulders -----------------------------------------------------


@kernel
def _first_break(
    close: NDArray[np.float64],
    far: NDArray[np.float64],
    start: int,
    stop: int,
    base: float,
    slope: float,
    anchor: int,
    bearish: bool,
    invalid: float,
) -> int:
    """The first bar t in [start, stop) closing beyond the line ``base + slope * (t - anchor)``
    (below it if bearish), unless a bar up to it traded beyond ``invalid`` (above it if bearish,
    read from ``far``: highs if bearish, else lows); -1 if none."""
    for t in range(start, min(stop, len(close))):
        if far[t] > invalid if bearish else far[t] < invalid:
            return -1
        line = base + slope * (t - anchor)
        if close[t] < line if bearish else close[t] > line:
            return t
    return -1


def detect_double(b: Bars, pattern: Literal["double_top", "double_bottom"]) -> Hits:
    """Double top: two swing highs within ``PEAK_TOLERANCE`` ATRs of each other with a swing low at
    least ``MIN_DEPTH`` ATRs below the lower of them between them, confirmed by a close below that
    low (the neckline) within as many bars as separate the tops, before any high above the tops
    (+ tolerance). Target: the neckline minus the pattern's height. Double bottom mirrors it.
    Confidence averages how equal the tops are and the depth, up to 6 ATRs."""
    bearish = pattern == "double_top"
    s = swings(b)
    first, middle, second, end, confidence, target = _doubles(
        swing_tails(b),
        s.index,
        s.confirmed,
        s.price,
        s.high,
        b.close,
        b.high if bearish else b.low,
        b.atr,
        bearish,
    )
    names = ("first_top", "second_top") if bearish else ("first_bottom", "second_bottom")
    levels = {
        names[0]: s.price[first],
        names[1]: s.price[second],
        "neckline": s.price[middle],
        "target": target,
    }
    return Hits.of(pattern, "chart", BEARISH if bearish else BULLISH, s.index[first], end, confidence, levels)


@kernel
def _doubles(
    tails: NDArray[np.int64],
    index: NDArray[np.int64],
    confirmed: NDArray[np.int64],
    price: NDArray[np.float64],
    high: NDArray[np.bool_],
    close: NDArray[np.float64],
    far: NDArray[np.float64],
    atr: NDArray[np.float64],
    bearish: bool,
) -> tuple[
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.float64],
    NDArray[np.float64],
]:
    rows = len(tails)
    first_of, middle_of = np.empty(rows, dtype=np.int64), np.empty(rows, dtype=np.int64)
    second_of, end = np.empty(rows, dtype=np.int64), np.empty(rows, dtype=np.int64)
    confidence, target = np.empty(rows), np.empty(rows)
    sign = 1.0 if bearish else -1.0
    seen = np.zeros(len(close), dtype=np.bool_)  # bars that began a reported pattern
    n = 0
    for row in range(rows):
        first, middle, second = tails[row, TAIL - 3], tails[row, TAIL - 2], tails[row, TAIL - 1]
        if first < 0 or high[second] != bearish:
            continue
        a = atr[confirmed[second]]
        difference = abs(price[first] - price[second])
        extreme = sign * max(sign * price[first], sign * price[second])
        depth = min(sign * price[first], sign * price[second]) - sign * price[middle]
        if seen[index[first]] or difference > PEAK_TOLERANCE * a or depth < MIN_DEPTH * a:
            continue
        width = index[second] - index[first]
        stop = index[second] + width + 1
        invalid = extreme + sign * PEAK_TOLERANCE * a
        t = _first_break(close, far, confirmed[second], stop, price[middle], 0.0, 0, bearish, invalid)
        if t < 0:
            continue
        seen[index[first]] = True
        tops = (price[first] + price[second]) / 2.0
        deep = depth / (6 * a)
        confidence[n] = 0.5 * (1.0 - difference / (PEAK_TOLERANCE * a)) + 0.5 * (deep if deep < 1.0 else 1.0)
        target[n] = price[middle] - (tops - price[middle])
        first_of[n], middle_of[n], second_of[n], end[n] = first, middle, second, t
        n += 1
    return first_of[:n], middle_of[:n], second_of[:n], end[:n], confidence[:n], target[:n]


def detect_head_and_shoulders(
    b: Bars, pattern: Literal["head_and_shoulders", "inverse_head_and_shoulders"]
) -> Hits:
    """Head and shoulders: swing highs left shoulder, head, right shoulder with swing lows between;
    the head at least 1 ATR above both shoulders, the shoulders within ``PEAK_TOLERANCE`` ATRs of
    each other. The neckline is the line through the two lows; the pattern is confirmed by a close
    below it within as many bars as the pattern is wide, before any high above the head. Target:
    the neckline at the break minus the head's height above the neckline. The inverse mirrors it.
    Confidence averages shoulder symmetry and the head's prominence, up to 3 ATRs."""
    bearish = pattern == "head_and_shoulders"
    s = swings(b)
    left, head, right, end, confidence, neckline, target = _heads_and_shoulders(
        swing_tails(b),
        s.index,
        s.confirmed,
        s.price,
        s.high,
        b.close,
        b.high if bearish else b.low,
        b.atr,
        bearish,
    )
    levels = {"left_shoulder": s.price[left], "head": s.price[head], "right_shoulder": s.price[right]}
    levels |= {"neckline": neckline, "target": target}
    return Hits.of(pattern, "chart", BEARISH if bearish else BULLISH, s.index[left], end, confidence, levels)


@kernel
def _heads_and_shoulders(
    tails: NDArray[np.int64],
    index: NDArray[np.int64],
    confirmed: NDArray[np.int64],
    price: NDArray[np.float64],
    high: NDArray[np.bool_],
    close: NDArray[np.float64],
    far: NDArray[np.float64],
    atr: NDArray[np.float64],
    bearish: bool,
) -> tuple[
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
]:
    rows = len(tails)
    left_of, head_of = np.empty(rows, dtype=np.int64), np.empty(rows, dtype=np.int64)
    right_of, end = np.empty(rows, dtype=np.int64), np.empty(rows, dtype=np.int64)
    confidence, neckline, target = np.empty(rows), np.empty(rows), np.empty(rows)
    sign = 1.0 if bearish else -1.0
    seen = np.zeros(len(close), dtype=np.bool_)  # bars that began a reported pattern
    n = 0
    for row in range(rows):
        left, low1, head, low2, right = (
            tails[row, 0],
            tails[row, 1],
            tails[row, 2],
            tails[row, 3],
            tails[row, 4],
        )
        if left < 0 or high[right] != bearish:
            continue
        a = atr[confirmed[right]]
        shoulders = abs(price[left] - price[right])
        prominence = sign * price[head] - max(sign * price[left], sign * price[right])
        if seen[index[left]] or shoulders > PEAK_TOLERANCE * a or prominence < a:
            continue
        slope = (price[low2] - price[low1]) / (index[low2] - index[low1])
        width = index[right] - index[left]
        stop = index[right] + width + 1
        t = _first_break(
            close, far, confirmed[right], stop, price[low1], slope, index[low1], bearish, price[head]
        )
        if t < 0:
            continue
        seen[index[left]] = True
        neck_at_break = price[low1] + slope * (t - index[low1])
        height = price[head] - (price[low1] + slope * (index[head] - index[low1]))
        prominent = prominence / (3 * a)
        confidence[n] = 0.5 * (1.0 - shoulders / (PEAK_TOLERANCE * a)) + 0.5 * (
            prominent if prominent < 1.0 else 1.0
        )
        neckline[n], target[n] = neck_at_break, neck_at_break - height
        left_of[n], head_of[n], right_of[n], end[n] = left, head, right, t
        n += 1
    return left_of[:n], head_of[:n], right_of[:n], end[:n], confidence[:n], neckline[:n], target[:n]


# --- lines: triangles, channels, trend lines ---------------------------------------------------------


@kernel
def _fit(
    points: NDArray[np.int64], index: NDArray[np.int64], price: NDArray[np.float64]
) -> tuple[float, float, float]:
    """Ordinary least squares through swing points, in plain arithmetic (np.polyfit's SVD costs
    more than the rest of the pattern scan): slope, intercept and the worst miss of the line."""
    count = len(points)
    sum_x = 0  # an integer sum of bar numbers, divided once
    mean_y = 0.0
    for p in points:
        sum_x += index[p]
        mean_y += price[p]
    mean_x = sum_x / count
    mean_y /= count
    spread = 0.0
    covariance = 0.0
    for p in points:
        spread += (index[p] - mean_x) ** 2
        covariance += (index[p] - mean_x) * (price[p] - mean_y)
    slope = covariance / spread
    intercept = mean_y - slope * mean_x
    worst_miss = 0.0
    for p in points:
        worst_miss = max(worst_miss, abs(intercept + slope * index[p] - price[p]))
    return slope, intercept, worst_miss


# Formation shapes, numbered: (pattern, direction) by the (upper, lower) line shapes.
FORMATIONS: dict[tuple[str, str], tuple[str, int]] = {
    ("flat", "rising"): ("ascending_triangle", BULLISH),
    ("falling", "flat"): ("descending_triangle", BEARISH),
    ("falling", "rising"): ("symmetrical_triangle", NEUTRAL),
    ("rising", "rising"): ("channel", BULLISH),
    ("falling", "falling"): ("channel", BEARISH),
    ("flat", "flat"): ("channel", NEUTRAL),
}
_SHAPES = ("falling", "flat", "rising")
_FORMATION_OF = np.full((3, 3), -1, dtype=np.int64)  # (upper shape, lower shape) -> formation number
for _number, _shapes in enumerate(FORMATIONS):
    _FORMATION_OF[_SHAPES.index(_shapes[0]), _SHAPES.index(_shapes[1])] = _number
_CHANNELS = np.array([pattern == "channel" for pattern, _ in FORMATIONS.values()])


@kernel
def _shape(change: float, tolerance: float) -> int:
    """0 falling, 1 flat (moves at most the tolerance), 2 rising."""
    if abs(change) <= tolerance:
        return 1
    return 2 if change > 0 else 0


def formations(
    b: Bars,
) -> tuple[
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.float64],
    NDArray[np.float64],
]:
    """Every triangle and channel, computed once per frame (see :func:`detect_formation`): the
    formation number (a key of ``FORMATIONS``, in order), then its columns."""
    s = swings(b)
    return b.memo(
        "formations",
        lambda: _formations(
            swing_tails(b), s.index, s.confirmed, s.price, s.high, b.atr, _FORMATION_OF, _CHANNELS
        ),
    )


@kernel
def _formations(
    tails: NDArray[np.int64],
    index: NDArray[np.int64],
    confirmed: NDArray[np.int64],
    price: NDArray[np.float64],
    high: NDArray[np.bool_],
    atr: NDArray[np.float64],
    formation_of: NDArray[np.int64],
    channels: NDArray[np.bool_],
) -> tuple[
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.float64],
    NDArray[np.float64],
]:
    rows = len(tails)
    shape, first_of = np.empty(rows, dtype=np.int64), np.empty(rows, dtype=np.int64)
    last_of, confirmed_of = np.empty(rows, dtype=np.int64), np.empty(rows, dtype=np.int64)
    confidence = np.empty(rows)
    levels = np.empty((rows, 4))
    last_end = np.full(len(channels), -1, dtype=np.int64)
    n = 0
    for row in range(rows):
        tail = tails[row]
        if tail[0] < 0:
            continue
        highs = np.array([p for p in tail if high[p]])
        lows = np.array([p for p in tail if not high[p]])
        upper_slope, upper_intercept, upper_miss = _fit(highs, index, price)
        lower_slope, lower_intercept, lower_miss = _fit(lows, index, price)
        first, last = index[tail[0]], index[tail[TAIL - 1]]
        tolerance = LINE_TOLERANCE * atr[confirmed[tail[TAIL - 1]]]
        span = last - first
        du, dl = upper_slope * span, lower_slope * span
        formation = formation_of[_shape(du, tolerance), _shape(dl, tolerance)]
        fits = max(upper_miss, lower_miss) <= tolerance
        if (
            formation < 0
            or not fits
            or upper_intercept + upper_slope * last <= lower_intercept + lower_slope * last
        ):
            continue
        if channels[formation] and abs(du - dl) > tolerance:
            continue
        continuing = last_end[formation] >= first
        last_end[formation] = last
        if continuing:
            continue
        levels[n, 0] = upper_intercept + upper_slope * first
        levels[n, 1] = lower_intercept + lower_slope * first
        levels[n, 2] = upper_intercept + upper_slope * last
        levels[n, 3] = lower_intercept + lower_slope * last
        confidence[n] = 1.0 - 0.5 * max(upper_miss, lower_miss) / tolerance
        shape[n], first_of[n], last_of[n], confirmed_of[n] = formation, first, last, confirmed[tail[TAIL - 1]]
        n += 1
    return shape[:n], first_of[:n], last_of[:n], confirmed_of[:n], confidence[:n], levels[:n]


def detect_formation(b: Bars, pattern: str) -> Hits:
    """Triangles and channels, from lines fitted to the highs and to the lows of the last five
    alternating swings (three of one kind, two of the other) whenever the sequence changes. Over the
    formation's span each line is *flat* if it moves at most ``LINE_TOLERANCE`` ATRs, else rising or
    falling; the three-point line must pass within that tolerance of its swings.

    - ascending triangle (bullish): flat highs, rising lows;
    - descending triangle (bearish): falling highs, flat lows;
    - symmetrical triangle (neutral): falling highs, rising lows;
    - channel: both lines rising (bullish), falling (bearish) or flat (neutral) and parallel: their
      moves over the span differ by at most the tolerance.

    A formation is reported once, when first recognised; a window overlapping the previous window
    of the same pattern continues that formation. Levels: the upper and lower line at the first
    and last swing. Confidence: 0.5 plus 0.5 times how closely the lines fit (1 = exactly)."""
    shape, first, last, confirmed, confidence, levels = formations(b)
    kinds = list(FORMATIONS.values())
    mine = np.isin(shape, [k for k, (name, _) in enumerate(kinds) if name == pattern])
    direction = np.array([d for _, d in kinds], dtype=np.int8)[shape[mine]]
    names = ("upper_start", "lower_start", "upper", "lower")
    columns = {name: levels[mine, k] for k, name in enumerate(names)}
    return Hits.of(
        pattern, "chart", direction, first[mine], last[mine], confidence[mine], columns, confirmed[mine], TAIL
    )


def detect_trend_lines(b: Bars) -> Hits:
    """Trend line: a line through the last three swing lows of the sequence that rises by more than
    ``LINE_TOLERANCE`` ATRs, passes within that tolerance of all three, and has no close more than
    the tolerance below it in between (bullish, a support line); or the same through three falling
    swing highs with no close above it (bearish). Reported once per line, when its third swing is
    confirmed; a later line overlapping the previous one of the same direction continues it.
    Levels: the line at its first and last swing and projected to the confirmation bar.
    Confidence: 0.5 plus 0.5 times how closely the line fits."""
    s = swings(b)
    direction, first, last, confirmed, confidence, levels = _trend_lines(
        swing_tails(b), s.index, s.confirmed, s.price, s.high, b.close, b.atr
    )
    columns = {name: levels[:, k] for k, name in enumerate(("start", "end", "projected"))}
    return Hits.of("trend_line", "chart", direction, first, last, confidence, columns, confirmed, 3)


@kernel
def _trend_lines(
    tails: NDArray[np.int64],
    index: NDArray[np.int64],
    confirmed: NDArray[np.int64],
    price: NDArray[np.float64],
    high: NDArray[np.bool_],
    close: NDArray[np.float64],
    atr: NDArray[np.float64],
) -> tuple[
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.float64],
    NDArray[np.float64],
]:
    rows = len(tails)
    direction, first_of = np.empty(rows, dtype=np.int64), np.empty(rows, dtype=np.int64)
    last_of, confirmed_of = np.empty(rows, dtype=np.int64), np.empty(rows, dtype=np.int64)
    confidence = np.empty(rows)
    levels = np.empty((rows, 3))
    last_end = np.full(3, -1, dtype=np.int64)  # by direction code
    n = 0
    for row in range(rows):
        tail = tails[row]
        if tail[0] < 0:
            continue
        points = tail[0::2]  # the three swings of the newest one's kind
        bullish = not high[tail[TAIL - 1]]
        slope, intercept, worst_miss = _fit(points, index, price)
        first, last, seen_at = index[points[0]], index[points[2]], confirmed[points[2]]
        tolerance = LINE_TOLERANCE * atr[seen_at]
        sign = 1.0 if bullish else -1.0
        if sign * slope * (last - first) <= tolerance or worst_miss > tolerance:
            continue
        through = False
        for t in range(first, last + 1):
            if sign * (close[t] - (intercept + slope * t)) < -tolerance:
                through = True
                break
        if through:
            continue
        way = BULLISH if bullish else BEARISH
        continuing = last_end[way] >= first
        last_end[way] = last
        if continuing:
            continue
        levels[n, 0] = intercept + slope * first
        levels[n, 1] = intercept + slope * last
        levels[n, 2] = intercept + slope * seen_at
        confidence[n] = 1.0 - 0.5 * worst_miss / tolerance
        direction[n], first_of[n], last_of[n], confirmed_of[n] = way, first, last, seen_at
        n += 1
    return direction[:n], first_of[:n], last_of[:n], confirmed_of[:n], confidence[:n], levels[:n]
