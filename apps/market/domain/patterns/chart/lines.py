"""Triangles, channels and trend lines: straight lines fitted through the latest swings."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from apps.market.domain.patterns.base import BEARISH, BULLISH, NEUTRAL, Bars, Hits
from apps.market.domain.patterns.chart.swings import TAIL, swing_tails, swings
from apps.market.domain.windows import kernel

LINE_TOLERANCE = 1.0  # ATRs: a line fits its swings, is "flat", or two lines are "parallel"


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
