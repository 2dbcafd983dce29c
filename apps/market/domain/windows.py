"""Fast, exact rolling-window and exponential-smoothing primitives on float64 numpy arrays.

Every function takes a 1-D float64 array ``x`` of finite values and returns a new float64 array of
the same length whose element t depends only on ``x[: t + 1]`` (bit for bit: a prefix of a series
gives a prefix of the result). Window functions return NaN for the first ``n - 1`` elements (where
the window is not yet full).

The loops are compiled with numba (``cache=True``: compiled once per machine, then loaded from
``__pycache__`` or ``NUMBA_CACHE_DIR``), because the recursive ones (smoothing, Wilder's averages,
the parabolic SAR) cannot be written as whole-array numpy operations, and a single compiled pass
beats several numpy passes over a million bars even where they can.

Window sums, maxima and minima use *blocks* (van Herk / Gil-Werman): the series is cut into blocks
of n from bar 0, and a window of n bars ends in one block and starts in the one before, so it is
the suffix of one block (summed backward) joined to the prefix of the next (summed forward). Two
additions per bar whatever n is, both in one pass over each block; a sum adds at most n values in
sequence, so it is as accurate as summing its window directly (no running total drifting over a
million bars), and a NaN or a huge value only spoils the windows that contain it. Block edges are
fixed by the bar number, so a prefix of a series gives bit-identical windows.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

# IEEE results for x/0 (inf or NaN) instead of Python's ZeroDivisionError, as numpy gives.
# Typed by numba's own stubs (numba/core/decorators.pyi, shipped with numba): a kernel is a
# Dispatcher[<its function>] whose __call__ takes the function's parameters (a ParamSpec) and returns
# its return type, so mypy checks every call against the kernel's annotations (numba ignores them).
# Without those stubs, mypy --strict would report this decorator as untyped on every kernel.
kernel = njit(cache=True, error_model="numpy", nogil=True)


def lag(x: NDArray[np.float64], k: int) -> NDArray[np.float64]:
    """``x`` delayed by ``k >= 0`` bars: ``out[t] = x[t - k]``, NaN for the first k."""
    out = np.full(len(x), np.nan)
    if k < len(x):
        out[k:] = x[: len(x) - k]
    return out


def window_sum(x: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """Sum of the last ``n`` values at every bar (NaN until n values exist)."""
    return window_sum_into(x, n, False, np.empty(len(x)))


def window_mean(x: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """Arithmetic mean of the last ``n`` values (a simple moving average)."""
    return window_sum_into(x, n, True, np.empty(len(x)))


def window_max(x: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """Highest of the last ``n`` values; exact."""
    return window_extreme_into(x, n, True, np.empty(len(x)))


def window_min(x: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """Lowest of the last ``n`` values; exact."""
    return window_extreme_into(x, n, False, np.empty(len(x)))


def window_std(x: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """Population standard deviation (ddof=0) of the last ``n`` values, as pandas' rolling std
    computes it (see :func:`window_mean_std_into`), so Bollinger bands equal ``ta``'s to the bit."""
    out = np.empty(len(x))
    return window_mean_std_into(x, n, out, out)[1]


def window_linear_weighted_mean(x: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """Mean of the last ``n`` values weighted 1, 2, ..., n from oldest to newest, built from
    blocks like :func:`window_sum` (a piece's weighted sum continues with its plain sum)."""
    return _window_weighted_mean(x, n, np.empty(len(x)))


def window_mean_abs_deviation(
    x: NDArray[np.float64], n: int, mean: NDArray[np.float64] | None = None
) -> NDArray[np.float64]:
    """Mean absolute deviation of the last ``n`` values from their own mean (``mean``: the caller's
    :func:`window_mean` of ``x`` over ``n``, where it has it).

    Each window has its own centre, so there is no shortcut: O(len(x) * n) arithmetic in one
    compiled loop. A flat window's mean is exactly its value (:func:`window_sum_into`), so it has
    no deviation (a CCI of 0/0, as ``ta`` gives), not rounding noise.
    """
    centre = window_mean(x, n) if mean is None else mean
    return _window_mean_abs_deviation(x, n, centre, np.empty(len(x)))


def exponential_smoothing(
    x: NDArray[np.float64],
    alpha: float,
    initial: float,
    start: int = 0,
    out: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """``y[t] = (1 - alpha) * y[t - 1] + alpha * x[t]`` for ``t >= start``, with
    ``y[start - 1] = initial``; NaN before ``start``. ``out`` may be ``x`` itself (in place).

    ``pandas.Series.ewm(alpha=a, adjust=False).mean()`` is this with ``initial = x[0]``.
    """
    return smooth_into(x, alpha, initial, start, np.empty(len(x)) if out is None else out)


@kernel
def window_sum_into(
    x: NDArray[np.float64], n: int, mean: bool, out: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``out[t]`` = the sum (the mean if ``mean``) of ``x[t - n + 1 : t + 1]``, NaN for t < n - 1.

    Where the last n values are all equal the mean is exactly that value, as in pandas: a
    Bollinger %B or a CCI on a frozen market is then 0/0, not a ratio of rounding errors."""
    size = len(x)
    scale = 1.0 / n if mean else 1.0
    last_start = size - n  # the last bar a full window starts on
    for first in range(0, size, n):
        # Two independent sums per step, which the CPU overlaps: forward, the block's prefix up to t,
        # to which the window ending at t adds the previous block's suffix parked on t (the window
        # ending a block is that block alone); backward from the block's end, the block's own
        # suffixes, each parked on the bar where the window it starts ends, in the next block.
        forward = 0.0
        backward = 0.0
        if first > 0 and first + 2 * n <= size:  # a middle block: nothing to check
            for j in range(n - 1):
                forward += x[first + j]
                out[first + j] = (out[first + j] + forward) * scale
                backward += x[first + n - 1 - j]
                out[first + 2 * n - 2 - j] = backward
            forward += x[first + n - 1]
            out[first + n - 1] = forward * scale
            continue
        full = first + n <= size
        for j in range(min(n, size - first)):  # the first block and the last two
            t = first + j
            forward += x[t]
            if j == n - 1:
                out[t] = forward * scale
            elif first > 0:
                out[t] = (out[t] + forward) * scale
            if full and j < n - 1:
                i = first + n - 1 - j
                backward += x[i]
                if i <= last_start:
                    out[i + n - 1] = backward
    if mean:
        run_start = 0  # where the run of values equal to x[t] began
        for t in range(1, size):
            if x[t] != x[t - 1]:
                run_start = t
            elif t - run_start >= n - 1:
                out[t] = x[t]
    out[: min(n - 1, size)] = np.nan
    return out


@kernel
def window_extreme_into(
    x: NDArray[np.float64], n: int, highest: bool, out: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``out[t]`` = the highest (else lowest) of ``x[t - n + 1 : t + 1]``, NaN for t < n - 1."""
    size = len(x)
    last_start = size - n
    sign = 1.0 if highest else -1.0  # the lowest value is the highest negated one
    for first in range(0, last_start + 1, n):
        best = -np.inf
        for i in range(min(first + n, size) - 1, last_start, -1):
            best = max(best, sign * x[i])
        for i in range(min(first + n - 1, last_start), first - 1, -1):
            best = max(best, sign * x[i])
            out[i + n - 1] = best
    for first in range(0, size, n):
        best = -np.inf
        for t in range(first, min(first + n, size)):
            best = max(best, sign * x[t])
            if t == first + n - 1:
                out[t] = sign * best
            elif t >= n - 1:
                out[t] = sign * max(out[t], best)
    out[: min(n - 1, size)] = np.nan
    return out


@kernel
def smooth_into(
    x: NDArray[np.float64], alpha: float, initial: float, start: int, out: NDArray[np.float64]
) -> NDArray[np.float64]:
    """:func:`exponential_smoothing` into ``out`` (which may be ``x``)."""
    decay = 1.0 - alpha
    value = initial
    for t in range(start, len(x)):
        value = decay * value + alpha * x[t]
        out[t] = value
    out[: min(start, len(x))] = np.nan
    return out


@kernel
def _window_weighted_mean(x: NDArray[np.float64], n: int, out: NDArray[np.float64]) -> NDArray[np.float64]:
    # A window [i, t] is the suffix [i, end of i's block] with weights 1, 2, ... plus the next
    # block's prefix up to t, whose weights continue from those of the suffix. As in
    # window_sum_into, one pass over each block sums its prefixes forward and its suffixes backward.
    size = len(x)
    scale = 2.0 / (n * (n + 1))  # one over the sum of the weights
    for first in range(0, size, n):
        plain = 0.0  # forward: the prefix's plain and weighted sums
        weighted = 0.0
        weight = 0.0
        suffix_plain = 0.0  # backward
        suffix_weighted = 0.0
        if first > 0 and first + 2 * n <= size:  # a middle block: nothing to check
            for j in range(n - 1):
                t = first + j
                weight += 1.0
                plain += x[t]
                weighted += weight * x[t]
                out[t] = (out[t] + weighted + (n - 1 - j) * plain) * scale
                suffix_plain += x[first + n - 1 - j]
                suffix_weighted += suffix_plain
                out[first + 2 * n - 2 - j] = suffix_weighted
            weighted += (weight + 1.0) * x[first + n - 1]
            out[first + n - 1] = weighted * scale
            continue
        full = first + n <= size
        for j in range(min(n, size - first)):  # the first block and the last two
            t = first + j
            weight += 1.0
            plain += x[t]
            weighted += weight * x[t]
            if j == n - 1:
                out[t] = weighted * scale
            elif t >= n - 1:
                out[t] = (out[t] + weighted + (first - (t - n + 1)) * plain) * scale
            if full and j < n - 1:
                i = first + n - 1 - j
                suffix_plain += x[i]
                suffix_weighted += suffix_plain  # adding x[i] with weight 1 raises every later one by 1
                if i + n - 1 < size:
                    out[i + n - 1] = suffix_weighted
    out[: min(n - 1, size)] = np.nan
    return out


@kernel
def _window_mean_abs_deviation(
    x: NDArray[np.float64], n: int, centre: NDArray[np.float64], out: NDArray[np.float64]
) -> NDArray[np.float64]:
    for t in range(min(n - 1, len(x))):
        out[t] = np.nan
    for t in range(n - 1, len(x)):
        spread = 0.0
        for i in range(t - n + 1, t + 1):
            spread += abs(x[i] - centre[t])
        out[t] = spread / n
    return out


@kernel
def window_moments_into(
    x: NDArray[np.float64], n: int, mean: NDArray[np.float64], std: NDArray[np.float64]
) -> None:
    """Mean and population standard deviation (ddof=0) of the last ``n`` values, into ``mean`` and
    ``std``, in O(len(x)) time and memory, where a window view's ``.std(axis=1)`` takes a
    len(x) x n temporary.

    Blocks again, each piece carrying Welford's mean and sum of squared deviations, joined with
    Chan's formula: as accurate as a two-pass std of each window (no ``mean(x**2) - mean(x)**2``
    cancellation), and a window of equal values has exactly that value as its mean and 0 as its
    deviation. Block edges count from ``x[0]``: to get bit-identical values for windows computed
    from a later start, slice ``x`` at a multiple of ``n``.
    """
    # window_sum_into's blocks, each piece summarised by Welford's running mean and sum of squared
    # deviations (std parks the suffix's), then a suffix and a prefix joined by Chan's formula.
    size = len(x)
    last_start = size - n
    inverse = 1.0 / np.arange(1, n + 1)
    for first in range(0, last_start + 1, n):
        centre = squares = 0.0
        for i in range(min(first + n, size) - 1, first - 1, -1):
            count = min(first + n, size) - i
            delta = x[i] - centre
            centre += delta * inverse[count - 1]
            squares += delta * (x[i] - centre)
            if i <= last_start:
                mean[i + n - 1], std[i + n - 1] = centre, squares
    for first in range(0, size, n):
        centre = squares = 0.0
        for t in range(first, min(first + n, size)):
            count = t - first + 1
            delta = x[t] - centre
            centre += delta * inverse[count - 1]
            squares += delta * (x[t] - centre)
            if t < n - 1:
                mean[t] = std[t] = np.nan
                continue
            if count == n:
                joined_centre, joined_squares = centre, squares
            else:
                gap = centre - mean[t]
                joined_centre = mean[t] + gap * count / n
                joined_squares = std[t] + squares + gap * gap * (n - count) * count / n
            mean[t], std[t] = joined_centre, np.sqrt(max(joined_squares / n, 0.0))


# pandas' threshold for suspecting cancellation in its rolling variance: a sum of squares that falls
# below 1e3 machine epsilons of its previous value keeps at most three significant digits.
_INV_COND_TOL = float(np.finfo(np.float64).eps) * 1e3


@kernel
def window_mean_std_into(
    x: NDArray[np.float64], n: int, mean: NDArray[np.float64], std: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """pandas' ``rolling(n).mean()`` into ``mean`` and ``rolling(n).std(ddof=0)`` into ``std``,
    operation for operation (pandas 3.1 ``roll_mean`` and ``roll_var``), so equal to them to the bit;
    ``mean`` and ``std`` may be the same array to keep only the std.

    Both slide one window along the series: the mean is a Kahan-compensated running sum (a window
    of equal values is exactly that value), the variance Welford's update with a compensated mean,
    recomputed from the window when the sum of squares loses more than three digits. That carries
    rounding from window to window (up to 3e-9 relative against a two-pass std on two years of
    hourly BTC; :func:`window_moments_into` is exact), but it is what ``ta``'s Bollinger bands are.
    The variance's two divisions per bar are a chain of dependent steps, so the mean, whose chain is
    independent, comes at no extra time in the same loop: about twice pandas' speed together.
    """
    size = len(x)
    total = total_add = total_remove = same_value = 0.0
    negatives = same = 0
    count = centre = squares = centre_add = centre_remove = 0.0
    unstable = False
    for t in range(size):
        if t >= n:  # the value leaving the window
            old = x[t - n]
            y = -old - total_remove
            s = total + y
            total_remove = s - total - y
            total = s
            negatives -= np.signbit(old)
            previous_squares = squares
            count -= 1.0
            if count:
                previous_centre = centre - centre_remove
                y = old - centre_remove
                step = y - centre
                centre_remove = step + centre - y
                centre = centre - step / count
                squares = squares - (old - previous_centre) * (old - centre)
                unstable |= previous_squares * _INV_COND_TOL > squares
            else:
                centre = squares = 0.0
                unstable = False
        value = x[t]
        y = value - total_add
        s = total + y
        total_add = s - total - y
        total = s
        negatives += np.signbit(value)
        same = same + 1 if t > 0 and value == same_value else 1
        same_value = value
        recompute = t == 0 or unstable
        if recompute:  # restart the variance from the window's values
            count = centre = squares = centre_add = centre_remove = 0.0
        for j in range(max(0, t - n + 1) if recompute else t, t + 1):
            value = x[j]
            previous_squares = squares
            count += 1.0
            previous_centre = centre - centre_add
            y = value - centre_add
            step = y - centre
            centre_add = step + centre - y
            centre = centre + step / count
            squares = squares + (value - previous_centre) * (value - centre)
            unstable |= previous_squares * _INV_COND_TOL > squares
        if recompute:
            unstable = False
        if t < n - 1:
            mean[t] = std[t] = np.nan
            continue
        average = total / n
        if same >= n:
            average = same_value
        elif (negatives == 0 and average < 0.0) or (negatives == n and average > 0.0):
            average = 0.0  # rounding carried across zero: values of one sign cannot average to the other
        variance = squares / count
        mean[t], std[t] = average, np.sqrt(variance) if variance >= 0.0 else 0.0
    return mean, std
