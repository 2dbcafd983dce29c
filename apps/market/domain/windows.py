"""Fast, exact rolling-window and exponential-smoothing primitives on float64 numpy arrays.

Every function takes a 1-D float64 array ``x`` of finite values and returns a new float64 array of
the same length whose element t depends only on ``x[: t + 1]`` (bit for bit: a prefix of a series
gives a prefix of the result). Window functions return NaN for the first ``n - 1`` elements (where
the window is not yet full).

Why not ``pandas.Series.rolling``? These are 3 to 10 times faster on long series and, for sums,
more accurate than a cumulative-sum difference:

* Window sums, maxima and minima are built by *doubling*: the sums of windows of 2 are pairwise sums
  of windows of 1, windows of 4 pair windows of 2, and so on; a window of n is assembled from the
  power-of-two pieces in the binary expansion of n (for max/min, two overlapping pieces suffice).
  That is ``log2(n)`` whole-array numpy operations, each exact or as accurate as a pairwise sum,
  and a NaN or a huge value only spoils the windows that contain it. Each level overwrites the
  previous one in a single scratch array (numpy allows ``f(a[:-k], a[k:], out=a[:-k])``: every
  element is read before it is written), because on a million bars fresh memory costs as much as
  the arithmetic.
* Exponential smoothing is a first-order recursion, which numpy cannot vectorise directly; see
  :func:`exponential_smoothing` for the block-wise closed form used here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

# Column strides of a power-of-two number of float64 thrash the cache; 48 measured best.
_BLOCK = 48
# decay ** -j must stay far from overflow even after multiplying by prices: e**300 ~ 1e130.
_MAX_EXPONENT = 300.0
_MAD_CHUNK_ELEMENTS = 1 << 20

Binary = Callable[..., np.ndarray]


def lag(x: np.ndarray, k: int) -> np.ndarray:
    """``x`` delayed by ``k >= 0`` bars: ``out[t] = x[t - k]``, NaN for the first k."""
    out = np.full(len(x), np.nan)
    if k < len(x):
        out[k:] = x[: len(x) - k]
    return out


def window_sum(x: np.ndarray, n: int) -> np.ndarray:
    """Sum of the last ``n`` values at every bar (NaN until n values exist)."""
    out = np.full(len(x), np.nan)
    if n > len(x):
        return out
    result = out[n - 1 :]
    span = x.copy()  # span[i]: sum of x[i : i + size], overwritten level by level
    size, covered = 1, 0
    while True:
        if n & size:
            piece = span[covered : covered + len(result)]
            if covered:
                result += piece
            else:
                result[:] = piece
            covered += size
        if 2 * size > n:
            return out
        np.add(span[:-size], span[size:], out=span[:-size])
        size *= 2


def window_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Arithmetic mean of the last ``n`` values (a simple moving average)."""
    out = window_sum(x, n)
    out /= n
    return out


def window_max(x: np.ndarray, n: int) -> np.ndarray:
    """Highest of the last ``n`` values; exact."""
    return _window_extreme(x, n, np.maximum)


def window_min(x: np.ndarray, n: int) -> np.ndarray:
    """Lowest of the last ``n`` values; exact."""
    return _window_extreme(x, n, np.minimum)


def window_std(x: np.ndarray, n: int) -> np.ndarray:
    """Population standard deviation (ddof=0) of the last ``n`` values.

    Delegates to pandas' online algorithm, the one ``ta`` uses, so Bollinger bands match ``ta``
    exactly. That algorithm carries rounding error from window to window: against an exact
    two-pass std it is off by up to 3e-9 relative on two years of hourly BTC and 1e-5 on a 100k-bar
    random walk that wanders far from its start; immaterial for bands.
    """
    return pd.Series(x).rolling(n, min_periods=n).std(ddof=0).to_numpy()


def window_linear_weighted_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Mean of the last ``n`` values weighted 1, 2, ..., n from oldest to newest.

    Doubling again: a piece carries its plain sum S and weighted sum W; appending a piece (S2, W2)
    to a piece of length p gives (S + S2, W + W2 + p * S2).
    """
    out = np.full(len(x), np.nan)
    if n > len(x):
        return out
    count = len(x) - n + 1
    total = np.zeros(count)  # the weighted sum of the pieces joined so far
    span_s, span_w = x.copy(), x.copy()
    size, covered = 1, 0
    while True:
        if n & size:
            total += span_w[covered : covered + count]
            total += covered * span_s[covered : covered + count]
            covered += size
        if 2 * size > n:
            break
        np.add(span_w[:-size], span_w[size:], out=span_w[:-size])
        span_w[:-size] += size * span_s[size:]
        np.add(span_s[:-size], span_s[size:], out=span_s[:-size])
        size *= 2
    np.divide(total, n * (n + 1) / 2, out=out[n - 1 :])
    return out


def window_mean_abs_deviation(x: np.ndarray, n: int) -> np.ndarray:
    """Mean absolute deviation of the last ``n`` values from their own mean.

    Each window has its own centre, so there is no shortcut: this works on strided window views
    in chunks, O(len(x) * n) arithmetic but no Python loop per bar.
    """
    out = np.full(len(x), np.nan)
    if n > len(x):
        return out
    windows = sliding_window_view(x, n)
    rows = max(1, _MAD_CHUNK_ELEMENTS // n)
    for start in range(0, len(windows), rows):
        chunk = windows[start : start + rows]
        centre = chunk.mean(axis=1, keepdims=True)
        out[n - 1 + start : n - 1 + start + len(chunk)] = np.abs(chunk - centre).mean(axis=1)
    return out


def exponential_smoothing(
    x: np.ndarray, alpha: float, initial: float, start: int = 0, out: np.ndarray | None = None
) -> np.ndarray:
    """``y[t] = (1 - alpha) * y[t - 1] + alpha * x[t]`` for ``t >= start``, with
    ``y[start - 1] = initial``; NaN before ``start``. ``out`` may be ``x`` itself (in place).

    ``pandas.Series.ewm(alpha=a, adjust=False).mean()`` is this with ``initial = x[0]``.

    Numpy has no recursive operation, so the series is cut into blocks of B bars. With
    d = 1 - alpha and c the value entering a block, inside it
    ``y[j] = d**j * (d * c + sum_{i <= j} alpha * x[i] / d**i)``: a prefix sum, computed for all
    blocks at once by adding column j - 1 into column j. The entry values follow their own
    recursion ``c[k + 1] = d**B * c[k] + end[k]``, solved by a log-depth scan over the blocks
    before the prefix sums, so c enters as a term of column 0. About three times as fast as pandas'
    compiled loop; agrees with it to ~1e-15 relative.
    """
    out = np.empty(len(x)) if out is None else out
    n = len(x) - start
    decay = 1.0 - alpha
    if n <= 0 or decay == 0.0:
        out[start:] = x[start:]
        out[:start] = np.nan
        return out
    width = max(1, min(_BLOCK, n, int(_MAX_EXPONENT / -math.log(decay))))
    powers = decay ** np.arange(width)
    scale = alpha / powers
    full, tail = divmod(n, width)
    body = out[start : start + full * width].reshape(full, width)
    np.multiply(x[start : start + full * width].reshape(full, width), scale, out=body)
    rest = x[start + full * width :] * scale[:tail]
    # Each block's value at its end starting from zero; the last block's is never needed.
    ends = np.zeros(full + (tail > 0))
    ends[:full] = body.sum(axis=1) * powers[-1]
    entries = decay * _chain_blocks(ends, decay**width, initial)
    body[:, 0] += entries[:full]
    for j in range(1, width):
        np.add(body[:, j], body[:, j - 1], out=body[:, j])
    body *= powers
    if tail:
        rest[0] += entries[full]
        np.cumsum(rest, out=rest)
        out[start + full * width :] = rest * powers[:tail]
    out[:start] = np.nan
    return out


def _chain_blocks(ends: np.ndarray, factor: float, initial: float) -> np.ndarray:
    """Entry values c[k] of ``c[k + 1] = factor * c[k] + ends[k]``, ``c[0] = initial``.

    Hillis-Steele scan: after the pass with shift s, each value holds the contributions of its
    previous 2s ends. Stops once ``factor ** s`` underflows, as older blocks no longer count; the
    passes do not depend on the series' length, so a prefix of a series smooths bit-identically.
    """
    carried = ends.copy()
    carried[0] += factor * initial
    shift, power = 1, factor
    while power > 0.0:
        carried[shift:] += power * carried[: max(0, len(carried) - shift)]
        shift, power = 2 * shift, power * power
    return np.concatenate(([initial], carried[:-1]))


def _window_extreme(x: np.ndarray, n: int, pick: Binary) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if n > len(x):
        return out
    span = x.copy()  # span[i]: extreme of x[i : i + size], overwritten level by level
    size = 1
    while 2 * size <= n:
        pick(span[:-size], span[size:], out=span[:-size])
        size *= 2
    # Two overlapping pieces of the largest power of two cover the window exactly.
    count = len(x) - n + 1
    pick(span[:count], span[n - size : n - size + count], out=out[n - 1 :])
    return out
