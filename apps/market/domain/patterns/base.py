"""What pattern detectors return, and the candle arrays every detector reads.

Detectors return columns (:class:`Hits`, one row per hit); :class:`Detections` orders the rows
of several patterns and builds dicts or :class:`Detection` objects only for the rows asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Literal, TypeVar, cast

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from apps.market.domain.indicators import get_indicator
from apps.market.domain.windows import lag, window_mean

T = TypeVar("T")
ScalarT = TypeVar("ScalarT", bound=np.generic)
Kind = Literal["candlestick", "chart"]
Direction = Literal["bullish", "bearish", "neutral"]
# Directions are stored as codes: the index of the name in this tuple.
DIRECTIONS: tuple[Direction, ...] = ("bearish", "neutral", "bullish")
BEARISH, NEUTRAL, BULLISH = range(3)


class PatternError(ValueError):
    """An unknown pattern name or an unusable frame; the message lists what is valid."""


@dataclass(frozen=True)
class Detection:
    """One occurrence of a pattern.

    ``start``/``end`` delimit the bars that form it. ``confirmed`` is the first bar at whose close
    the detection could be known from bars up to it; it is ``end`` for candlesticks, and later for
    chart patterns built on swings, which need ``order`` bars after a swing to confirm it. A
    backtest must act on ``confirmed``, never earlier. ``confidence`` in [0, 1] is a documented
    shape score (how cleanly the bars fit the rule), not a probability. ``levels`` names the prices
    that matter (a neckline, a target, a band). ``touches`` counts the swings that built a level or
    a line (0 where it does not apply).
    """

    pattern: str
    kind: Kind
    direction: Direction
    start_index: int
    end_index: int
    confirmed_index: int
    start_time: pd.Timestamp
    end_time: pd.Timestamp
    confirmed_time: pd.Timestamp
    confidence: float
    levels: dict[str, float] = field(default_factory=dict)
    touches: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: times as ISO 8601 strings."""
        data = asdict(self)
        for key in ("start_time", "end_time", "confirmed_time"):
            data[key] = pd.Timestamp(data[key]).isoformat()
        return data


@dataclass(frozen=True)
class Hits:
    """Every detection of one pattern, as columns: row i is one hit.

    ``direction`` holds codes into :data:`DIRECTIONS`; ``confidence`` is already clipped to [0, 1];
    ``levels`` maps each level's name to its column, in the order a detection lists them.
    """

    pattern: str
    kind: Kind
    direction: NDArray[np.int8]
    start: NDArray[np.int64]
    end: NDArray[np.int64]
    confirmed: NDArray[np.int64]
    confidence: NDArray[np.float64]
    levels: dict[str, NDArray[np.float64]]
    touches: NDArray[np.int64]

    @classmethod
    def of(
        cls,
        pattern: str,
        kind: Kind,
        direction: NDArray[np.integer] | int,
        start: NDArray[np.integer],
        end: NDArray[np.integer],
        confidence: NDArray[np.floating],
        levels: Mapping[str, NDArray[np.floating]],
        confirmed: NDArray[np.integer] | None = None,
        touches: NDArray[np.integer] | int = 0,
    ) -> Hits:
        """Hits from columns or per-pattern constants; ``confirmed`` defaults to ``end``."""
        rows = len(start)

        def column(values: ArrayLike, dtype: type[ScalarT]) -> NDArray[ScalarT]:
            return np.broadcast_to(np.asarray(values, dtype=dtype), (rows,)).copy()

        return cls(
            pattern,
            kind,
            column(direction, np.int8),
            column(start, np.int64),
            column(end, np.int64),
            column(end if confirmed is None else confirmed, np.int64),
            np.clip(column(confidence, np.float64), 0.0, 1.0),
            {name: column(value, np.float64) for name, value in levels.items()},
            column(touches, np.int64),
        )

    def __len__(self) -> int:
        return len(self.start)


class Detections:
    """The hits of several patterns in one order: by confirmation bar, then start bar, then name.

    Columns stay arrays; :meth:`to_dicts` (the API's JSON) and :meth:`objects` build per-hit
    Python objects only for the rows they are asked for, e.g. after :meth:`since`.
    """

    def __init__(self, hits: list[Hits], index: pd.Index, order: NDArray[np.intp] | None = None) -> None:
        self.hits = hits
        self.index = index
        self.source = np.repeat(np.arange(len(hits)), [len(h) for h in hits])  # which Hits a row is in
        self.row = np.concatenate([np.arange(len(h)) for h in hits]) if hits else np.zeros(0, np.int64)
        if order is None:
            confirmed, start = self._column("confirmed"), self._column("start")
            rank = np.argsort(np.argsort([h.pattern for h in hits], kind="stable"))[self.source]
            order = np.lexsort((rank, start, confirmed))  # stable: ties keep the detectors' order
        self.source, self.row = self.source[order], self.row[order]

    def _column(self, name: str) -> NDArray[np.int64]:
        if not self.hits:
            return np.zeros(0, np.int64)
        return np.concatenate([getattr(h, name) for h in self.hits])

    def __len__(self) -> int:
        return len(self.row)

    @cached_property
    def confirmed_index(self) -> NDArray[np.int64]:
        """The confirmation bar of each row, in order."""
        return self._gather("confirmed")

    def _gather(self, name: str) -> NDArray[np.int64]:
        out = np.zeros(len(self), dtype=np.int64)
        for k, hits in enumerate(self.hits):
            mine = self.source == k
            out[mine] = getattr(hits, name)[self.row[mine]]
        return out

    def since(self, bar: int) -> Detections:
        """The rows confirmed on bar ``bar`` or later."""
        keep = np.flatnonzero(self.confirmed_index >= bar)
        kept = Detections.__new__(Detections)
        kept.hits, kept.index = self.hits, self.index
        kept.source, kept.row = self.source[keep], self.row[keep]
        return kept

    def _records(self) -> Iterator[tuple[Hits, int, Any, Any, Any]]:
        """Each row's hits and position in them, with its start, end and confirmation times."""
        rows = [(self.hits[k], i) for k, i in zip(self.source.tolist(), self.row.tolist(), strict=True)]
        bars = [(hits.start[i], hits.end[i], hits.confirmed[i]) for hits, i in rows]
        times = self.index.take(np.asarray(bars, dtype=np.int64).reshape(-1)).to_list()
        for (hits, i), start, end, confirmed in zip(rows, times[0::3], times[1::3], times[2::3], strict=True):
            yield hits, i, start, end, confirmed

    def to_dicts(self) -> list[dict[str, Any]]:
        """JSON-ready dicts, one per row, exactly as :meth:`Detection.to_dict` writes them."""
        return [
            {
                "pattern": hits.pattern,
                "kind": hits.kind,
                "direction": DIRECTIONS[hits.direction[i]],
                "start_index": int(hits.start[i]),
                "end_index": int(hits.end[i]),
                "confirmed_index": int(hits.confirmed[i]),
                "start_time": pd.Timestamp(start).isoformat(),
                "end_time": pd.Timestamp(end).isoformat(),
                "confirmed_time": pd.Timestamp(confirmed).isoformat(),
                "confidence": float(hits.confidence[i]),
                "levels": {name: float(values[i]) for name, values in hits.levels.items()},
                "touches": int(hits.touches[i]),
            }
            for hits, i, start, end, confirmed in self._records()
        ]

    def objects(self) -> list[Detection]:
        """One :class:`Detection` per row."""
        return [
            Detection(
                pattern=hits.pattern,
                kind=hits.kind,
                direction=DIRECTIONS[hits.direction[i]],
                start_index=int(hits.start[i]),
                end_index=int(hits.end[i]),
                confirmed_index=int(hits.confirmed[i]),
                start_time=start,
                end_time=end,
                confirmed_time=confirmed,
                confidence=float(hits.confidence[i]),
                levels={name: float(values[i]) for name, values in hits.levels.items()},
                touches=int(hits.touches[i]),
            )
            for hits, i, start, end, confirmed in self._records()
        ]


class Bars:
    """The candle arrays of one frame, and the derived series several detectors share."""

    TREND_SMA = 5

    open: NDArray[np.float64]
    high: NDArray[np.float64]
    low: NDArray[np.float64]
    close: NDArray[np.float64]

    def __init__(self, frame: pd.DataFrame) -> None:
        missing = [c for c in ("open", "high", "low", "close") if c not in frame.columns]
        if missing:
            raise PatternError(f"patterns need columns open, high, low, close; missing {', '.join(missing)}")
        self.frame = frame
        self.index = frame.index
        self.open, self.high, self.low, self.close = (
            np.ascontiguousarray(frame[c].to_numpy(dtype=np.float64))
            for c in ("open", "high", "low", "close")
        )
        self.n = len(frame)
        self._memo: dict[str, Any] = {}

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()`` once per frame: chart detectors share their swings and levels."""
        if key not in self._memo:
            self._memo[key] = compute()
        return cast(T, self._memo[key])

    @cached_property
    def body(self) -> NDArray[np.float64]:
        return np.abs(self.close - self.open)

    @cached_property
    def range(self) -> NDArray[np.float64]:
        return self.high - self.low

    @cached_property
    def upper_shadow(self) -> NDArray[np.float64]:
        return self.high - np.maximum(self.open, self.close)

    @cached_property
    def lower_shadow(self) -> NDArray[np.float64]:
        return np.minimum(self.open, self.close) - self.low

    @cached_property
    def average_body(self) -> NDArray[np.float64]:
        """Mean body of the 10 bars before each bar (NaN for the first 10): what "long" means."""
        return lag(window_mean(self.body, 10), 1)

    @cached_property
    def trend(self) -> NDArray[np.float64]:
        """Relative change of the 5-bar SMA of closes over the last 5 bars, ending at each bar:
        negative in a downtrend, positive in an uptrend, NaN while undefined."""
        sma = window_mean(self.close, self.TREND_SMA)
        before = lag(sma, self.TREND_SMA)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (sma - before) / before

    def trend_before(self, bars: int) -> NDArray[np.float64]:
        """At each bar t, the trend up to the bar before a pattern of ``bars`` bars ending at t."""
        return self.previous("trend", bars)

    def previous(self, name: str, k: int) -> NDArray[np.float64]:
        """The named series (``open``, ``body``, ``trend``...) ``k`` bars ago, computed once."""
        return self.memo(f"{name}-{k}", lambda: lag(getattr(self, name), k))

    @cached_property
    def atr(self) -> NDArray[np.float64]:
        """ATR(14), with the running mean true range standing in for its first 13 bars, so every
        bar has a volatility yardstick built from past bars only."""
        atr = get_indicator("ATR").compute(self.frame)["value"]
        true_range = self.range.copy()
        true_range[1:] = np.maximum(self.high[1:], self.close[:-1]) - np.minimum(
            self.low[1:], self.close[:-1]
        )
        warmup = np.isnan(atr)
        atr[warmup] = (np.cumsum(true_range) / np.arange(1, self.n + 1))[warmup]
        return atr
