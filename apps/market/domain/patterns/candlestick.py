"""Candlestick patterns: vectorised rules over the last one to three bars.

Each rule returns a :class:`Signal`: a boolean array that is True on a pattern's last bar, a
confidence score per bar, the pattern's length and its direction. Everything is computed from that
bar and the bars before it, so a signal on bar t is known at t's close.

Vocabulary, per bar: *body* = |close - open|, *range* = high - low, *upper/lower shadow* = the wick
above/below the body, *long body* = at least the mean body of the 10 previous bars. Reversal
patterns require the trend they reverse: *downtrend/uptrend* = the 5-bar SMA of closes fell/rose
over the 5 bars ending just before the pattern's first bar.

Crypto markets trade around the clock, so a bar opens where the previous one closed and the gaps
the textbook rules ask for (engulfing, stars) almost never happen. The rules here accept an open
equal to the previous close wherever the textbook asks for a gap or an open beyond it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from apps.market.domain.patterns.base import DIRECTIONS, Bars, Direction, Hits
from apps.market.domain.windows import kernel, window_extreme_into

DOJI_BODY = 0.1  # a doji's body is at most this fraction of its range
SMALL_BODY = 0.35  # hammer-like bodies are at most this fraction of the range (and more than a doji's)
LONG_SHADOW = 2.0  # the long shadow of a hammer-like bar is at least this many bodies
SHORT_SHADOW = 0.15  # ...and the other shadow at most this fraction of the range
STAR_BODY = 0.3  # a star's body is at most this fraction of the first bar's body
SOLDIER_SHADOW = 0.3  # soldiers and crows close near their extreme: far shadow at most this many bodies


@dataclass(frozen=True)
class Signal:
    """Where a pattern completes (``mask``), how cleanly (``confidence``), over how many bars."""

    mask: NDArray[np.bool_]
    confidence: NDArray[np.float64]
    bars: int
    direction: Direction


@kernel
def _fraction(numerator: NDArray[np.float64], denominator: NDArray[np.float64]) -> NDArray[np.float64]:
    """numerator / denominator where the denominator is positive, else 0."""
    out = np.empty(len(numerator))
    for t in range(len(numerator)):
        out[t] = numerator[t] / denominator[t] if denominator[t] > 0.0 else 0.0
    return out


@kernel
def _score(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """x clipped to [0, 1], 0 where it is NaN."""
    out = np.empty(len(x))
    for t in range(len(x)):
        out[t] = 0.0 if np.isnan(x[t]) else min(max(x[t], 0.0), 1.0)
    return out


def _signal(mask: NDArray[np.bool_], quality: NDArray[np.float64], bars: int, direction: Direction) -> Signal:
    """Confidence = 0.5 for a bare match, up to 1.0 as ``quality`` (0..1) grows."""
    return Signal(mask & ~np.isnan(quality), 0.5 + 0.5 * _score(quality), bars, direction)


def doji(b: Bars) -> Signal:
    """Doji: open and close nearly equal (body at most 10 % of a non-zero range); indecision.
    Confidence grows as the body shrinks to nothing."""
    small = _fraction(b.body, b.range)
    mask = (b.range > 0.0) & (small <= DOJI_BODY)
    return Signal(mask, _score(1.0 - small / DOJI_BODY), 1, "neutral")


def _hammer_shape(b: Bars) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Small body at the top, lower shadow at least twice the body, little upper shadow."""
    body = _fraction(b.body, b.range)
    mask = (
        (body > DOJI_BODY)
        & (body <= SMALL_BODY)
        & (b.lower_shadow >= LONG_SHADOW * b.body)
        & (b.upper_shadow <= SHORT_SHADOW * b.range)
    )
    return mask, _fraction(b.lower_shadow, b.body) / (2 * LONG_SHADOW)


def _inverted_shape(b: Bars) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Small body at the bottom, upper shadow at least twice the body, little lower shadow."""
    body = _fraction(b.body, b.range)
    mask = (
        (body > DOJI_BODY)
        & (body <= SMALL_BODY)
        & (b.upper_shadow >= LONG_SHADOW * b.body)
        & (b.lower_shadow <= SHORT_SHADOW * b.range)
    )
    return mask, _fraction(b.upper_shadow, b.body) / (2 * LONG_SHADOW)


def hammer(b: Bars) -> Signal:
    """Hammer: a small body at the top of the range with a lower shadow of at least two bodies,
    after a downtrend; sellers pushed down and lost. Confidence grows with the shadow up to 4 bodies."""
    shape, quality = _hammer_shape(b)
    return _signal(shape & (b.trend_before(1) < 0.0), quality, 1, "bullish")


def hanging_man(b: Bars) -> Signal:
    """Hanging man: the hammer's shape after an uptrend; a warning that buyers are tiring."""
    shape, quality = _hammer_shape(b)
    return _signal(shape & (b.trend_before(1) > 0.0), quality, 1, "bearish")


def inverted_hammer(b: Bars) -> Signal:
    """Inverted hammer: a small body at the bottom of the range with an upper shadow of at least two
    bodies, after a downtrend."""
    shape, quality = _inverted_shape(b)
    return _signal(shape & (b.trend_before(1) < 0.0), quality, 1, "bullish")


def shooting_star(b: Bars) -> Signal:
    """Shooting star: the inverted hammer's shape after an uptrend; buyers pushed up and lost."""
    shape, quality = _inverted_shape(b)
    return _signal(shape & (b.trend_before(1) > 0.0), quality, 1, "bearish")


def _two_bar_context(
    b: Bars,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    return b.previous("open", 1), b.previous("close", 1), b.previous("body", 1), b.previous("average_body", 1)


def bullish_engulfing(b: Bars) -> Signal:
    """Bullish engulfing: after a downtrend, a bearish bar, then a bullish bar whose body covers the
    previous body (opens at or below its close, closes at or above its open) and is larger.
    Confidence grows until the new body is twice the old."""
    open1, close1, body1, _ = _two_bar_context(b)
    mask = (
        (close1 < open1)
        & (b.close > b.open)
        & (b.open <= close1)
        & (b.close >= open1)
        & (b.body > body1)
        & (b.trend_before(2) < 0.0)
    )
    return _signal(mask, _fraction(b.body, body1) - 1.0, 2, "bullish")


def bearish_engulfing(b: Bars) -> Signal:
    """Bearish engulfing: after an uptrend, a bullish bar, then a larger bearish bar whose body covers
    the previous body."""
    open1, close1, body1, _ = _two_bar_context(b)
    mask = (
        (close1 > open1)
        & (b.close < b.open)
        & (b.open >= close1)
        & (b.close <= open1)
        & (b.body > body1)
        & (b.trend_before(2) > 0.0)
    )
    return _signal(mask, _fraction(b.body, body1) - 1.0, 2, "bearish")


def _inside_previous_body(
    b: Bars, open1: NDArray[np.float64], close1: NDArray[np.float64]
) -> NDArray[np.bool_]:
    return (np.maximum(b.open, b.close) <= np.maximum(open1, close1)) & (
        np.minimum(b.open, b.close) >= np.minimum(open1, close1)
    )


def bullish_harami(b: Bars) -> Signal:
    """Bullish harami: after a downtrend, a long bearish bar, then a bullish bar whose body lies inside
    it and is at most half its size; the selling stalls. Confidence grows as the second body shrinks."""
    open1, close1, body1, average1 = _two_bar_context(b)
    mask = (
        (close1 < open1)
        & (body1 >= average1)
        & (b.close > b.open)
        & _inside_previous_body(b, open1, close1)
        & (b.body <= 0.5 * body1)
        & (b.trend_before(2) < 0.0)
    )
    return _signal(mask, 1.0 - _fraction(b.body, 0.5 * body1), 2, "bullish")


def bearish_harami(b: Bars) -> Signal:
    """Bearish harami: after an uptrend, a long bullish bar, then a bearish bar whose body lies inside
    it and is at most half its size."""
    open1, close1, body1, average1 = _two_bar_context(b)
    mask = (
        (close1 > open1)
        & (body1 >= average1)
        & (b.close < b.open)
        & _inside_previous_body(b, open1, close1)
        & (b.body <= 0.5 * body1)
        & (b.trend_before(2) > 0.0)
    )
    return _signal(mask, 1.0 - _fraction(b.body, 0.5 * body1), 2, "bearish")


def piercing_line(b: Bars) -> Signal:
    """Piercing line: after a downtrend, a long bearish bar, then a bullish bar that opens at or
    below its close and closes above the middle of its body (but not above its open). Confidence
    grows with how far past the middle it closes."""
    open1, close1, body1, average1 = _two_bar_context(b)
    middle1 = (open1 + close1) / 2.0
    mask = (
        (close1 < open1)
        & (body1 >= average1)
        & (b.close > b.open)
        & (b.open <= close1)
        & (b.close > middle1)
        & (b.close < open1)
        & (b.trend_before(2) < 0.0)
    )
    return _signal(mask, _fraction(b.close - middle1, open1 - middle1), 2, "bullish")


def dark_cloud_cover(b: Bars) -> Signal:
    """Dark cloud cover: after an uptrend, a long bullish bar, then a bearish bar that opens at or
    above its close and closes below the middle of its body (but not below its open)."""
    open1, close1, body1, average1 = _two_bar_context(b)
    middle1 = (open1 + close1) / 2.0
    mask = (
        (close1 > open1)
        & (body1 >= average1)
        & (b.close < b.open)
        & (b.open >= close1)
        & (b.close < middle1)
        & (b.close > open1)
        & (b.trend_before(2) > 0.0)
    )
    return _signal(mask, _fraction(middle1 - b.close, middle1 - open1), 2, "bearish")


def _star(b: Bars, bullish: bool) -> Signal:
    open1, close1, body1, average1 = (
        b.previous("open", 2),
        b.previous("close", 2),
        b.previous("body", 2),
        b.previous("average_body", 2),
    )
    open2, close2, body2 = b.previous("open", 1), b.previous("close", 1), b.previous("body", 1)
    sign = 1.0 if bullish else -1.0
    middle1 = (open1 + close1) / 2.0
    first_against = sign * (open1 - close1) > 0.0
    # The star sits at or beyond the first bar's close (for a morning star: its low end at or below it).
    star_beyond = (np.minimum(open2, close2) <= close1) if bullish else (np.maximum(open2, close2) >= close1)
    third_with = sign * (b.close - b.open) > 0.0
    into_first = sign * (b.close - middle1) > 0.0
    trend = b.trend_before(3)
    mask = (
        first_against
        & (body1 >= average1)
        & (body2 <= STAR_BODY * body1)
        & star_beyond
        & third_with
        & into_first
        & ((trend < 0.0) if bullish else (trend > 0.0))
    )
    quality = _fraction(sign * (b.close - middle1), sign * (open1 - middle1))
    return _signal(mask, quality, 3, "bullish" if bullish else "bearish")


def morning_star(b: Bars) -> Signal:
    """Morning star: after a downtrend, a long bearish bar, a small-bodied bar (at most 30 % of the
    first body) reaching at or below the first close, then a bullish bar closing above the middle of
    the first body. Confidence grows as the third close climbs toward the first open."""
    return _star(b, bullish=True)


def evening_star(b: Bars) -> Signal:
    """Evening star: after an uptrend, a long bullish bar, a small-bodied bar reaching at or above the
    first close, then a bearish bar closing below the middle of the first body."""
    return _star(b, bullish=False)


def _three_in_a_row(b: Bars, bullish: bool) -> Signal:
    sign = 1.0 if bullish else -1.0
    far_shadow = b.upper_shadow if bullish else b.lower_shadow
    # One bar of the pattern: its colour, a real body, closing near its extreme.
    bar_ok = (
        (sign * (b.close - b.open) > 0.0)
        & (b.body >= 0.5 * b.average_body)
        & (far_shadow <= SOLDIER_SHADOW * b.body)
    )
    # Each opens within the previous body and closes beyond the previous close.
    step_ok = np.zeros(b.n, dtype=bool)
    step_ok[1:] = (
        (sign * (b.close[1:] - b.close[:-1]) > 0.0)
        & (np.minimum(b.open[:-1], b.close[:-1]) <= b.open[1:])
        & (b.open[1:] <= np.maximum(b.open[:-1], b.close[:-1]))
    )
    all_bars = bar_ok & _prev_bool(bar_ok, 1) & _prev_bool(bar_ok, 2)
    mask = all_bars & step_ok & _prev_bool(step_ok, 1)
    mean_body = (b.body + b.previous("body", 1) + b.previous("body", 2)) / 3.0
    quality = _fraction(mean_body, 2.0 * b.previous("average_body", 2))
    return _signal(mask, quality, 3, "bullish" if bullish else "bearish")


def _prev_bool(mask: NDArray[np.bool_], k: int) -> NDArray[np.bool_]:
    out = np.zeros(len(mask), dtype=bool)
    out[k:] = mask[: len(mask) - k]
    return out


def three_white_soldiers(b: Bars) -> Signal:
    """Three white soldiers: three bullish bars with bodies of at least half the average, each opening
    within the previous body, closing above the previous close and near its high (upper shadow at most
    30 % of its body). Confidence grows with their bodies up to twice the average."""
    return _three_in_a_row(b, bullish=True)


def three_black_crows(b: Bars) -> Signal:
    """Three black crows: the bearish mirror of three white soldiers."""
    return _three_in_a_row(b, bullish=False)


CANDLESTICK_PATTERNS: dict[str, Callable[[Bars], Signal]] = {
    "doji": doji,
    "hammer": hammer,
    "inverted_hammer": inverted_hammer,
    "hanging_man": hanging_man,
    "shooting_star": shooting_star,
    "bullish_engulfing": bullish_engulfing,
    "bearish_engulfing": bearish_engulfing,
    "bullish_harami": bullish_harami,
    "bearish_harami": bearish_harami,
    "piercing_line": piercing_line,
    "dark_cloud_cover": dark_cloud_cover,
    "morning_star": morning_star,
    "evening_star": evening_star,
    "three_white_soldiers": three_white_soldiers,
    "three_black_crows": three_black_crows,
}


def detect_candlestick(b: Bars, name: str) -> Hits:
    """Every occurrence of the named candlestick pattern, as hits spanning its bars; its levels are
    the highest high and lowest low of those bars."""
    signal = CANDLESTICK_PATTERNS[name](b)
    ends = np.flatnonzero(signal.mask)
    ends = ends[ends >= signal.bars - 1]
    return Hits.of(
        name,
        "candlestick",
        DIRECTIONS.index(signal.direction),
        ends - signal.bars + 1,
        ends,
        signal.confidence[ends],
        {"high": _highest(b, signal.bars)[ends], "low": _lowest(b, signal.bars)[ends]},
    )


def _highest(b: Bars, bars: int) -> NDArray[np.float64]:
    return b.memo(f"highest{bars}", lambda: window_extreme_into(b.high, bars, True, np.empty(b.n)))


def _lowest(b: Bars, bars: int) -> NDArray[np.float64]:
    return b.memo(f"lowest{bars}", lambda: window_extreme_into(b.low, bars, False, np.empty(b.n)))
