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
implementations are vectorised numpy (see :mod:`apps.market.domain.windows`), many times faster
than ``ta`` where it loops in Python.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from apps.market.domain.windows import (
    exponential_smoothing,
    lag,
    window_linear_weighted_mean,
    window_max,
    window_mean,
    window_mean_abs_deviation,
    window_min,
    window_std,
    window_sum,
)

Outputs = dict[str, np.ndarray]
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


def _col(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy(dtype=np.float64, copy=False)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise division where x/0 is +-inf and 0/0 is NaN, as pandas (and so ``ta``) gives."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return numerator / denominator


def _ema(x: np.ndarray, period: int, start: int = 0) -> np.ndarray:
    """EMA with alpha = 2 / (period + 1) seeded with ``x[start]``; NaN for its first period - 1 bars."""
    if start >= len(x):
        return np.full(len(x), np.nan)
    out = exponential_smoothing(x, 2.0 / (period + 1), x[start], start)
    out[: start + period - 1] = np.nan
    return out


def _wilder(x: np.ndarray, period: int, start: int) -> np.ndarray:
    """Wilder's smoothing of ``x`` from bar ``start``: the mean of ``x[start : start + period]``
    on bar ``start + period - 1``, then ``avg = (avg * (period - 1) + x) / period``; NaN before.
    Overwrites ``x``, which callers pass as a scratch array, and returns it."""
    first = start + period - 1
    if first >= len(x):
        x[:] = np.nan
        return x
    seed = x[start : first + 1].mean()
    exponential_smoothing(x, 1.0 / period, seed, first + 1, out=x)
    x[first] = seed
    return x


def _true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """max(high, previous close) - min(low, previous close); high - low on the first bar."""
    tr = np.empty(len(high))
    tr[:1] = high[:1] - low[:1]
    if len(tr) > 1:
        prev = close[:-1]
        np.maximum(high[1:], prev, out=tr[1:])
        tr[1:] -= np.minimum(low[1:], prev)
    return tr


def _typical_price(frame: pd.DataFrame) -> np.ndarray:
    return (_col(frame, "high") + _col(frame, "low") + _col(frame, "close")) / 3.0


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
    close = _col(frame, "close")
    n = int(p["period"])
    change = np.zeros(len(close))
    np.subtract(close[1:], close[:-1], out=change[1:])
    gain = np.maximum(change, 0.0)
    loss = np.negative(np.minimum(change, 0.0, out=change), out=change)  # reuses change's memory
    exponential_smoothing(gain, 1.0 / n, 0.0, out=gain)
    exponential_smoothing(loss, 1.0 / n, 0.0, out=loss)
    rsi = gain + loss
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(gain, rsi, out=rsi)
    rsi *= 100.0
    rsi[loss == 0.0] = 100.0
    rsi[: n - 1] = np.nan
    return {"value": rsi}


def _macd(frame: pd.DataFrame, p: Params) -> Outputs:
    """Moving average convergence/divergence: ``macd = EMA(close, fast) - EMA(close, slow)``,
    ``signal = EMA(macd, signal)`` started on the first bar where macd exists, ``histogram =
    macd - signal``. macd is NaN for ``slow - 1`` bars, signal and histogram ``signal - 1`` more."""
    close = _col(frame, "close")
    fast, slow, span = int(p["fast"]), int(p["slow"]), int(p["signal"])
    macd = _ema(close, fast)
    histogram = _ema(close, slow)
    macd -= histogram
    signal = _ema(macd, span, start=slow - 1)
    np.subtract(macd, signal, out=histogram)
    return {"macd": macd, "signal": signal, "histogram": histogram}


def _stoch(frame: pd.DataFrame, p: Params) -> Outputs:
    """Stochastic oscillator: ``k = 100 * (close - lowest low) / (highest high - lowest low)`` over the
    last ``period`` bars, ``d = SMA(k, smooth)``. NaN when the range is zero."""
    n, smooth = int(p["period"]), int(p["smooth"])
    high, low, close = _col(frame, "high"), _col(frame, "low"), _col(frame, "close")
    k = window_min(low, n)  # the lowest low, until it becomes k below
    spread = window_max(high, n)
    spread -= k
    np.subtract(close, k, out=k)
    k *= 100.0
    with np.errstate(divide="ignore", invalid="ignore"):
        k /= spread
    return {"k": k, "d": window_mean(k, smooth)}


def _willr(frame: pd.DataFrame, p: Params) -> Outputs:
    """Williams %R: ``-100 * (highest high - close) / (highest high - lowest low)`` over the last
    ``period`` bars; from 0 (close at the high) to -100 (close at the low)."""
    n = int(p["period"])
    highest = window_max(_col(frame, "high"), n)
    below_high = highest - _col(frame, "close")
    spread = highest - window_min(_col(frame, "low"), n)
    return {"value": _ratio(-100.0 * below_high, spread)}


def _roc(frame: pd.DataFrame, p: Params) -> Outputs:
    """Rate of change: ``100 * (close - close[period bars ago]) / close[period bars ago]``."""
    close = _col(frame, "close")
    before = lag(close, int(p["period"]))
    return {"value": _ratio(100.0 * (close - before), before)}


def _cci(frame: pd.DataFrame, p: Params) -> Outputs:
    """Commodity channel index: ``(tp - SMA(tp)) / (constant * mean absolute deviation of tp)`` over
    the last ``period`` bars, where tp = (high + low + close) / 3 and constant defaults to 0.015."""
    n = int(p["period"])
    tp = _typical_price(frame)
    return {"value": _ratio(tp - window_mean(tp, n), p["constant"] * window_mean_abs_deviation(tp, n))}


# --- volatility and channels -----------------------------------------------------------------------


def _bb(frame: pd.DataFrame, p: Params) -> Outputs:
    """Bollinger bands: ``middle = SMA(close, period)``, ``upper/lower = middle +- std * sigma`` where
    sigma is the population standard deviation of the last ``period`` closes; ``width = 100 *
    (upper - lower) / middle``; ``percent_b = (close - lower) / (upper - lower)``, NaN if the bands meet."""
    close = _col(frame, "close")
    n = int(p["period"])
    middle = window_mean(close, n)
    upper = window_std(close, n) * p["std"]
    lower = middle - upper
    upper += middle
    width = upper - lower
    with np.errstate(divide="ignore", invalid="ignore"):
        percent_b = close - lower
        percent_b /= width
    percent_b[width == 0.0] = np.nan
    width /= middle
    width *= 100.0
    return {"middle": middle, "upper": upper, "lower": lower, "width": width, "percent_b": percent_b}


def _atr(frame: pd.DataFrame, p: Params) -> Outputs:
    """Average true range: Wilder's smoothing (alpha = 1 / period) of the true range
    ``max(high, prev close) - min(low, prev close)`` (high - low on the first bar), seeded with the mean
    of the first ``period`` true ranges on bar ``period - 1`` (``ta`` shows 0 before it, this NaN)."""
    tr = _true_range(_col(frame, "high"), _col(frame, "low"), _col(frame, "close"))
    return {"value": _wilder(tr, int(p["period"]), start=0)}


def _kc(frame: pd.DataFrame, p: Params) -> Outputs:
    """Keltner channel (the modern form, ``ta``'s ``original_version=False``): ``middle =
    EMA(close, period)``, ``upper/lower = middle +- multiplier * ATR(atr_period)``."""
    close = _col(frame, "close")
    middle = _ema(close, int(p["period"]))
    spread = p["multiplier"] * _atr(frame, {"period": p["atr_period"]})["value"]
    return {"middle": middle, "upper": middle + spread, "lower": middle - spread}


def _dc(frame: pd.DataFrame, p: Params) -> Outputs:
    """Donchian channel: ``upper`` = highest high and ``lower`` = lowest low of the last ``period``
    bars (including this one), ``middle`` halfway between."""
    n = int(p["period"])
    upper, lower = window_max(_col(frame, "high"), n), window_min(_col(frame, "low"), n)
    return {"middle": (upper - lower) / 2.0 + lower, "upper": upper, "lower": lower}


# --- trend -----------------------------------------------------------------------------------------


def _adx(frame: pd.DataFrame, p: Params) -> Outputs:
    """Average directional index (Wilder). Per bar: ``+DM = up move`` if it exceeds the down move and
    is positive, else 0 (``-DM`` symmetrically), where up move = high - previous high and down move =
    previous low - low; TR is the true range. TR, +DM and -DM are Wilder-smoothed from bar 1
    (mean of bars 1..period on bar ``period``); ``plus_di = 100 * +DM_s / TR_s``, ``minus_di`` likewise
    (0 when TR_s is 0); ``DX = 100 * |plus_di - minus_di| / (plus_di + minus_di)`` (0 when both are 0);
    ``adx`` = Wilder smoothing of DX seeded with the mean DX of bars period..2*period-1. plus_di and
    minus_di start on bar ``period``, adx on bar ``2 * period - 1``."""
    n = int(p["period"])
    high, low, close = _col(frame, "high"), _col(frame, "low"), _col(frame, "close")
    up, down = np.zeros(len(high)), np.zeros(len(high))
    up[1:], down[1:] = high[1:] - high[:-1], low[:-1] - low[1:]
    plus_dm = np.where((up > down) & (up > 0.0), up, 0.0)
    minus_dm = np.where((down > up) & (down > 0.0), down, 0.0)
    tr = _wilder(_true_range(high, low, close), n, start=1)
    plus_di = np.where(tr == 0.0, 0.0, _ratio(100.0 * _wilder(plus_dm, n, start=1), tr))
    minus_di = np.where(tr == 0.0, 0.0, _ratio(100.0 * _wilder(minus_dm, n, start=1), tr))
    total = plus_di + minus_di
    dx = np.where(total == 0.0, 0.0, _ratio(100.0 * np.abs(plus_di - minus_di), total))
    return {"adx": _wilder(dx, n, start=n), "plus_di": plus_di, "minus_di": minus_di}


def _ichimoku(frame: pd.DataFrame, p: Params) -> Outputs:
    """Ichimoku cloud lines, each a midpoint ``(highest high + lowest low) / 2`` of the last N bars:
    ``conversion`` (tenkan-sen, N = conversion), ``base`` (kijun-sen, N = base), ``span_b`` (senkou B,
    N = span_b) and ``span_a = (conversion + base) / 2`` (senkou A).

    NOT displaced: charts draw span_a and span_b ``base`` bars ahead (the cloud); here bar t holds the
    value computed from bars up to t, so nothing looks ahead. To read "the cloud under today's
    price", look ``base`` bars back. The lagging span (chikou) is omitted: it is the close shifted
    back, which would need future data."""
    high, low = _col(frame, "high"), _col(frame, "low")

    def midpoint(n: int) -> np.ndarray:
        return 0.5 * (window_max(high, n) + window_min(low, n))

    conversion, base = midpoint(int(p["conversion"])), midpoint(int(p["base"]))
    span_a, span_b = 0.5 * (conversion + base), midpoint(int(p["span_b"]))
    return {"conversion": conversion, "base": base, "span_a": span_a, "span_b": span_b}


def _psar(frame: pd.DataFrame, p: Params) -> Outputs:
    """Parabolic stop and reverse (Wilder), as ``ta`` computes it. The trend starts up on bar 2. In an
    uptrend ``sar = prev_sar + af * (extreme_high - prev_sar)``; if the low breaks it the trend flips,
    sar jumps to the extreme high and af resets to ``step``; otherwise a new high raises af by ``step``
    (at most ``max_step``) and sar is capped by the low of 2 bars ago if that is below it, else by the
    previous low (``ta``'s rule; the textbook takes the lower of the two). Downtrends mirror this.
    ``value`` is the sar, ``trend`` +1 up / -1 down; both NaN on the first 2 bars. Sequential by
    nature: a tight loop over Python floats, about 0.4 s per million bars."""
    highs, lows, close = _col(frame, "high").tolist(), _col(frame, "low").tolist(), _col(frame, "close")
    seed = float(close[1]) if len(close) > 1 else math.nan
    sar, trend = _parabolic_sar(highs, lows, seed, float(p["step"]), float(p["max_step"]))
    return {"value": np.array(sar, dtype=np.float64), "trend": np.array(trend, dtype=np.float64)}


def _parabolic_sar(
    highs: list[float], lows: list[float], seed: float, step: float, max_step: float
) -> tuple[list[float], list[float]]:
    """The SAR loop; ``seed`` is bar 1's sar (``ta`` uses its close)."""
    n = len(highs)
    sar = [math.nan] * n
    trend = [math.nan] * n
    if n < 3:
        return sar, trend
    prev = seed
    up, af = True, step
    extreme_high, extreme_low = highs[0], lows[0]
    for i in range(2, n):
        high, low = highs[i], lows[i]
        if up:
            value = prev + af * (extreme_high - prev)
            if low < value:
                up, value, extreme_low, af = False, extreme_high, low, step
            else:
                if high > extreme_high:
                    extreme_high, af = high, min(af + step, max_step)
                if lows[i - 2] < value:
                    value = lows[i - 2]
                elif lows[i - 1] < value:
                    value = lows[i - 1]
        else:
            value = prev - af * (prev - extreme_low)
            if high > value:
                up, value, extreme_high, af = True, extreme_low, high, step
            else:
                if low < extreme_low:
                    extreme_low, af = low, min(af + step, max_step)
                if highs[i - 2] > value:
                    value = highs[i - 2]
                elif highs[i - 1] > value:
                    value = highs[i - 1]
        sar[i] = prev = value
        trend[i] = 1.0 if up else -1.0
    return sar, trend


# --- volume ----------------------------------------------------------------------------------------


def _obv(frame: pd.DataFrame, p: Params) -> Outputs:
    """On-balance volume: the running total of volume, subtracted on bars that close below the
    previous close and added otherwise (the first bar adds)."""
    close, volume = _col(frame, "close"), _col(frame, "volume")
    falling = np.zeros(len(close), dtype=bool)
    falling[1:] = close[1:] < close[:-1]
    return {"value": np.cumsum(np.where(falling, -volume, volume))}


def _vwap(frame: pd.DataFrame, p: Params) -> Outputs:
    """Rolling volume-weighted average price: ``sum(tp * volume) / sum(volume)`` over the last
    ``period`` bars, tp = (high + low + close) / 3. Rolling because crypto candles have no session to
    reset at; NaN where the window traded nothing."""
    n, volume = int(p["period"]), _col(frame, "volume")
    return {"value": _ratio(window_sum(_typical_price(frame) * volume, n), window_sum(volume, n))}


def _mfi(frame: pd.DataFrame, p: Params) -> Outputs:
    """Money flow index, a volume-weighted RSI. Money flow = tp * volume (tp = (high + low + close)
    / 3), counted as positive when tp rose from the previous bar, negative when it fell, and not at
    all when it is unchanged or on the first bar. With ``positive`` and ``negative`` the flows summed
    over the last ``period`` bars, ``mfi = 100 - 100 / (1 + positive / negative)``: 100 with no
    negative flow, NaN with no flow at all."""
    n, tp = int(p["period"]), _typical_price(frame)
    flow = tp * _col(frame, "volume")
    rising, falling = np.zeros(len(tp), dtype=bool), np.zeros(len(tp), dtype=bool)
    rising[1:], falling[1:] = tp[1:] > tp[:-1], tp[1:] < tp[:-1]
    ratio = _ratio(window_sum(np.where(rising, flow, 0.0), n), window_sum(np.where(falling, flow, 0.0), n))
    return {"value": 100.0 - _ratio(100.0, 1.0 + ratio)}


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
