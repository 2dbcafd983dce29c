"""Candlestick and chart pattern detection: ``find(frame, names)`` and the registry of names.

``find(frame)`` runs every detector on a candle frame and returns :class:`Detections`: columns with
one row per hit, sorted by the bar on which each became known (``confirmed_index``), which turn
into JSON dicts or :class:`Detection` objects only for the rows asked for. ``detect(frame)`` is
``find(frame).objects()``. ``PATTERNS`` maps each name to its :class:`Pattern` (kind and
detector); ``pattern_names()`` lists them. Definitions are in the docstrings of
:mod:`.candlestick` and :mod:`.chart`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

import pandas as pd

from apps.market.domain.patterns import chart
from apps.market.domain.patterns.base import Bars, Detection, Detections, Direction, Hits, Kind, PatternError
from apps.market.domain.patterns.candlestick import CANDLESTICK_PATTERNS, detect_candlestick

__all__ = [
    "PATTERNS",
    "Detection",
    "Detections",
    "Direction",
    "Kind",
    "Pattern",
    "PatternError",
    "detect",
    "find",
    "pattern_names",
]


@dataclass(frozen=True)
class Pattern:
    """A registered pattern: its name, kind and the detector that finds it on prepared bars."""

    name: str
    kind: Kind
    detector: Callable[[Bars], Hits]

    @property
    def description(self) -> str:
        """The definition, from the docstring of the rule behind the detector."""
        rule: object = CANDLESTICK_PATTERNS.get(self.name) or getattr(self.detector, "func", self.detector)
        return (rule.__doc__ or "").strip()


PATTERNS: dict[str, Pattern] = {
    **{
        name: Pattern(name, "candlestick", partial(detect_candlestick, name=name))
        for name in CANDLESTICK_PATTERNS
    },
    **{
        p.name: p
        for p in (
            Pattern("swing_high", "chart", partial(chart.detect_swings, kind="high")),
            Pattern("swing_low", "chart", partial(chart.detect_swings, kind="low")),
            Pattern("support", "chart", partial(chart.detect_levels, pattern="support")),
            Pattern("resistance", "chart", partial(chart.detect_levels, pattern="resistance")),
            Pattern("breakout", "chart", chart.detect_breakouts),
            Pattern("double_top", "chart", partial(chart.detect_double, pattern="double_top")),
            Pattern("double_bottom", "chart", partial(chart.detect_double, pattern="double_bottom")),
            Pattern(
                "head_and_shoulders",
                "chart",
                partial(chart.detect_head_and_shoulders, pattern="head_and_shoulders"),
            ),
            Pattern(
                "inverse_head_and_shoulders",
                "chart",
                partial(chart.detect_head_and_shoulders, pattern="inverse_head_and_shoulders"),
            ),
            Pattern(
                "ascending_triangle", "chart", partial(chart.detect_formation, pattern="ascending_triangle")
            ),
            Pattern(
                "descending_triangle", "chart", partial(chart.detect_formation, pattern="descending_triangle")
            ),
            Pattern(
                "symmetrical_triangle",
                "chart",
                partial(chart.detect_formation, pattern="symmetrical_triangle"),
            ),
            Pattern("channel", "chart", partial(chart.detect_formation, pattern="channel")),
            Pattern("trend_line", "chart", chart.detect_trend_lines),
        )
    },
}


def pattern_names(kind: Kind | None = None) -> list[str]:
    """Every registered pattern name, or those of one kind ("candlestick" or "chart")."""
    return [name for name, p in PATTERNS.items() if kind is None or p.kind == kind]


def find(frame: pd.DataFrame, names: Iterable[str] | None = None) -> Detections:
    """Every detection of the named patterns (all when ``names`` is None) on a candle frame, as
    columns, sorted by confirmation bar, then start bar, then name."""
    chosen = list(PATTERNS) if names is None else list(names)
    unknown = sorted(set(chosen) - set(PATTERNS))
    if unknown:
        raise PatternError(f"unknown pattern {', '.join(unknown)}; valid: {', '.join(PATTERNS)}")
    bars = Bars(frame)
    return Detections([PATTERNS[name].detector(bars) for name in dict.fromkeys(chosen)], frame.index)


def detect(frame: pd.DataFrame, names: Iterable[str] | None = None) -> list[Detection]:
    """:func:`find` as one :class:`Detection` object per hit."""
    return find(frame, names).objects()
