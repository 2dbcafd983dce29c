"""The indicator registry: one definition of every technical indicator, its parameters and outputs.

The strategy rule language (`RSI(14) < 30`, `MACD(12,26,9).signal`), the market API and the ML
feature builder all resolve indicators here, so a name and its parameters are defined once.

Inputs are candle frames with float64 columns ``open, high, low, close, volume`` (any index, finite
values, as :func:`apps.market.domain.candles.validate_candles` guarantees); outputs are float64
numpy arrays of the same length. A value at bar t depends only on bars 0..t, to the bit: the same
computation on data cut at t gives the same numbers. ``indicator.warmup(params)`` counts the
leading bars where at least one output lacks history and is NaN; from there on every output is
defined, except where the data makes it 0/0 (a stochastic over a range with no movement, a VWAP
over no volume).

Every definition mirrors the ``ta`` library (0.11) with its default parameters, and the unit tests
prove each one equal to ``ta`` within 1e-9 after the warm-up. Where ``ta`` returns placeholder zeros
during the warm-up (ATR, ADX) these return NaN. Recursive indicators (EMA, MACD, RSI, ATR, ADX,
PSAR, KC) start their recursion at the first bar of the frame, as ``ta`` does, so their early values
depend on where the data starts; they settle within a few multiples of their period. The
implementations are single passes compiled with numba (:mod:`apps.market.domain.windows` and
:mod:`apps.market.domain.kernels`): on a million bars the recursive ones run as fast as TA-Lib's C
and the windowed ones within about twice its time (``tests/bench/bench_indicators.py``).
Bollinger bands take their mean and standard deviation from a compiled copy of pandas' rolling
algorithm (:func:`~apps.market.domain.windows.window_mean_std_into`), ``ta``'s to the bit.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from apps.market.domain import kernels
from apps.market.domain.windows import (
    exponential_smoothing,
    window_linear_weighted_mean,
    window_mean,
    window_mean_abs_deviation,
    window_mean_std_into,
    window_sum_into,
)

Outputs = dict[str, NDArray[np.float64]]
Params = dict[str, float]
Arguments = Sequence[float] | Mapping[str, float] | None

MAX_PERIOD = 10_000


class IndicatorError(ValueError):
    """An unknown indicator, output or an invalid parameter; the message lists what is valid."""


@dataclass(frozen=True)
class Param:
    """One parameter of an indicator: its default and its valid closed range."""

    name: str
    default: float
    minimum: float
    maximum: float
    integer: bool = True

    def validate(self, value: float) -> float:
        """Return ``value`` as an int (integer parameters) or float, or raise IndicatorError."""
        kind = "a whole number" if self.integer else "a number"
        expected = f"{self.name} must be {kind} from {self.minimum:g} to {self.maximum:g}"
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise IndicatorError(f"{expected}, got {value!r}")
        if self.integer and float(value) != int(value):
            raise IndicatorError(f"{expected}, got {value:g}")
        if not self.minimum <= value <= self.maximum:
            raise IndicatorError(f"{expected}, got {value:g}")
        return int(value) if self.integer else float(value)

    def describe(self) -> str:
        return f"{self.name}={self.default:g}"


@dataclass(frozen=True)
class Indicator:
    """A registered indicator: ``compute(frame, params)`` returns every named output.

    ``warmup_fn(params)`` is the number of leading bars that are NaN in at least one output;
    ``constraint(params)`` returns a message when valid individual values do not fit together.
    """

    name: str
    title: str
    params: tuple[Param, ...]
    outputs: tuple[str, ...]
    compute_fn: Callable[[pd.DataFrame, Params], Outputs] = field(repr=False)
    inputs: tuple[str, ...] = ("close",)
    warmup_fn: Callable[[Params], int] = field(default=lambda params: 0, repr=False)
    constraint: Callable[[Params], str | None] = field(default=lambda params: None, repr=False)

    @property
    def default_output(self) -> str:
        return self.outputs[0]

    @property
    def signature(self) -> str:
        """The call with its defaults, e.g. ``MACD(fast=12, slow=26, signal=9)``."""
        return f"{self.name}({', '.join(p.describe() for p in self.params)})"

    @property
    def description(self) -> str:
        """The definition, as written in the docstring of its computation."""
        return inspect.getdoc(self.compute_fn) or self.title

    def strategy_param_name(self, param: Param) -> str:
        """The strategy parameter a bare indicator name reads, e.g. ``rsi_period``."""
        return f"{self.name.lower()}_{param.name}"

    def resolve(self, args: Arguments = None) -> Params:
        """Turn positional or named arguments into a validated, complete parameter dict."""
        if args is None:
            args = {}
        if isinstance(args, str) or not isinstance(args, Sequence | Mapping):
            raise IndicatorError(f"{self.signature}: parameters must be a list or a mapping, got {args!r}")
        if not isinstance(args, Mapping):
            if len(args) > len(self.params):
                raise IndicatorError(
                    f"{self.name} takes at most {len(self.params)} parameters "
                    f"({', '.join(p.name for p in self.params) or 'none'}), got {len(args)}; "
                    f"usage: {self.signature}"
                )
            args = {p.name: v for p, v in zip(self.params, args, strict=False)}
        unknown = set(args) - {p.name for p in self.params}
        if unknown:
            raise IndicatorError(
                f"{self.name} has no parameter {', '.join(sorted(map(str, unknown)))}; "
                f"valid: {', '.join(p.name for p in self.params) or 'none'}; usage: {self.signature}"
            )
        try:
            params = {p.name: p.validate(args.get(p.name, p.default)) for p in self.params}
        except IndicatorError as exc:
            raise IndicatorError(f"{self.name}: {exc}; usage: {self.signature}") from None
        problem = self.constraint(params)
        if problem:
            raise IndicatorError(f"{self.name}: {problem}; usage: {self.signature}")
        return params

    def warmup(self, args: Arguments = None) -> int:
        """Leading bars that are NaN in at least one output, e.g. 25 + 8 = 33 for MACD(12,26,9)."""
        return self.warmup_fn(self.resolve(args))

    def compute(self, frame: pd.DataFrame, params: Arguments = None) -> Outputs:
        """Compute every output on ``frame`` with validated ``params``."""
        missing = [column for column in self.inputs if column not in frame.columns]
        if missing:
            raise IndicatorError(
                f"{self.name} needs columns {', '.join(self.inputs)}; missing {', '.join(missing)}"
            )
        return self.compute_fn(frame, self.resolve(params))

    def key(self, params: Params, output: str | None = None) -> str:
        """A stable label such as ``MACD(12,26,9).signal``, used as a column and cache name."""
        if output is not None and output not in self.outputs:
            raise IndicatorError(f"{self.name} has no output {output!r}; valid: {', '.join(self.outputs)}")
        args = ",".join(f"{params[p.name]:g}" for p in self.params)
        label = f"{self.name}({args})" if self.params else self.name
        return f"{label}.{output}" if output and output != self.default_output else label


REGISTRY: dict[str, Indicator] = {}


def register(indicator: Indicator) -> Indicator:
    REGISTRY[indicator.name] = indicator
    return indicator


def get_indicator(name: str) -> Indicator:
    """Look an indicator up by its case-insensitive name."""
    try:
        return REGISTRY[name.upper()]
    except (KeyError, AttributeError):
        raise IndicatorError(f"unknown indicator {name!r}; valid: {', '.join(sorted(REGISTRY))}") from None


def compute(frame: pd.DataFrame, name: str, params: Arguments = None) -> Outputs:
    """Compute the named indicator on ``frame``: ``compute(frame, "BB", (20, 2))["upper"]``."""
    return get_indicator(name).compute(frame, params)


# --- helpers ---------------------------------------------------------------------------------------


def _col(frame: pd.DataFrame, column: str) -> NDArray[np.float64]:
    return np.ascontiguousarray(frame[column].to_numpy(dtype=np.float64, copy=False))


def _hlc(frame: pd.DataFrame) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    return _col(frame, "high"), _col(frame, "low"), _col(frame, "close")


def _new(frame: pd.DataFrame) -> NDArray[np.float64]:
    return np.empty(len(frame))


def _ema(x: NDArray[np.float64], period: int, start: int = 0) -> NDArray[np.float64]:
    """EMA with alpha = 2 / (period + 1) seeded with ``x[start]``; NaN for its first period - 1 bars."""
    seed = x[start] if start < len(x) else math.nan
    out = exponential_smoothing(x, 2.0 / (period + 1), seed, start)
    out[: start + period - 1] = np.nan
    return out


def _typical_price(frame: pd.DataFrame) -> NDArray[np.float64]:
    return kernels.typical_price(*_hlc(frame), _new(frame))


def _period(default: int, minimum: int = 1) -> tuple[Param, ...]:
    return (Param("period", default, minimum, MAX_PERIOD),)


def _warmup_period(params: Params) -> int:
    return int(params["period"]) - 1


# --- moving averages -------------------------------------------------------------------------------


def _sma(frame: pd.DataFrame, p: Params) -> Outputs:
    """Simple moving average: the mean of the last ``period`` closes."""
    return {"value": window_mean(_col(frame, "close"), int(p["period"]))}


def _ema_indicator(frame: pd.DataFrame, p: Params) -> Outputs:
    """Exponential moving average: ``ema = ema_prev + a * (close - ema_prev)``, a = 2 / (period + 1),
    seeded with the first close; NaN for the first ``period - 1`` bars (``ta``: ewm adjust=False)."""
    return {"value": _ema(_col(frame, "close"), int(p["period"]))}


def _wma(frame: pd.DataFrame, p: Params) -> Outputs:
    """Weighted moving average: closes of the last ``period`` bars weighted 1, 2, ..., period
    (oldest to newest), divided by the sum of the weights."""
    return {"value": window_linear_weighted_mean(_col(frame, "close"), int(p["period"]))}


# --- momentum --------------------------------------------------------------------------------------


def _rsi(frame: pd.DataFrame, p: Params) -> Outputs:
    """Relative strength index: ``100 * avg_gain / (avg_gain + avg_loss)`` where gains and losses are
    the positive and negative close-to-close changes, each smoothed with alpha = 1 / period starting
    from 0 on the first bar (``ta``'s seeding; TA-Lib seeds with a simple mean instead). 100 when
    there were no losses. NaN for the first ``period - 1`` bars."""
    return {"value": kernels.rsi_into(_col(frame, "close"), int(p["period"]), _new(frame))}


def _macd(frame: pd.DataFrame, p: Params) -> Outputs:
    """Moving average convergence/divergence: ``macd = EMA(close, fast) - EMA(close, slow)``,
    ``signal = EMA(macd, signal)`` started on the first bar where macd exists, ``histogram =
    macd - signal``. macd is NaN for ``slow - 1`` bars, signal and histogram ``signal - 1`` more."""
    macd, signal, histogram = _new(frame), _new(frame), _new(frame)
    kernels.macd_into(
        _col(frame, "close"), int(p["fast"]), int(p["slow"]), int(p["signal"]), macd, signal, histogram
    )
    return {"macd": macd, "signal": signal, "histogram": histogram}


def _stoch(frame: pd.DataFrame, p: Params) -> Outputs:
    """Stochastic oscillator: ``k = 100 * (close - lowest low) / (highest high - lowest low)`` over the
    last ``period`` bars, ``d = SMA(k, smooth)``. NaN when the range is zero."""
    n, smooth = int(p["period"]), int(p["smooth"])
    high, low, close = _hlc(frame)
    highest, k = _new(frame), _new(frame)  # k holds the lowest low until it becomes k below
    kernels.window_range_into(high, low, n, highest, k, False)
    kernels.position_in_range_into(close, highest, k, 100.0, False, k)
    return {"k": k, "d": window_sum_into(k, smooth, True, highest)}


def _willr(frame: pd.DataFrame, p: Params) -> Outputs:
    """Williams %R: ``-100 * (highest high - close) / (highest high - lowest low)`` over the last
    ``period`` bars; from 0 (close at the high) to -100 (close at the low)."""
    n = int(p["period"])
    high, low, close = _hlc(frame)
    highest, lowest = _new(frame), _new(frame)
    kernels.window_range_into(high, low, n, highest, lowest, False)
    return {"value": kernels.position_in_range_into(close, highest, lowest, -100.0, True, highest)}


def _roc(frame: pd.DataFrame, p: Params) -> Outputs:
    """Rate of change: ``100 * (close - close[period bars ago]) / close[period bars ago]``."""
    return {"value": kernels.roc_into(_col(frame, "close"), int(p["period"]), _new(frame))}


def _cci(frame: pd.DataFrame, p: Params) -> Outputs:
    """Commodity channel index: ``(tp - SMA(tp)) / (constant * mean absolute deviation of tp)`` over
    the last ``period`` bars, where tp = (high + low + close) / 3 and constant defaults to 0.015."""
    n, tp = int(p["period"]), _typical_price(frame)
    mean = window_mean(tp, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"value": (tp - mean) / (p["constant"] * window_mean_abs_deviation(tp, n, mean))}


# --- volatility and channels -----------------------------------------------------------------------


def _bb(frame: pd.DataFrame, p: Params) -> Outputs:
    """Bollinger bands: ``middle = SMA(close, period)``, ``upper/lower = middle +- std * sigma`` where
    sigma is the population standard deviation of the last ``period`` closes; ``width = 100 *
    (upper - lower) / middle``; ``percent_b = (close - lower) / (upper - lower)``, NaN if the bands meet.
    The SMA and sigma are computed as pandas' rolling mean and std compute them, ``ta``'s own."""
    close = _col(frame, "close")
    n = int(p["period"])
    middle, upper, lower, width, percent_b = _new(frame), _new(frame), _new(frame), _new(frame), _new(frame)
    window_mean_std_into(close, n, middle, width)  # width holds sigma until bands_into replaces it
    kernels.bands_into(close, middle, width, p["std"], upper, lower, width, percent_b)
    return {"middle": middle, "upper": upper, "lower": lower, "width": width, "percent_b": percent_b}


def _atr(frame: pd.DataFrame, p: Params) -> Outputs:
    """Average true range: Wilder's smoothing (alpha = 1 / period) of the true range
    ``max(high, prev close) - min(low, prev close)`` (high - low on the first bar), seeded with the mean
    of the first ``period`` true ranges on bar ``period - 1`` (``ta`` shows 0 before it, this NaN)."""
    return {"value": kernels.atr_into(*_hlc(frame), int(p["period"]), _new(frame))}


def _kc(frame: pd.DataFrame, p: Params) -> Outputs:
    """Keltner channel (the modern form, ``ta``'s ``original_version=False``): ``middle =
    EMA(close, period)``, ``upper/lower = middle +- multiplier * ATR(atr_period)``."""
    high, low, close = _hlc(frame)
    middle = _ema(close, int(p["period"]))
    upper = kernels.atr_into(high, low, close, int(p["atr_period"]), _new(frame))  # until it is the band
    lower = _new(frame)
    kernels.offset_into(middle, upper, p["multiplier"], upper, lower)
    return {"middle": middle, "upper": upper, "lower": lower}


def _dc(frame: pd.DataFrame, p: Params) -> Outputs:
    """Donchian channel: ``upper`` = highest high and ``lower`` = lowest low of the last ``period``
    bars (including this one), ``middle`` halfway between."""
    n = int(p["period"])
    upper, lower = _new(frame), _new(frame)
    kernels.window_range_into(_col(frame, "high"), _col(frame, "low"), n, upper, lower, False)
    return {"middle": kernels.donchian_middle_into(upper, lower, _new(frame)), "upper": upper, "lower": lower}


# --- trend -----------------------------------------------------------------------------------------


def _adx(frame: pd.DataFrame, p: Params) -> Outputs:
    """Average directional index (Wilder). Per bar: ``+DM = up move`` if it exceeds the down move and
    is positive, else 0 (``-DM`` symmetrically), where up move = high - previous high and down move =
    previous low - low; TR is the true range. TR, +DM and -DM are Wilder-smoothed from bar 1
    (mean of bars 1..period on bar ``period``); ``plus_di = 100 * +DM_s / TR_s``, ``minus_di`` likewise
    (0 when TR_s is 0); ``DX = 100 * |plus_di - minus_di| / (plus_di + minus_di)`` (0 when both are 0);
    ``adx`` = Wilder smoothing of DX seeded with the mean DX of bars period..2*period-1. plus_di and
    minus_di start on bar ``period``, adx on bar ``2 * period - 1``."""
    adx, plus_di, minus_di = _new(frame), _new(frame), _new(frame)
    kernels.adx_into(*_hlc(frame), int(p["period"]), adx, plus_di, minus_di)
    return {"adx": adx, "plus_di": plus_di, "minus_di": minus_di}


def _ichimoku(frame: pd.DataFrame, p: Params) -> Outputs:
    """Ichimoku cloud lines, each a midpoint ``(highest high + lowest low) / 2`` of the last N bars:
    ``conversion`` (tenkan-sen, N = conversion), ``base`` (kijun-sen, N = base), ``span_b`` (senkou B,
    N = span_b) and ``span_a = (conversion + base) / 2`` (senkou A).

    NOT displaced: charts draw span_a and span_b ``base`` bars ahead (the cloud); here bar t holds the
    value computed from bars up to t, so nothing looks ahead. To read "the cloud under today's
    price", look ``base`` bars back. The lagging span (chikou) is omitted: it is the close shifted
    back, which would need future data."""
    high, low = _col(frame, "high"), _col(frame, "low")
    n_base, n_span = int(p["base"]), int(p["span_b"])
    # span_a's array is the scratch space until span_a is written last: four arrays, no fifth.
    conversion, span_a, base, span_b = _new(frame), _new(frame), _new(frame), _new(frame)
    kernels.midprice_into(high, low, int(p["conversion"]), conversion, span_a)
    if n_base <= n_span <= 2 * n_base:  # span B's extremes from base's windows (the usual 26 and 52)
        kernels.window_range_into(high, low, n_base, span_b, span_a, False)
        kernels.midpoint_into(span_b, span_a, base)
        kernels.joined_midprice_into(span_b, span_a, n_span - n_base, span_b)
    else:
        kernels.midprice_into(high, low, n_base, base, span_a)
        kernels.midprice_into(high, low, n_span, span_b, span_a)
    kernels.midpoint_into(conversion, base, span_a)
    return {"conversion": conversion, "base": base, "span_a": span_a, "span_b": span_b}


def _psar(frame: pd.DataFrame, p: Params) -> Outputs:
    """Parabolic stop and reverse (Wilder), as ``ta`` computes it. The trend starts up on bar 2. In an
    uptrend ``sar = prev_sar + af * (extreme_high - prev_sar)``; if the low breaks it the trend flips,
    sar jumps to the extreme high and af resets to ``step``; otherwise a new high raises af by ``step``
    (at most ``max_step``) and sar is capped by the low of 2 bars ago if that is below it, else by the
    previous low (``ta``'s rule; the textbook takes the lower of the two). Downtrends mirror this.
    ``value`` is the sar, ``trend`` +1 up / -1 down; both NaN on the first 2 bars. The seed, bar 1's
    sar, is its close (``ta``'s choice)."""
    sar, trend = _new(frame), _new(frame)
    kernels.psar_into(*_hlc(frame), float(p["step"]), float(p["max_step"]), sar, trend)
    return {"value": sar, "trend": trend}


# --- volume ----------------------------------------------------------------------------------------


def _obv(frame: pd.DataFrame, p: Params) -> Outputs:
    """On-balance volume: the running total of volume, subtracted on bars that close below the
    previous close and added otherwise (the first bar adds)."""
    return {"value": kernels.obv_into(_col(frame, "close"), _col(frame, "volume"), _new(frame))}


def _vwap(frame: pd.DataFrame, p: Params) -> Outputs:
    """Rolling volume-weighted average price: ``sum(tp * volume) / sum(volume)`` over the last
    ``period`` bars, tp = (high + low + close) / 3. Rolling because crypto candles have no session to
    reset at; NaN where the window traded nothing."""
    n, volume = int(p["period"]), _col(frame, "volume")
    traded = kernels.product_into(_typical_price(frame), volume, _new(frame))
    value = window_sum_into(traded, n, False, _new(frame))
    return {"value": kernels.ratio_into(value, window_sum_into(volume, n, False, traded), value)}


def _mfi(frame: pd.DataFrame, p: Params) -> Outputs:
    """Money flow index, a volume-weighted RSI. Money flow = tp * volume (tp = (high + low + close)
    / 3), counted as positive when tp rose from the previous bar, negative when it fell, and not at
    all when it is unchanged or on the first bar. With ``positive`` and ``negative`` the flows summed
    over the last ``period`` bars, ``mfi = 100 - 100 / (1 + positive / negative)``: 100 with no
    negative flow, NaN with no flow at all."""
    n, tp = int(p["period"]), _typical_price(frame)
    rising, falling = _new(frame), _new(frame)
    kernels.directional_flows(tp, _col(frame, "volume"), rising, falling)
    positive = window_sum_into(rising, n, False, tp)
    negative = window_sum_into(falling, n, False, rising)
    return {"value": kernels.mfi_from_sums(positive, negative, positive)}


# --- the registry ----------------------------------------------------------------------------------

_HLC = ("high", "low", "close")
_HLCV = ("high", "low", "close", "volume")


def _fast_below_slow(p: Params) -> str | None:
    return None if p["fast"] < p["slow"] else f"fast ({p['fast']}) must be below slow ({p['slow']})"


def _step_within_max(p: Params) -> str | None:
    return (
        None
        if p["step"] <= p["max_step"]
        else f"step ({p['step']:g}) must not exceed max_step ({p['max_step']:g})"
    )


def _periodic(
    name: str,
    title: str,
    default: int,
    compute_fn: Callable[[pd.DataFrame, Params], Outputs],
    inputs: tuple[str, ...] = ("close",),
    outputs: tuple[str, ...] = ("value",),
) -> Indicator:
    """An indicator of one ``period`` parameter that is NaN for its first ``period - 1`` bars."""
    return Indicator(name, title, _period(default), outputs, compute_fn, inputs, _warmup_period)


for _indicator in (
    _periodic("SMA", "Simple moving average", 20, _sma),
    _periodic("EMA", "Exponential moving average", 20, _ema_indicator),
    _periodic("WMA", "Weighted moving average", 9, _wma),
    _periodic("RSI", "Relative strength index", 14, _rsi),
    Indicator(
        "MACD",
        "Moving average convergence divergence",
        (
            Param("fast", 12, 1, MAX_PERIOD),
            Param("slow", 26, 2, MAX_PERIOD),
            Param("signal", 9, 1, MAX_PERIOD),
        ),
        ("macd", "signal", "histogram"),
        _macd,
        warmup_fn=lambda p: int(p["slow"]) + int(p["signal"]) - 2,
        constraint=_fast_below_slow,
    ),
    Indicator(
        "BB",
        "Bollinger bands",
        (Param("period", 20, 2, MAX_PERIOD), Param("std", 2.0, 0.1, 10.0, integer=False)),
        ("middle", "upper", "lower", "width", "percent_b"),
        _bb,
        warmup_fn=_warmup_period,
    ),
    _periodic("ATR", "Average true range", 14, _atr, _HLC),
    Indicator(
        "STOCH",
        "Stochastic oscillator",
        (Param("period", 14, 1, MAX_PERIOD), Param("smooth", 3, 1, MAX_PERIOD)),
        ("k", "d"),
        _stoch,
        _HLC,
        warmup_fn=lambda p: int(p["period"]) + int(p["smooth"]) - 2,
    ),
    Indicator(
        "ADX",
        "Average directional index",
        _period(14, minimum=2),
        ("adx", "plus_di", "minus_di"),
        _adx,
        _HLC,
        warmup_fn=lambda p: 2 * int(p["period"]) - 1,
    ),
    Indicator(
        "CCI",
        "Commodity channel index",
        (Param("period", 20, 2, MAX_PERIOD), Param("constant", 0.015, 0.001, 1.0, integer=False)),
        ("value",),
        _cci,
        _HLC,
        warmup_fn=_warmup_period,
    ),
    Indicator("OBV", "On-balance volume", (), ("value",), _obv, ("close", "volume")),
    _periodic("VWAP", "Rolling volume-weighted average price", 14, _vwap, _HLCV),
    _periodic("MFI", "Money flow index", 14, _mfi, _HLCV),
    _periodic("WILLR", "Williams %R", 14, _willr, _HLC),
    Indicator("ROC", "Rate of change", _period(12), ("value",), _roc, warmup_fn=lambda p: int(p["period"])),
    Indicator(
        "KC",
        "Keltner channel",
        (
            Param("period", 20, 1, MAX_PERIOD),
            Param("atr_period", 10, 1, MAX_PERIOD),
            Param("multiplier", 2.0, 0.1, 10.0, integer=False),
        ),
        ("middle", "upper", "lower"),
        _kc,
        _HLC,
        warmup_fn=lambda p: max(int(p["period"]), int(p["atr_period"])) - 1,
    ),
    _periodic("DC", "Donchian channel", 20, _dc, ("high", "low"), ("middle", "upper", "lower")),
    Indicator(
        "ICHIMOKU",
        "Ichimoku cloud (undisplaced)",
        (
            Param("conversion", 9, 1, MAX_PERIOD),
            Param("base", 26, 1, MAX_PERIOD),
            Param("span_b", 52, 1, MAX_PERIOD),
        ),
        ("conversion", "base", "span_a", "span_b"),
        _ichimoku,
        ("high", "low"),
        warmup_fn=lambda p: int(max(p["conversion"], p["base"], p["span_b"])) - 1,
    ),
    Indicator(
        "PSAR",
        "Parabolic SAR",
        (Param("step", 0.02, 0.001, 1.0, integer=False), Param("max_step", 0.2, 0.001, 1.0, integer=False)),
        ("value", "trend"),
        _psar,
        _HLC,
        warmup_fn=lambda p: 2,
        constraint=_step_within_max,
    ),
):
    register(_indicator)
