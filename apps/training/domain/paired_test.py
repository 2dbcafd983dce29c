"""Is the candidate better than the champion on the same bars? The Diebold-Mariano test with a HAC variance.

Diebold & Mariano (1995), "Comparing Predictive Accuracy", Journal of Business & Economic Statistics
13(3), 253-263. Two models are scored on the same ``T`` rows and ``d_t`` is the difference of their
scores on row t, signed so that a positive mean favours the candidate: candidate minus champion for
signal returns, champion minus candidate for losses. Under the null hypothesis that the candidate
is no better, ``E[d] <= 0``. The statistic is

    DM = mean(d) / sqrt(S / T)

with ``S`` the long-run variance of ``d``. The differences are autocorrelated (positions persist;
forecasts ``h`` bars ahead overlap the next ``h - 1``), so ``S`` is the Newey & West (1987, "A Simple,
Positive Semi-Definite, Heteroskedasticity and Autocorrelation Consistent Covariance Matrix",
Econometrica 55(3), 703-708) estimate

    S = g_0 + 2 * sum_{k=1..L} (1 - k / (L + 1)) g_k,
    g_k = (1/T) * sum_{t=k+1..T} (d_t - mean(d)) (d_{t-k} - mean(d))

whose Bartlett weights keep it non-negative (the rectangular window of the 1995 paper can go
negative). The lag ``L`` is Newey & West's (1994, "Automatic Lag Selection in Covariance Matrix
Estimation", Review of Economic Studies 61(4)) rule of thumb ``floor(4 (T / 100) ** (2 / 9))``, and at
least ``h - 1``. As Harvey, Leybourne & Newbold (1997, "Testing the equality of prediction mean squared
errors", International Journal of Forecasting 13(2), 281-291) advise for small samples, ``DM`` is
referred to Student's t with ``T - 1`` degrees of freedom rather than the normal.

The test is one-sided: the p-value is the probability of a statistic at least this large if the
candidate were no better, so a small p-value is evidence that it is better. Swapping the two models
negates ``d`` and the statistic and turns ``p`` into ``1 - p``. When ``d`` is constant (the same
positions on every bar) there is no variance to scale by: the p-value is 0 for a constant gain and 1
otherwise (no difference is no evidence).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import t as student_t

TEST_NAME = "diebold_mariano_hac"


@dataclass(frozen=True)
class PairedTest:
    """The Diebold-Mariano test of ``d`` = candidate's score minus the champion's, row by row."""

    observations: int
    mean_difference: float  # per row; positive favours the candidate
    long_run_variance: float
    lags: int
    statistic: float | None  # None when d is constant
    p_value: float  # one-sided: small when the candidate is better

    def to_dict(self) -> dict[str, object]:
        return {
            "test": TEST_NAME,
            "observations": self.observations,
            "mean_difference": self.mean_difference,
            "long_run_variance": self.long_run_variance,
            "lags": self.lags,
            "statistic": self.statistic,
            "p_value": self.p_value,
        }


def newey_west_lags(observations: int, horizon: int = 1) -> int:
    """``floor(4 (T / 100) ** (2 / 9))``, at least ``horizon - 1`` and at most ``T - 1``."""
    rule = math.floor(4.0 * math.pow(observations / 100.0, 2.0 / 9.0))
    return max(0, min(max(rule, horizon - 1), observations - 1))


def long_run_variance(differences: NDArray[np.float64], lags: int) -> float:
    """The Newey-West (Bartlett) estimate ``S`` of the module docstring."""
    d = np.asarray(differences, dtype=np.float64)
    centred = d - d.mean()
    count = len(d)
    variance = float(centred @ centred) / count
    for k in range(1, lags + 1):
        variance += 2.0 * (1.0 - k / (lags + 1.0)) * float(centred[k:] @ centred[:-k]) / count
    return max(variance, 0.0)


def diebold_mariano(
    candidate: NDArray[np.float64],
    champion: NDArray[np.float64],
    *,
    horizon: int = 1,
    lags: int | None = None,
) -> PairedTest:
    """Test whether ``candidate``'s per-row scores exceed ``champion``'s on the same rows (higher is
    better: pass signal returns, or losses negated). ``lags`` defaults to :func:`newey_west_lags`."""
    a = np.asarray(candidate, dtype=np.float64)
    b = np.asarray(champion, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"the score series must be one-dimensional and paired, got {a.shape}, {b.shape}")
    if len(a) < 2:
        raise ValueError(f"a paired test needs at least 2 rows, got {len(a)}")
    d = a - b
    if not np.isfinite(d).all():
        raise ValueError("scores must be finite numbers")
    count = len(d)
    lags = newey_west_lags(count, horizon) if lags is None else lags
    if not 0 <= lags < count:
        raise ValueError(f"lags must be 0 to {count - 1}, got {lags}")
    mean = float(d.mean())
    variance = long_run_variance(d, lags) if np.ptp(d) > 0.0 else 0.0
    if variance == 0.0:
        return PairedTest(count, mean, 0.0, lags, None, 0.0 if mean > 0.0 else 1.0)
    statistic = mean / math.sqrt(variance / count)
    p_value = float(student_t.sf(statistic, df=count - 1))
    return PairedTest(count, mean, variance, lags, statistic, p_value)
