"""Named, versioned feature sets and the builder that turns candles into model inputs.

A ``FeatureSet`` is a list of feature definitions; ``build_features(frame, feature_set)`` returns one
float64 column per feature. Row t reads bars 0..t only, so a model never sees the future through
its inputs. Every feature is scale-free (ratios, returns, z-scores, bounded oscillators), so a model
trained at one price level applies at another.

Indicators come from the market indicator registry (``apps.market.domain.indicators``): one
definition of each, shared with the strategy rule language. Frames carry float64 columns
``open, high, low, close, volume`` and bar open times as a ``DatetimeIndex`` or a ``timestamp``
column in UTC epoch milliseconds (needed by the time features only).

``FeatureSet.warmup`` is the number of bars a row needs behind it for every feature to be in its
steady state. Training drops the first ``warmup`` rows, and live prediction builds the newest row
from just the trailing ``warmup + 1`` bars, so both see the same values.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from apps.market.domain.indicators import Indicator, IndicatorError, Outputs, Params, get_indicator
from apps.market.domain.windows import window_moments_into

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

# Recursive indicators (EMA, Wilder smoothing) keep a fading memory of their seed: after 10
# periods less than (1 - 1/n)**(10n) < 5e-5 of it is left, so 10 periods count as warmed up.
INDICATOR_WARMUP_PERIODS = 10
_NS_PER_HOUR = 3_600_000_000_000
_NS_PER_DAY = 24 * _NS_PER_HOUR
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday; Monday is 0


class FeatureError(ValueError):
    """A feature set that cannot be built: unknown indicator or kind, bad parameter, no times."""


class Bars:
    """The candle arrays every feature reads, extracted from a frame once.

    Rows before ``first_row`` are not wanted: window features may leave them NaN, which makes
    building only the newest row cheap.
    """

    def __init__(self, frame: pd.DataFrame, first_row: int = 0) -> None:
        missing = [c for c in ("open", "high", "low", "close", "volume") if c not in frame.columns]
        if missing:
            raise FeatureError(f"candle frame lacks column(s) {', '.join(missing)}")
        self.frame = frame
        self.open = frame["open"].to_numpy(dtype=np.float64)
        self.high = frame["high"].to_numpy(dtype=np.float64)
        self.low = frame["low"].to_numpy(dtype=np.float64)
        self.close = frame["close"].to_numpy(dtype=np.float64)
        self.volume = frame["volume"].to_numpy(dtype=np.float64)
        self.log_close = np.log(self.close)
        self.bar_returns = np.concatenate(([np.nan], np.diff(self.log_close)))
        self.first_row = first_row
        self._indicator_outputs: dict[tuple[str, tuple[tuple[str, float], ...]], Outputs] = {}

    def indicator(self, indicator: Indicator, params: Params) -> Outputs:
        """The indicator's outputs on these bars, computed once however many features read them."""
        key = (indicator.name, tuple(params.items()))
        if key not in self._indicator_outputs:
            self._indicator_outputs[key] = indicator.compute_fn(self.frame, params)
        return self._indicator_outputs[key]

    def __len__(self) -> int:
        return len(self.close)

    @cached_property
    def times_ns(self) -> NDArray[np.int64]:
        return bar_times_ns(self.frame)


def bar_times_ns(frame: pd.DataFrame) -> NDArray[np.int64]:
    """Bar open times as int64 UTC epoch nanoseconds, from a DatetimeIndex or a ``timestamp`` column."""
    if isinstance(frame.index, pd.DatetimeIndex):
        index = frame.index if frame.index.tz is None else frame.index.tz_convert("UTC").tz_localize(None)
        return index.as_unit("ns").asi8
    if "timestamp" in frame.columns:
        return frame["timestamp"].to_numpy(dtype=np.int64) * 1_000_000
    raise FeatureError("bar times needed: give the frame a DatetimeIndex or a 'timestamp' column (epoch ms)")


def _ratio(numerator: NDArray[np.float64], denominator: NDArray[np.float64]) -> NDArray[np.float64]:
    """numerator / denominator, NaN where the denominator is zero or missing (no warnings)."""
    out = np.full(np.shape(numerator), np.nan)
    usable = np.isfinite(denominator) & (denominator != 0)
    np.divide(numerator, denominator, out=out, where=usable)
    return out


def _window_moments(
    values: NDArray[np.float64], window: int, first: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean and population std of the ``window`` values ending at each index from ``first`` on
    (NaN before), in O(len(values)) time and memory. The computation starts at the block boundary
    (a multiple of ``window``) before the first window needed, so a value is the same to the bit
    whether the whole history or only the newest rows are built."""
    mean, std = np.empty(len(values)), np.empty(len(values))
    start = min(max(0, first - window + 1) // window * window, len(values))
    mean[:start] = std[:start] = np.nan
    window_moments_into(values[start:], window, mean[start:], std[start:])
    return mean, std


class Feature(ABC):
    """One model input: a named float64 column computed from bars up to each row."""

    kind: ClassVar[str]

    @property
    @abstractmethod
    def column(self) -> str: ...

    @property
    @abstractmethod
    def warmup(self) -> int:
        """Bars needed behind a row before its value is in steady state."""

    @abstractmethod
    def compute(self, bars: Bars) -> NDArray[np.float64]: ...

    def validate(self) -> None:
        """Raise ``FeatureError`` if this feature cannot be computed (an indicator resolves here)."""
        if self.warmup < 0:
            raise FeatureError(f"{self.column}: negative warm-up {self.warmup}")

    def to_dict(self) -> dict[str, Any]:
        # Every concrete feature is a frozen dataclass.
        return {"kind": self.kind, **asdict(cast("DataclassInstance", self))}


@dataclass(frozen=True)
class IndicatorFeature(Feature):
    """An indicator output from the registry made scale-free by ``transform``:

    - ``vs_close``: ``close / value - 1`` (moving averages, bands)
    - ``per_close``: ``value / close`` (price-unit values: MACD, ATR)
    - ``scaled``: ``value * scale`` (oscillators: RSI / 100, already-relative values)
    """

    kind: ClassVar[str] = "indicator"
    TRANSFORMS: ClassVar[tuple[str, ...]] = ("vs_close", "per_close", "scaled")

    name: str
    indicator: str
    args: tuple[float, ...] = ()
    output: str | None = None
    transform: str = "scaled"
    scale: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", tuple(self.args))
        if self.transform not in self.TRANSFORMS:
            raise FeatureError(f"{self.name}: unknown transform {self.transform!r}; valid: {self.TRANSFORMS}")

    @property
    def column(self) -> str:
        return self.name

    @cached_property
    def _resolved(self) -> tuple[Indicator, Params, str]:
        try:
            indicator = get_indicator(self.indicator)
            params = indicator.resolve(self.args)
        except IndicatorError as exc:
            raise FeatureError(f"{self.name}: {exc}") from None
        output = self.output or indicator.default_output
        if output not in indicator.outputs:
            valid = ", ".join(indicator.outputs)
            raise FeatureError(f"{self.name}: {indicator.name} has no output {output!r}; valid: {valid}")
        return indicator, params, output

    @property
    def warmup(self) -> int:
        indicator, params, _ = self._resolved
        longest = max((int(params[p.name]) for p in indicator.params if p.integer), default=0)
        return max(INDICATOR_WARMUP_PERIODS * longest, indicator.warmup(params))

    def compute(self, bars: Bars) -> NDArray[np.float64]:
        indicator, params, output = self._resolved
        value = np.asarray(bars.indicator(indicator, params)[output], dtype=np.float64)
        if self.transform == "vs_close":
            return _ratio(bars.close, value) - 1.0
        if self.transform == "per_close":
            return _ratio(value, bars.close)
        return value * self.scale


@dataclass(frozen=True)
class LogReturnFeature(Feature):
    """``log(close[t] / close[t - bars])``: the return over the last ``bars`` bars."""

    kind: ClassVar[str] = "log_return"
    bars: int

    def __post_init__(self) -> None:
        if self.bars < 1:
            raise FeatureError(f"log_return needs bars >= 1, got {self.bars}")

    @property
    def column(self) -> str:
        return f"log_return_{self.bars}"

    @property
    def warmup(self) -> int:
        return self.bars

    def compute(self, bars: Bars) -> NDArray[np.float64]:
        out = np.full(len(bars), np.nan)
        out[self.bars :] = bars.log_close[self.bars :] - bars.log_close[: -self.bars]
        return out


@dataclass(frozen=True)
class VolatilityFeature(Feature):
    """Standard deviation of the bar log returns over the last ``window`` bars (not annualised)."""

    kind: ClassVar[str] = "volatility"
    window: int

    def __post_init__(self) -> None:
        if self.window < 2:
            raise FeatureError(f"volatility needs a window >= 2, got {self.window}")

    @property
    def column(self) -> str:
        return f"volatility_{self.window}"

    @property
    def warmup(self) -> int:
        return self.window

    def compute(self, bars: Bars) -> NDArray[np.float64]:
        out = np.full(len(bars), np.nan)
        # Returns exist from bar 1: index i of the windows below is bar i + 1.
        _, std = _window_moments(bars.bar_returns[1:], self.window, max(self.window, bars.first_row) - 1)
        out[self.window :] = std[self.window - 1 :]
        return out


@dataclass(frozen=True)
class VolumeZScoreFeature(Feature):
    """z-score of ``log(1 + volume)`` against its last ``window`` bars (NaN when volume is flat)."""

    kind: ClassVar[str] = "volume_z"
    window: int

    def __post_init__(self) -> None:
        if self.window < 2:
            raise FeatureError(f"volume_z needs a window >= 2, got {self.window}")

    @property
    def column(self) -> str:
        return f"volume_z_{self.window}"

    @property
    def warmup(self) -> int:
        return self.window - 1

    def compute(self, bars: Bars) -> NDArray[np.float64]:
        log_volume = np.log1p(np.maximum(bars.volume, 0.0))
        mean, std = _window_moments(log_volume, self.window, max(self.window - 1, bars.first_row))
        # A flat window's std is rounding noise, not information: treat it as no spread.
        std[std < 1e-12] = 0.0
        return _ratio(log_volume - mean, std)


@dataclass(frozen=True)
class CandleFeature(Feature):
    """The bar's shape: ``body`` (close - open) / range, ``upper_wick`` and ``lower_wick`` / range,
    and ``range`` = log(high / low). NaN for a bar with no range."""

    kind: ClassVar[str] = "candle"
    PARTS: ClassVar[tuple[str, ...]] = ("body", "upper_wick", "lower_wick", "range")
    part: str

    def __post_init__(self) -> None:
        if self.part not in self.PARTS:
            raise FeatureError(f"unknown candle part {self.part!r}; valid: {', '.join(self.PARTS)}")

    @property
    def column(self) -> str:
        return f"candle_{self.part}"

    @property
    def warmup(self) -> int:
        return 0

    def compute(self, bars: Bars) -> NDArray[np.float64]:
        if self.part == "range":
            return np.log(_ratio(bars.high, bars.low))
        bar_range = bars.high - bars.low
        if self.part == "body":
            return _ratio(bars.close - bars.open, bar_range)
        if self.part == "upper_wick":
            return _ratio(bars.high - np.maximum(bars.open, bars.close), bar_range)
        return _ratio(np.minimum(bars.open, bars.close) - bars.low, bar_range)


@dataclass(frozen=True)
class TimeFeature(Feature):
    """Hour of day and day of week (UTC, of the bar's open time) on the unit circle."""

    kind: ClassVar[str] = "time"
    PARTS: ClassVar[tuple[str, ...]] = ("hour_sin", "hour_cos", "weekday_sin", "weekday_cos")
    part: str

    def __post_init__(self) -> None:
        if self.part not in self.PARTS:
            raise FeatureError(f"unknown time part {self.part!r}; valid: {', '.join(self.PARTS)}")

    @property
    def column(self) -> str:
        return f"time_{self.part}"

    @property
    def warmup(self) -> int:
        return 0

    def compute(self, bars: Bars) -> NDArray[np.float64]:
        times = bars.times_ns
        if self.part.startswith("hour"):
            angle = 2 * math.pi * (times % _NS_PER_DAY) / _NS_PER_DAY
        else:
            weekday = (times // _NS_PER_DAY + _EPOCH_WEEKDAY) % 7
            angle = 2 * math.pi * weekday / 7
        return np.sin(angle) if self.part.endswith("sin") else np.cos(angle)


FEATURE_KINDS: dict[str, type[Feature]] = {
    cls.kind: cls
    for cls in (
        IndicatorFeature,
        LogReturnFeature,
        VolatilityFeature,
        VolumeZScoreFeature,
        CandleFeature,
        TimeFeature,
    )
}


def feature_from_dict(data: Mapping[str, Any]) -> Feature:
    """Rebuild a feature from ``Feature.to_dict()`` output."""
    fields = dict(data)
    kind = fields.pop("kind", None)
    if kind not in FEATURE_KINDS:
        raise FeatureError(f"unknown feature kind {kind!r}; valid: {', '.join(FEATURE_KINDS)}")
    try:
        return FEATURE_KINDS[kind](**fields)
    except TypeError as exc:
        raise FeatureError(f"bad {kind} feature {dict(data)}: {exc}") from None


@dataclass(frozen=True)
class FeatureSet:
    """A named, versioned list of features; ``to_dict()`` is stored with every model."""

    name: str
    version: int
    features: tuple[Feature, ...] = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        duplicates = {c for c in self.columns if self.columns.count(c) > 1}
        if duplicates:
            names = ", ".join(sorted(duplicates))
            raise FeatureError(f"feature set {self.name}: duplicate column(s) {names}")

    @cached_property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.column for f in self.features)

    @cached_property
    def warmup(self) -> int:
        return max((f.warmup for f in self.features), default=0)

    def validate(self) -> None:
        """Raise ``FeatureError`` naming every feature that cannot be computed now."""
        problems = []
        for feature in self.features:
            try:
                feature.validate()
            except FeatureError as exc:
                problems.append(str(exc))
        if problems:
            raise FeatureError(f"feature set {self.name} v{self.version}: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "specs": [f.to_dict() for f in self.features]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSet:
        return cls(data["name"], int(data["version"]), tuple(feature_from_dict(s) for s in data["specs"]))


def feature_matrix(
    frame: pd.DataFrame, feature_set: FeatureSet, *, last_rows: int | None = None
) -> NDArray[np.float64]:
    """The features as a float64 array of shape (bars, features), columns in ``feature_set.columns``
    order; only the newest ``last_rows`` rows when given (each still reads every bar before it)."""
    rows = len(frame) if last_rows is None else min(last_rows, len(frame))
    bars = Bars(frame, first_row=len(frame) - rows)
    matrix = np.empty((rows, len(feature_set.features)), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        for j, feature in enumerate(feature_set.features):
            matrix[:, j] = feature.compute(bars)[len(frame) - rows :]
    matrix[~np.isfinite(matrix)] = np.nan
    return matrix


def build_features(frame: pd.DataFrame, feature_set: FeatureSet) -> pd.DataFrame:
    """One row per bar, one column per feature; NaN where a feature is not yet defined."""
    matrix = feature_matrix(frame, feature_set)
    return pd.DataFrame(matrix, index=frame.index, columns=list(feature_set.columns))


def _indicator(name: str, indicator: str, args: Sequence[float], transform: str, **kwargs: Any) -> Feature:
    return IndicatorFeature(name=name, indicator=indicator, args=tuple(args), transform=transform, **kwargs)


CORE_V1 = FeatureSet(
    "core",
    1,
    (
        _indicator("close_vs_sma_20", "SMA", (20,), "vs_close"),
        _indicator("close_vs_sma_50", "SMA", (50,), "vs_close"),
        _indicator("rsi_14", "RSI", (14,), "scaled", scale=0.01),
        _indicator("macd_line", "MACD", (12, 26, 9), "per_close", output="macd"),
        _indicator("macd_histogram", "MACD", (12, 26, 9), "per_close", output="histogram"),
        _indicator("bb_percent_b", "BB", (20, 2), "scaled", output="percent_b"),
        _indicator("bb_width", "BB", (20, 2), "scaled", output="width", scale=0.01),
        _indicator("atr_14", "ATR", (14,), "per_close"),
        _indicator("stoch_k", "STOCH", (14, 3), "scaled", output="k", scale=0.01),
        _indicator("adx_14", "ADX", (14,), "scaled", output="adx", scale=0.01),
        _indicator("cci_20", "CCI", (20,), "scaled", scale=0.01),
        _indicator("mfi_14", "MFI", (14,), "scaled", scale=0.01),
        *(LogReturnFeature(k) for k in (1, 3, 6, 12, 24)),
        *(VolatilityFeature(w) for w in (6, 24, 72)),
        *(VolumeZScoreFeature(w) for w in (24, 72)),
        *(CandleFeature(part) for part in CandleFeature.PARTS),
        *(TimeFeature(part) for part in TimeFeature.PARTS),
    ),
)

FEATURE_SETS: dict[str, FeatureSet] = {f"{fs.name}_v{fs.version}": fs for fs in (CORE_V1,)}


def get_feature_set(key: str) -> FeatureSet:
    """Look a shipped feature set up by its key, e.g. ``"core_v1"``."""
    try:
        return FEATURE_SETS[key]
    except KeyError:
        raise FeatureError(f"unknown feature set {key!r}; valid: {', '.join(FEATURE_SETS)}") from None
