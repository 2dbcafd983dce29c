"""The compiled loops behind the indicator registry: one pass over the bars per indicator.

Each kernel fills output arrays the caller allocates and follows the definition in the docstring
of its indicator in :mod:`apps.market.domain.indicators`, operation for operation, so results
agree with ``ta`` to rounding. Loops run bar by bar from bar 0, so a value at bar t depends only
on bars 0..t, to the bit.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from apps.market.domain.windows import kernel

NAN = np.nan


@kernel
def rsi_into(close: NDArray[np.float64], period: int, out: NDArray[np.float64]) -> NDArray[np.float64]:
    alpha = 1.0 / period
    decay = 1.0 - alpha
    gain = 0.0
    loss = 0.0
    for t in range(len(close)):
        change = close[t] - close[t - 1] if t else 0.0
        gain = decay * gain + alpha * max(change, 0.0)
        loss = decay * loss + alpha * -min(change, 0.0)
        if t < period - 1:
            out[t] = NAN
        elif loss == 0.0:
            out[t] = 100.0
        else:
            out[t] = 100.0 * (gain / (gain + loss))
    return out


@kernel
def macd_into(
    close: NDArray[np.float64],
    fast: int,
    slow: int,
    span: int,
    macd: NDArray[np.float64],
    signal: NDArray[np.float64],
    histogram: NDArray[np.float64],
) -> None:
    fast_alpha, slow_alpha, signal_alpha = 2.0 / (fast + 1), 2.0 / (slow + 1), 2.0 / (span + 1)
    fast_ema = slow_ema = close[0] if len(close) else NAN
    line = smoothed = NAN
    for t in range(len(close)):
        fast_ema = (1.0 - fast_alpha) * fast_ema + fast_alpha * close[t]
        slow_ema = (1.0 - slow_alpha) * slow_ema + slow_alpha * close[t]
        if t < slow - 1:
            macd[t] = signal[t] = histogram[t] = NAN
            continue
        line = fast_ema - slow_ema
        if t == slow - 1:
            smoothed = line  # the signal EMA starts on the first MACD value
        smoothed = (1.0 - signal_alpha) * smoothed + signal_alpha * line
        macd[t] = line
        if t < slow + span - 2:
            signal[t] = histogram[t] = NAN
        else:
            signal[t] = smoothed
            histogram[t] = line - smoothed


@kernel
def true_range(
    high: NDArray[np.float64], low: NDArray[np.float64], close: NDArray[np.float64], t: int
) -> float:
    """max(high, previous close) - min(low, previous close); high - low on the first bar."""
    if t == 0:
        return float(high[0] - low[0])
    return float(max(high[t], close[t - 1]) - min(low[t], close[t - 1]))


@kernel
def atr_into(
    high: NDArray[np.float64],
    low: NDArray[np.float64],
    close: NDArray[np.float64],
    period: int,
    out: NDArray[np.float64],
) -> NDArray[np.float64]:
    alpha = 1.0 / period
    total = 0.0
    value = 0.0
    for t in range(len(close)):
        tr = true_range(high, low, close, t)
        if t < period - 1:
            total += tr
            out[t] = NAN
            continue
        value = (total + tr) / period if t == period - 1 else (1.0 - alpha) * value + alpha * tr
        out[t] = value
    return out


@kernel
def adx_into(
    high: NDArray[np.float64],
    low: NDArray[np.float64],
    close: NDArray[np.float64],
    period: int,
    adx: NDArray[np.float64],
    plus_di: NDArray[np.float64],
    minus_di: NDArray[np.float64],
) -> None:
    alpha = 1.0 / period
    decay = 1.0 - alpha
    tr_s = plus_s = minus_s = dx_s = 0.0
    if len(close):
        adx[0] = plus_di[0] = minus_di[0] = NAN
    for t in range(1, len(close)):
        tr = true_range(high, low, close, t)
        up, down = high[t] - high[t - 1], low[t - 1] - low[t]
        plus_dm = up if up > down and up > 0.0 else 0.0
        minus_dm = down if down > up and down > 0.0 else 0.0
        # TR, +DM and -DM are Wilder-smoothed from bar 1: their mean over bars 1..period seeds bar period.
        if t < period:
            tr_s += tr
            plus_s += plus_dm
            minus_s += minus_dm
            adx[t] = plus_di[t] = minus_di[t] = NAN
            continue
        if t == period:
            tr_s, plus_s, minus_s = (
                (tr_s + tr) / period,
                (plus_s + plus_dm) / period,
                (minus_s + minus_dm) / period,
            )
        else:
            tr_s = decay * tr_s + alpha * tr
            plus_s = decay * plus_s + alpha * plus_dm
            minus_s = decay * minus_s + alpha * minus_dm
        plus = 0.0 if tr_s == 0.0 else 100.0 * plus_s / tr_s
        minus = 0.0 if tr_s == 0.0 else 100.0 * minus_s / tr_s
        total = plus + minus
        dx = 0.0 if total == 0.0 else 100.0 * abs(plus - minus) / total
        plus_di[t], minus_di[t] = plus, minus
        # DX is Wilder-smoothed from bar period: its mean over period..2 * period - 1 seeds the ADX.
        if t < 2 * period - 1:
            dx_s += dx
            adx[t] = NAN
        elif t == 2 * period - 1:
            dx_s = (dx_s + dx) / period
            adx[t] = dx_s
        else:
            dx_s = decay * dx_s + alpha * dx
            adx[t] = dx_s


@kernel
def psar_into(
    high: NDArray[np.float64],
    low: NDArray[np.float64],
    close: NDArray[np.float64],
    step: float,
    max_step: float,
    sar: NDArray[np.float64],
    trend: NDArray[np.float64],
) -> None:
    size = len(close)
    sar[: min(2, size)] = NAN
    trend[: min(2, size)] = NAN
    if size < 3:
        return
    prev = close[1]  # ta seeds bar 1's sar with its close
    up = True
    af = step
    extreme_high, extreme_low = high[0], low[0]
    for i in range(2, size):
        if up:
            value = prev + af * (extreme_high - prev)
            if low[i] < value:
                up, value, extreme_low, af = False, extreme_high, low[i], step
            else:
                if high[i] > extreme_high:
                    extreme_high, af = high[i], min(af + step, max_step)
                if low[i - 2] < value:
                    value = low[i - 2]
                elif low[i - 1] < value:
                    value = low[i - 1]
        else:
            value = prev - af * (prev - extreme_low)
            if high[i] > value:
                up, value, extreme_high, af = True, extreme_low, high[i], step
            else:
                if low[i] < extreme_low:
                    extreme_low, af = low[i], min(af + step, max_step)
                if high[i - 2] > value:
                    value = high[i - 2]
                elif high[i - 1] > value:
                    value = high[i - 1]
        sar[i] = prev = value
        trend[i] = 1.0 if up else -1.0


@kernel
def position_in_range_into(
    close: NDArray[np.float64],
    highest: NDArray[np.float64],
    lowest: NDArray[np.float64],
    scale: float,
    from_high: bool,
    out: NDArray[np.float64],
) -> NDArray[np.float64]:
    """``scale * (close - lowest) / (highest - lowest)`` (``highest - close`` if ``from_high``);
    ``out`` may be ``highest`` or ``lowest``."""
    for t in range(len(close)):
        distance = highest[t] - close[t] if from_high else close[t] - lowest[t]
        out[t] = scale * distance / (highest[t] - lowest[t])
    return out


@kernel
def roc_into(close: NDArray[np.float64], period: int, out: NDArray[np.float64]) -> NDArray[np.float64]:
    for t in range(len(close)):
        if t < period:
            out[t] = NAN
        else:
            out[t] = 100.0 * (close[t] - close[t - period]) / close[t - period]
    return out


@kernel
def typical_price(
    high: NDArray[np.float64], low: NDArray[np.float64], close: NDArray[np.float64], out: NDArray[np.float64]
) -> NDArray[np.float64]:
    for t in range(len(close)):
        out[t] = (high[t] + low[t] + close[t]) / 3.0
    return out


@kernel
def bands_into(
    close: NDArray[np.float64],
    middle: NDArray[np.float64],
    sigma: NDArray[np.float64],
    width_factor: float,
    upper: NDArray[np.float64],
    lower: NDArray[np.float64],
    width: NDArray[np.float64],
    percent_b: NDArray[np.float64],
) -> None:
    """Bollinger's outputs from the middle band and the standard deviation."""
    for t in range(len(close)):
        spread = sigma[t] * width_factor
        top, bottom = middle[t] + spread, middle[t] - spread
        gap = top - bottom
        upper[t], lower[t] = top, bottom
        percent_b[t] = NAN if gap == 0.0 else (close[t] - bottom) / gap
        width[t] = gap / middle[t] * 100.0


@kernel
def offset_into(
    middle: NDArray[np.float64],
    spread: NDArray[np.float64],
    factor: float,
    upper: NDArray[np.float64],
    lower: NDArray[np.float64],
) -> None:
    """``middle +- factor * spread``; ``upper`` may be ``spread``."""
    for t in range(len(middle)):
        offset = factor * spread[t]
        upper[t], lower[t] = middle[t] + offset, middle[t] - offset


@kernel
def donchian_middle_into(
    upper: NDArray[np.float64], lower: NDArray[np.float64], out: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``(upper - lower) / 2 + lower``, as ``ta`` writes it."""
    for t in range(len(upper)):
        out[t] = (upper[t] - lower[t]) / 2.0 + lower[t]
    return out


@kernel
def window_range_into(
    high: NDArray[np.float64],
    low: NDArray[np.float64],
    n: int,
    highest: NDArray[np.float64],
    lowest: NDArray[np.float64],
    midpoint: bool,
) -> NDArray[np.float64]:
    """The highest high into ``highest`` and the lowest low into ``lowest`` of the last ``n`` bars
    (NaN for the first n - 1): ``window_extreme_into``'s blocks for both extremes in the same passes,
    a fifth faster than two passes. With ``midpoint``, ``highest`` gets ``(highest + lowest) / 2``
    instead and ``lowest`` is scratch. Returns ``highest``."""
    size = len(high)
    last_start = size - n
    for first in range(0, size, n):
        # As window_sum_into: one pass over each block, forward (its prefix, joined to the previous
        # block's suffix parked on t) and backward (its suffixes, parked in the next block) at once.
        top, bottom = -np.inf, np.inf
        suffix_top, suffix_bottom = -np.inf, np.inf
        if first > 0 and first + 2 * n <= size:  # a middle block: nothing to check
            for j in range(n - 1):
                t = first + j
                top, bottom = max(top, high[t]), min(bottom, low[t])
                joined_top, joined_bottom = max(highest[t], top), min(lowest[t], bottom)
                if midpoint:
                    highest[t] = 0.5 * (joined_top + joined_bottom)
                else:
                    highest[t], lowest[t] = joined_top, joined_bottom
                i = first + n - 1 - j
                suffix_top, suffix_bottom = max(suffix_top, high[i]), min(suffix_bottom, low[i])
                highest[i + n - 1], lowest[i + n - 1] = suffix_top, suffix_bottom
            t = first + n - 1  # the window ending a block is that block alone
            top, bottom = max(top, high[t]), min(bottom, low[t])
            if midpoint:
                highest[t] = 0.5 * (top + bottom)
            else:
                highest[t], lowest[t] = top, bottom
            continue
        full = first + n <= size
        for j in range(min(n, size - first)):  # the first block and the last two
            t = first + j
            top, bottom = max(top, high[t]), min(bottom, low[t])
            if t >= n - 1:
                joined_top, joined_bottom = top, bottom
                if j != n - 1:  # a window ending inside a block joins the parked suffix
                    joined_top, joined_bottom = max(highest[t], top), min(lowest[t], bottom)
                if midpoint:
                    highest[t] = 0.5 * (joined_top + joined_bottom)
                else:
                    highest[t], lowest[t] = joined_top, joined_bottom
            if full and j < n - 1:
                i = first + n - 1 - j
                suffix_top, suffix_bottom = max(suffix_top, high[i]), min(suffix_bottom, low[i])
                if i <= last_start:
                    highest[i + n - 1], lowest[i + n - 1] = suffix_top, suffix_bottom
    highest[: min(n - 1, size)] = NAN
    lowest[: min(n - 1, size)] = NAN
    return highest


@kernel
def midprice_into(
    high: NDArray[np.float64],
    low: NDArray[np.float64],
    n: int,
    out: NDArray[np.float64],
    scratch: NDArray[np.float64],
) -> NDArray[np.float64]:
    """``(highest high + lowest low) / 2`` of the last ``n`` bars, NaN for the first n - 1."""
    return window_range_into(high, low, n, out, scratch, True)


@kernel
def joined_midprice_into(
    highest: NDArray[np.float64], lowest: NDArray[np.float64], lag: int, out: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``(highest high + lowest low) / 2`` of the last ``n + lag`` bars from the extremes of the last
    ``n`` (``highest``, ``lowest``) when ``lag <= n``: the windows ending at t and at t - lag
    together cover exactly those bars, so one pass replaces a window's own; exact, as extremes are.
    ``out`` may be ``highest``: bars are visited newest first, so each is read before it is written."""
    size = len(highest)
    for t in range(size - 1, -1, -1):
        if t - lag < 0 or np.isnan(highest[t - lag]):
            out[t] = NAN
        else:
            top, bottom = max(highest[t], highest[t - lag]), min(lowest[t], lowest[t - lag])
            out[t] = 0.5 * (top + bottom)
    return out


@kernel
def midpoint_into(
    upper: NDArray[np.float64], lower: NDArray[np.float64], out: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``(upper + lower) / 2``."""
    for t in range(len(upper)):
        out[t] = 0.5 * (upper[t] + lower[t])
    return out


@kernel
def obv_into(
    close: NDArray[np.float64], volume: NDArray[np.float64], out: NDArray[np.float64]
) -> NDArray[np.float64]:
    total = 0.0
    for t in range(len(close)):
        total += -volume[t] if t and close[t] < close[t - 1] else volume[t]
        out[t] = total
    return out


@kernel
def directional_flows(
    tp: NDArray[np.float64],
    volume: NDArray[np.float64],
    rising: NDArray[np.float64],
    falling: NDArray[np.float64],
) -> None:
    """Money flow ``tp * volume`` split by whether tp rose or fell from the previous bar."""
    for t in range(len(tp)):
        flow = tp[t] * volume[t]
        rising[t] = flow if t and tp[t] > tp[t - 1] else 0.0
        falling[t] = flow if t and tp[t] < tp[t - 1] else 0.0


@kernel
def mfi_from_sums(
    positive: NDArray[np.float64], negative: NDArray[np.float64], out: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``100 - 100 / (1 + positive / negative)``; ``out`` may be either input."""
    for t in range(len(positive)):
        out[t] = 100.0 - 100.0 / (1.0 + positive[t] / negative[t])
    return out


@kernel
def ratio_into(
    numerator: NDArray[np.float64], denominator: NDArray[np.float64], out: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Element-wise division (x/0 is +-inf, 0/0 NaN); ``out`` may be either input."""
    for t in range(len(numerator)):
        out[t] = numerator[t] / denominator[t]
    return out


@kernel
def product_into(
    a: NDArray[np.float64], b: NDArray[np.float64], out: NDArray[np.float64]
) -> NDArray[np.float64]:
    for t in range(len(a)):
        out[t] = a[t] * b[t]
    return out
