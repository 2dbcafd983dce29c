"""Chart patterns built on confirmed swing points, each reported on the bar it becomes knowable.

Every pattern reads the swing sequence of :mod:`.swings` (where swings, their confirmation and the
sequence are defined), one family to a module: :mod:`.swings` (swing highs and lows),
:mod:`.levels` (support and resistance), :mod:`.breakouts`, :mod:`.reversals` (double tops and
bottoms, head and shoulders) and :mod:`.lines` (triangles, channels, trend lines).

Price tolerances scale with volatility: ATR(14) on the bar where the decision is made.

The scans over the swing sequence are sequential (a level moves with each touch, a pattern found
suppresses its overlapping repeats), so they are compiled loops over arrays of swings; each
detector returns :class:`~apps.market.domain.patterns.base.Hits`, columns with a row per hit.
"""

from __future__ import annotations

from apps.market.domain.patterns.chart.breakouts import detect_breakouts
from apps.market.domain.patterns.chart.levels import detect_levels
from apps.market.domain.patterns.chart.lines import detect_formation, detect_trend_lines
from apps.market.domain.patterns.chart.reversals import detect_double, detect_head_and_shoulders
from apps.market.domain.patterns.chart.swings import detect_swings

__all__ = [
    "detect_breakouts",
    "detect_double",
    "detect_formation",
    "detect_head_and_shoulders",
    "detect_levels",
    "detect_swings",
    "detect_trend_lines",
]
