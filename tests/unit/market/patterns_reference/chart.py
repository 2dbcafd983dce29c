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
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from apps.market.domain.windows import lag, window_max
from tests.unit.market.patterns_reference.base import Bars, Detection, Direction

SWING_ORDER = 5  # bars on each side of a swing
LEVEL_TOLERANCE = 1.0  # ATRs: a swing this close to a level touches it
PEAK_TOLERANCE = 1.0  # ATRs: two tops (bottoms, shoulders) this close count as equal
MIN_DEPTH = 3.0  # ATRs: the dip between double tops (or the head above the shoulders: 1 ATR)
LINE_TOLERANCE = 1.0  # ATRs: a line fits its swings, is "flat", or two lines are "parallel"
BREAKOUT_MARGIN = 0.5  # ATRs: a close this far past a level breaks it
LEVEL_MEMORY = 500  # bars: a level not touched for this long is forgotten by the breakout detector


@dataclass(frozen=True)
class Swing:
    """A swing point: the bar of the extreme, the bar it is confirmed on, its price and kind."""

    index: int
    confirmed: int
    price: float
    kind: Literal["high", "low"]


def find_swings(b: Bars, order: int = SWING_ORDER) -> list[Swing]:
    """Every swing high and low, sorted by confirmation bar (then by bar)."""

    def swings_of(values: np.ndarray, kind: Literal["high", "low"]) -> list[Swing]:
        sign = 1.0 if kind == "high" else -1.0
        signed = sign * values
        before = lag(window_max(signed, order), 1)
        after = np.full(b.n, np.nan)
        after[: max(0, b.n - order)] = window_max(signed, order)[order:]
        bars = np.flatnonzero((signed > before) & (signed >= after))
        return [Swing(int(i), int(i) + order, float(values[i]), kind) for i in bars]

    swings = swings_of(b.high, "high") + swings_of(b.low, "low")
    return sorted(swings, key=lambda s: (s.confirmed, s.kind == "low"))


def swings(b: Bars) -> list[Swing]:
    return b.memo("swings", lambda: find_swings(b))


def swing_tails(b: Bars, length: int = 6) -> list[tuple[Swing, ...]]:
    """The last ``length`` swings of the alternating sequence after each change to it."""
    return b.memo(f"tails{length}", lambda: list(_tails(swings(b), length)))


def _tails(all_swings: list[Swing], length: int) -> Iterator[tuple[Swing, ...]]:
    sequence: list[Swing] = []
    for swing in all_swings:
        if sequence and sequence[-1].kind == swing.kind:
            more_extreme = (
                swing.price > sequence[-1].price if swing.kind == "high" else swing.price < sequence[-1].price
            )
            if not more_extreme:
                continue
            sequence[-1] = swing
        else:
            sequence.append(swing)
        yield tuple(sequence[-length:])


def detect_swings(b: Bars, kind: Literal["high", "low"]) -> list[Detection]:
    """Swing highs (bearish: a local top) or lows (bullish), reported on their confirmation bar.
    Confidence: the swing's height above the lowest low (depth below the highest high) of the bars
    around it, up to 4 ATRs."""
    found = []
    for s in swings(b):
        if s.kind != kind:
            continue
        around = slice(max(0, s.index - SWING_ORDER), s.confirmed + 1)
        height = s.price - b.low[around].min() if kind == "high" else b.high[around].max() - s.price
        direction: Direction = "bearish" if kind == "high" else "bullish"
        confidence = height / (4 * b.atr[s.confirmed])
        found.append(
            b.detection(
                f"swing_{kind}",
                "chart",
                direction,
                s.index,
                s.index,
                confidence,
                {"price": s.price},
                s.confirmed,
            )
        )
    return found


# --- support and resistance ------------------------------------------------------------------------


@dataclass
class Level:
    """A price where swings cluster; ``history`` holds (confirmation bar, price) after each touch."""

    touches: list[Swing]
    history: list[tuple[int, float]]

    @property
    def price(self) -> float:
        return self.history[-1][1]


def price_levels(b: Bars) -> list[Level]:
    """Cluster swings into levels, one swing at a time in confirmation order: a swing within
    ``LEVEL_TOLERANCE`` ATRs of the nearest level touches it (the level moves to the mean of its
    touches), else it starts a level."""

    def build() -> list[Level]:
        found: list[Level] = []
        prices = np.empty(0)
        for swing in swings(b):
            tolerance = LEVEL_TOLERANCE * b.atr[swing.confirmed]
            nearest = int(np.argmin(np.abs(prices - swing.price))) if len(found) else -1
            if nearest >= 0 and abs(prices[nearest] - swing.price) <= tolerance:
                level = found[nearest]
                level.touches.append(swing)
                level.history.append((swing.confirmed, float(np.mean([t.price for t in level.touches]))))
                prices[nearest] = level.price
            else:
                found.append(Level([swing], [(swing.confirmed, swing.price)]))
                prices = np.append(prices, swing.price)
        return found

    return b.memo("levels", build)


def detect_levels(b: Bars, pattern: Literal["support", "resistance"]) -> list[Detection]:
    """Support (resistance): a level touched by at least two swings, with the close on the bar that
    confirmed its latest touch above (below) it. Reported again on every further touch, so each
    detection is the level as known on its confirmation bar; ``start_index`` (the first touch)
    identifies the level across its reports. Confidence (strength) = 1 - 0.5 ** (touches - 1):
    0.5, 0.75, 0.875..."""
    found = []
    for level in price_levels(b):
        for count in range(2, len(level.touches) + 1):
            confirmed, price = level.history[count - 1]
            is_support = b.close[confirmed] >= price
            if is_support != (pattern == "support"):
                continue
            touches = level.touches[:count]
            touched = [t.price for t in touches]
            found.append(
                b.detection(
                    pattern,
                    "chart",
                    "bullish" if is_support else "bearish",
                    touches[0].index,
                    max(t.index for t in touches),
                    1.0 - 0.5 ** (count - 1),
                    {"price": price, "zone_low": min(touched), "zone_high": max(touched)},
                    confirmed=confirmed,
                    touches=count,
                )
            )
    return found


def detect_breakouts(b: Bars) -> list[Detection]:
    """Breakout: a close more than ``BREAKOUT_MARGIN`` ATRs above a level that at least two swing
    highs had touched (resistance; bullish), or below a level at least two swing lows had touched
    (support; bearish), right after a close that was not; the touches must be confirmed before the
    bar, and the last of them at most ``LEVEL_MEMORY`` bars before. A level's breakouts alternate
    in direction: after breaking up it must break down before it can break up again, so chop
    around a level is not a stream of signals. Confidence averages the level's strength
    (1 - 0.5 ** (touches - 1), counting touches on the broken side) and the distance of the close
    past the level, up to 2 ATRs."""
    found = []
    close, atr = b.close, b.atr
    for level in price_levels(b):
        last_direction = ""
        next_updates = [confirmed for confirmed, _ in level.history[1:]] + [b.n - 1]
        for count, ((since, price), until) in enumerate(
            zip(level.history, next_updates, strict=True), start=1
        ):
            bars = np.arange(since + 1, min(until, since + LEVEL_MEMORY) + 1)
            highs = sum(t.kind == "high" for t in level.touches[:count])
            lows = count - highs
            if max(highs, lows) < 2 or len(bars) == 0:
                continue
            margin = BREAKOUT_MARGIN * atr[bars]
            up = (close[bars] > price + margin) & (close[bars - 1] <= price + margin) & (highs >= 2)
            down = (close[bars] < price - margin) & (close[bars - 1] >= price - margin) & (lows >= 2)
            for t in bars[up | down]:
                direction: Direction = "bullish" if close[t] > price else "bearish"
                if direction == last_direction:
                    continue
                last_direction = direction
                touches = highs if direction == "bullish" else lows
                strength = 1.0 - 0.5 ** (touches - 1)
                confidence = 0.5 * strength + 0.5 * min(1.0, abs(close[t] - price) / (2 * atr[t]))
                levels = {"level": price, "close": close[t]}
                start = level.touches[0].index
                found.append(
                    b.detection("breakout", "chart", direction, start, t, confidence, levels, touches=touches)
                )
    return found


# --- double tops and bottoms, head and shoulders -----------------------------------------------------


def _first_break(
    b: Bars, start: int, stop: int, line: np.ndarray, bearish: bool, invalid: float
) -> int | None:
    """The first bar in [start, stop) closing beyond ``line`` (below it if bearish; ``line[k]`` is
    for bar start + k), unless a bar before it traded beyond ``invalid`` (above it if bearish)."""
    stop = min(stop, b.n)
    if start >= stop:
        return None
    close, far = b.close[start:stop], (b.high if bearish else b.low)[start:stop]
    broke = close < line[: stop - start] if bearish else close > line[: stop - start]
    failed = far > invalid if bearish else far < invalid
    hits = np.flatnonzero(broke)
    if not len(hits):
        return None
    misses = np.flatnonzero(failed[: hits[0] + 1])
    return None if len(misses) else start + int(hits[0])


def detect_double(b: Bars, pattern: Literal["double_top", "double_bottom"]) -> list[Detection]:
    """Double top: two swing highs within ``PEAK_TOLERANCE`` ATRs of each other with a swing low at
    least ``MIN_DEPTH`` ATRs below the lower of them between them, confirmed by a close below that
    low (the neckline) within as many bars as separate the tops, before any high above the tops
    (+ tolerance). Target: the neckline minus the pattern's height. Double bottom mirrors it.
    Confidence averages how equal the tops are and the depth, up to 6 ATRs."""
    bearish = pattern == "double_top"
    sign = 1.0 if bearish else -1.0
    outer = "high" if bearish else "low"
    found: list[Detection] = []
    seen: set[int] = set()
    for tail in swing_tails(b, 3):
        if len(tail) < 3 or tail[-1].kind != outer:
            continue
        first, middle, second = tail
        atr = b.atr[second.confirmed]
        difference = abs(first.price - second.price)
        extreme = sign * max(sign * first.price, sign * second.price)
        depth = min(sign * first.price, sign * second.price) - sign * middle.price
        if first.index in seen or difference > PEAK_TOLERANCE * atr or depth < MIN_DEPTH * atr:
            continue
        width = second.index - first.index
        stop = second.index + width + 1
        neckline = np.full(width + 1, middle.price)
        t = _first_break(b, second.confirmed, stop, neckline, bearish, extreme + sign * PEAK_TOLERANCE * atr)
        if t is None:
            continue
        seen.add(first.index)
        tops = (first.price + second.price) / 2.0
        confidence = 0.5 * (1.0 - difference / (PEAK_TOLERANCE * atr)) + 0.5 * min(1.0, depth / (6 * atr))
        names = ("first_top", "second_top") if bearish else ("first_bottom", "second_bottom")
        levels = {names[0]: first.price, names[1]: second.price, "neckline": middle.price}
        levels["target"] = middle.price - (tops - middle.price)
        found.append(
            b.detection(
                pattern, "chart", "bearish" if bearish else "bullish", first.index, t, confidence, levels
            )
        )
    return found


def detect_head_and_shoulders(
    b: Bars, pattern: Literal["head_and_shoulders", "inverse_head_and_shoulders"]
) -> list[Detection]:
    """Head and shoulders: swing highs left shoulder, head, right shoulder with swing lows between;
    the head at least 1 ATR above both shoulders, the shoulders within ``PEAK_TOLERANCE`` ATRs of
    each other. The neckline is the line through the two lows; the pattern is confirmed by a close
    below it within as many bars as the pattern is wide, before any high above the head. Target:
    the neckline at the break minus the head's height above the neckline. The inverse mirrors it.
    Confidence averages shoulder symmetry and the head's prominence, up to 3 ATRs."""
    bearish = pattern == "head_and_shoulders"
    sign = 1.0 if bearish else -1.0
    outer = "high" if bearish else "low"
    found: list[Detection] = []
    seen: set[int] = set()
    for tail in swing_tails(b, 5):
        if len(tail) < 5 or tail[-1].kind != outer:
            continue
        left, low1, head, low2, right = tail
        atr = b.atr[right.confirmed]
        shoulders = abs(left.price - right.price)
        prominence = sign * head.price - max(sign * left.price, sign * right.price)
        if left.index in seen or shoulders > PEAK_TOLERANCE * atr or prominence < atr:
            continue
        slope = (low2.price - low1.price) / (low2.index - low1.index)
        width = right.index - left.index
        bars = np.arange(right.confirmed, right.index + width + 1)
        neckline = low1.price + slope * (bars - low1.index)
        t = _first_break(b, right.confirmed, right.index + width + 1, neckline, bearish, head.price)
        if t is None:
            continue
        seen.add(left.index)
        neck_at_break = low1.price + slope * (t - low1.index)
        height = head.price - (low1.price + slope * (head.index - low1.index))
        confidence = 0.5 * (1.0 - shoulders / (PEAK_TOLERANCE * atr)) + 0.5 * min(1.0, prominence / (3 * atr))
        levels = {"left_shoulder": left.price, "head": head.price, "right_shoulder": right.price}
        levels |= {"neckline": neck_at_break, "target": neck_at_break - height}
        found.append(
            b.detection(
                pattern, "chart", "bearish" if bearish else "bullish", left.index, t, confidence, levels
            )
        )
    return found


# --- lines: triangles, channels, trend lines ---------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """A least-squares line through swing points: price = intercept + slope * bar."""

    slope: float
    intercept: float
    worst_miss: float

    @classmethod
    def fit(cls, points: list[Swing]) -> Line:
        """Ordinary least squares on two or three points, in plain arithmetic (np.polyfit's SVD
        costs more than the rest of the pattern scan)."""
        mean_x = sum(p.index for p in points) / len(points)
        mean_y = sum(p.price for p in points) / len(points)
        spread = sum((p.index - mean_x) ** 2 for p in points)
        slope = sum((p.index - mean_x) * (p.price - mean_y) for p in points) / spread
        intercept = mean_y - slope * mean_x
        worst_miss = max(abs(intercept + slope * p.index - p.price) for p in points)
        return cls(slope, intercept, worst_miss)

    def at(self, bar: int) -> float:
        return self.intercept + self.slope * bar


def _shape(change: float, tolerance: float) -> str:
    return "flat" if abs(change) <= tolerance else ("rising" if change > 0 else "falling")


FORMATIONS: dict[tuple[str, str], tuple[str, Direction]] = {
    ("flat", "rising"): ("ascending_triangle", "bullish"),
    ("falling", "flat"): ("descending_triangle", "bearish"),
    ("falling", "rising"): ("symmetrical_triangle", "neutral"),
    ("rising", "rising"): ("channel", "bullish"),
    ("falling", "falling"): ("channel", "bearish"),
    ("flat", "flat"): ("channel", "neutral"),
}


def formations(b: Bars) -> list[Detection]:
    """Every triangle and channel, computed once per frame (see :func:`detect_formation`)."""

    def build() -> list[Detection]:
        found: list[Detection] = []
        last_end: dict[tuple[str, str], int] = {}
        for tail in swing_tails(b, 5):
            if len(tail) < 5:
                continue
            highs = [s for s in tail if s.kind == "high"]
            lows = [s for s in tail if s.kind == "low"]
            upper, lower = Line.fit(highs), Line.fit(lows)
            first, last = tail[0].index, tail[-1].index
            tolerance = LINE_TOLERANCE * b.atr[tail[-1].confirmed]
            span = last - first
            du, dl = upper.slope * span, lower.slope * span
            shape = FORMATIONS.get((_shape(du, tolerance), _shape(dl, tolerance)))
            fits = max(upper.worst_miss, lower.worst_miss) <= tolerance
            if shape is None or not fits or upper.at(last) <= lower.at(last):
                continue
            pattern, direction = shape
            if pattern == "channel" and abs(du - dl) > tolerance:
                continue
            continuing = last_end.get(shape, -1) >= first
            last_end[shape] = last
            if continuing:
                continue
            levels = {"upper_start": upper.at(first), "lower_start": lower.at(first)}
            levels |= {"upper": upper.at(last), "lower": lower.at(last)}
            confidence = 1.0 - 0.5 * max(upper.worst_miss, lower.worst_miss) / tolerance
            confirmed = tail[-1].confirmed
            found.append(
                b.detection(
                    pattern, "chart", direction, first, last, confidence, levels, confirmed, len(tail)
                )
            )
        return found

    return b.memo("formations", build)


def detect_formation(b: Bars, pattern: str) -> list[Detection]:
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
    return [d for d in formations(b) if d.pattern == pattern]


def detect_trend_lines(b: Bars) -> list[Detection]:
    """Trend line: a line through the last three swing lows of the sequence that rises by more than
    ``LINE_TOLERANCE`` ATRs, passes within that tolerance of all three, and has no close more than
    the tolerance below it in between (bullish, a support line); or the same through three falling
    swing highs with no close above it (bearish). Reported once per line, when its third swing is
    confirmed; a later line overlapping the previous one of the same direction continues it.
    Levels: the line at its first and last swing and projected to the confirmation bar.
    Confidence: 0.5 plus 0.5 times how closely the line fits."""
    found: list[Detection] = []
    last_end: dict[str, int] = {}
    for tail in swing_tails(b, 5):
        if len(tail) < 5:
            continue
        points = [s for s in tail if s.kind == tail[-1].kind]
        bullish = tail[-1].kind == "low"
        line = Line.fit(points)
        first, last, confirmed = points[0].index, points[-1].index, points[-1].confirmed
        tolerance = LINE_TOLERANCE * b.atr[confirmed]
        sign = 1.0 if bullish else -1.0
        if sign * line.slope * (last - first) <= tolerance or line.worst_miss > tolerance:
            continue
        between = np.arange(first, last + 1)
        closes_through = sign * (b.close[between] - (line.intercept + line.slope * between)) < -tolerance
        direction: Direction = "bullish" if bullish else "bearish"
        if closes_through.any():
            continue
        continuing = last_end.get(direction, -1) >= first
        last_end[direction] = last
        if continuing:
            continue
        levels = {"start": line.at(first), "end": line.at(last), "projected": line.at(confirmed)}
        confidence = 1.0 - 0.5 * line.worst_miss / tolerance
        found.append(
            b.detection(
                "trend_line", "chart", direction, first, last, confidence, levels, confirmed, len(points)
            )
        )
    return found
