"""Probabilistic and deflated Sharpe ratios, the expected best Sharpe of N trials, the minimum track record.

Conventions. Every Sharpe ratio here is **per bar**, not annualised: ``SR = mean(r) / std(r)`` of the
bar returns ``r`` (ddof=1, no risk-free rate), and ``T`` counts return observations (bars). The
report's annualised ratio relates to it by ``SR_annual = SR * sqrt(bars_per_year)`` (and a variance of
Sharpe ratios by ``V_annual = V * bars_per_year``), which assumes independent bars: convert an
annualised figure back before passing it here. Skewness ``g3`` and kurtosis ``g4`` are the sample
moments of ``r`` (population form, kurtosis *not* in excess: 3 for normal returns).

* :func:`probabilistic_sharpe` (PSR, Bailey & López de Prado 2012, "The Sharpe Ratio Efficient
  Frontier", Journal of Risk 15(2)): the probability that the true Sharpe ratio exceeds a benchmark
  ``SR*`` given the estimate, ``Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2))``.
* :func:`min_track_record_length` (same paper): the bars needed before a PSR reaches a confidence,
  ``1 + (1 - g3 SR + (g4 - 1) / 4 SR^2) (z_confidence / (SR - SR*))^2``.
* :func:`expected_max_sharpe` (Bailey & López de Prado 2014, "The Deflated Sharpe Ratio", Journal of
  Portfolio Management 40(5)): the Sharpe ratio the best of ``N`` skill-less trials is expected to
  reach, ``sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))`` with ``V`` the variance
  of the trials' Sharpe ratios and ``gamma`` the Euler-Mascheroni constant.
* :func:`deflated_sharpe` (DSR, same 2014 paper): the PSR against that expected maximum. A DSR of at
  least 0.95 is the paper's bar for a discovery that survives the number of trials.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import norm

NORMAL_KURTOSIS = 3.0
_SLICE = 1 << 16
_EPSILON = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class ReturnMoments:
    """What the Sharpe statistics need from a return series; None where the series is flat."""

    observations: int
    sharpe: float | None
    skewness: float | None
    kurtosis: float | None


def return_moments(returns: NDArray[np.float64]) -> ReturnMoments:
    """Observations, per-bar Sharpe ratio (ddof=1), skewness and kurtosis (population) of ``returns``."""
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError("returns must be a one-dimensional array of finite numbers")
    return _moments((r[start : start + _SLICE] for start in range(0, len(r), _SLICE)), len(r), repair=False)


def equity_moments(equity: NDArray[np.float64]) -> ReturnMoments:
    """:func:`return_moments` of an equity curve's bar returns (:func:`..metrics.bar_returns`: a return
    that is not finite, past a wiped-out account, counts as 0), without materialising them."""
    curve = np.asarray(equity, dtype=np.float64)
    buffer = np.empty(max(min(len(curve) - 1, _SLICE), 0))

    def slices() -> Iterator[NDArray[np.float64]]:
        for start in range(0, len(curve) - 1, _SLICE):
            window = curve[start : start + _SLICE + 1]
            returns = buffer[: len(window) - 1]
            np.subtract(window[1:], window[:-1], out=returns)
            with np.errstate(divide="ignore", invalid="ignore"):
                np.divide(returns, window[:-1], out=returns)
            yield returns

    return _moments(slices(), max(len(curve) - 1, 0), repair=True)


def _moments(slices: Iterator[NDArray[np.float64]], count: int, *, repair: bool) -> ReturnMoments:
    """Moments of a series given as consecutive ``slices``, in one pass through reused buffers: a
    million-bar series would otherwise allocate (and page in) several arrays its size, which costs
    more than the arithmetic. Each slice's central sums are merged exactly (Pébay 2008, "Formulas for
    robust, one-pass parallel computation of covariances and arbitrary-order statistical moments").
    A value that is not finite is an error, or with ``repair`` (a writable slice) counts as 0."""
    seen, mean, m2, m3, m4 = 0, 0.0, 0.0, 0.0, 0.0
    varies, low, high = False, math.inf, -math.inf
    buffers = np.empty((2, min(count, _SLICE)))
    for piece in slices:
        size = len(piece)
        piece_mean = float(piece.mean())
        if not math.isfinite(piece_mean):  # any NaN or infinity reaches the mean
            if not repair:
                raise ValueError("returns must be a one-dimensional array of finite numbers")
            piece[~np.isfinite(piece)] = 0.0
            piece_mean = float(piece.mean())
        d, d2 = buffers[:, :size]
        np.subtract(piece, piece_mean, out=d)
        np.multiply(d, d, out=d2)
        # einsum, not BLAS dots (whose threads cost more than they save here) nor product arrays.
        b2, b3, b4 = float(d2.sum()), float(np.einsum("i,i->", d2, d)), float(np.einsum("i,i->", d2, d2))
        # Rounding the mean of a constant slice leaves deviations of a few ulps of it at most, so more
        # than 64 ulps proves the series varies; until one slice proves it, compare values instead.
        varies = varies or b2 > size * (64.0 * _EPSILON * piece_mean) ** 2
        if not varies:
            low, high = min(low, float(piece.min())), max(high, float(piece.max()))
        total, delta = seen + size, piece_mean - mean
        m4 += (
            b4
            + delta**4 * seen * size * (seen * seen - seen * size + size * size) / total**3
            + 6.0 * delta**2 * (seen * seen * b2 + size * size * m2) / total**2
            + 4.0 * delta * (seen * b3 - size * m3) / total
        )
        m3 += (
            b3
            + delta**3 * seen * size * (seen - size) / total**2
            + 3.0 * delta * (seen * b2 - size * m2) / total
        )
        m2 += b2 + delta**2 * seen * size / total
        mean += delta * size / total
        seen = total
    # Compare values, not the variance: a constant series can leave a rounding-sized variance.
    if count < 2 or (not varies and low == high):
        return ReturnMoments(count, None, None, None)
    variance = m2 / count
    return ReturnMoments(
        observations=count,
        sharpe=mean / math.sqrt(m2 / (count - 1)),
        skewness=m3 / count / variance**1.5,
        kurtosis=m4 / count / variance**2,
    )


def probabilistic_sharpe(
    sharpe: float,
    observations: int,
    *,
    skewness: float = 0.0,
    kurtosis: float = NORMAL_KURTOSIS,
    benchmark: float = 0.0,
) -> float | None:
    """PSR: the probability that the true per-bar Sharpe ratio exceeds ``benchmark`` (Bailey & López de
    Prado 2012). None with fewer than 2 observations or moments no distribution has."""
    scale = _estimate_scale(sharpe, skewness, kurtosis)
    if observations < 2 or scale is None:
        return None
    return float(norm.cdf((sharpe - benchmark) * math.sqrt(observations - 1) / scale))


def min_track_record_length(
    sharpe: float,
    *,
    skewness: float = 0.0,
    kurtosis: float = NORMAL_KURTOSIS,
    benchmark: float = 0.0,
    confidence: float = 0.95,
) -> float | None:
    """MinTRL: the bars of this Sharpe ratio and these moments needed for a PSR against ``benchmark``
    of ``confidence`` (Bailey & López de Prado 2012). None unless ``sharpe`` exceeds the benchmark."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    scale = _estimate_scale(sharpe, skewness, kurtosis)
    if scale is None or sharpe <= benchmark:
        return None
    return 1.0 + scale**2 * (float(norm.ppf(confidence)) / (sharpe - benchmark)) ** 2


def expected_max_sharpe(trials: int, sharpe_variance: float) -> float:
    """The per-bar Sharpe ratio the best of ``trials`` skill-less trials is expected to reach, given the
    variance of the trials' Sharpe ratios (Bailey & López de Prado 2014). 0 for a single trial."""
    if isinstance(trials, bool) or not isinstance(trials, int | np.integer) or trials < 1:
        raise ValueError(f"trials must be a whole number >= 1, got {trials!r}")
    if not sharpe_variance >= 0.0:
        raise ValueError(f"the variance of the trials' Sharpe ratios must be >= 0, got {sharpe_variance!r}")
    if trials == 1:
        return 0.0
    gamma = np.euler_gamma
    quantiles = (1.0 - gamma) * norm.ppf(1.0 - 1.0 / trials) + gamma * norm.ppf(1.0 - 1.0 / (trials * math.e))
    return float(math.sqrt(sharpe_variance) * quantiles)


def deflated_sharpe(
    sharpe: float,
    observations: int,
    *,
    trials: int,
    sharpe_variance: float,
    skewness: float = 0.0,
    kurtosis: float = NORMAL_KURTOSIS,
) -> float | None:
    """DSR: the PSR of the selected trial against :func:`expected_max_sharpe` of all ``trials``
    (Bailey & López de Prado 2014). With one trial it is the PSR against 0."""
    return probabilistic_sharpe(
        sharpe,
        observations,
        skewness=skewness,
        kurtosis=kurtosis,
        benchmark=expected_max_sharpe(trials, sharpe_variance),
    )


def _estimate_scale(sharpe: float, skewness: float, kurtosis: float) -> float | None:
    """``sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2)``: the Sharpe estimate's standard error times sqrt(T - 1).

    Every distribution has ``g4 >= 1 + g3^2``, which keeps this positive; moments that break it
    (typed in, not measured) have no answer."""
    variance = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    return math.sqrt(variance) if variance > 0.0 else None
