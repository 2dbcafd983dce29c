"""Breakouts: a close past a support or resistance level, alternating in direction per level."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from apps.market.domain.patterns.base import BEARISH, BULLISH, NEUTRAL, Bars, Hits
from apps.market.domain.patterns.chart.levels import price_levels
from apps.market.domain.patterns.chart.swings import swings
from apps.market.domain.windows import kernel

BREAKOUT_MARGIN = 0.5  # ATRs: a close this far past a level breaks it
LEVEL_MEMORY = 500  # bars: a level not touched for this long is forgotten by the breakout detector


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
