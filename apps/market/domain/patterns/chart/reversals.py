"""Double tops and bottoms, head and shoulders and its inverse: confirmed by a close through the neckline."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from apps.market.domain.patterns.base import BEARISH, BULLISH, Bars, Hits
from apps.market.domain.patterns.chart.swings import TAIL, swing_tails, swings
from apps.market.domain.windows import kernel

PEAK_TOLERANCE = 1.0  # ATRs: two tops (bottoms, shoulders) this close count as equal
MIN_DEPTH = 3.0  # ATRs: the dip between double tops (or the head above the shoulders: 1 ATR)


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
