"""Compile every numba kernel ahead of use: ``python -m apps.market.domain.compiled``.

The kernels are compiled on their first call and cached on disk (``cache=True``: in the
``__pycache__`` beside their source, or in ``NUMBA_CACHE_DIR`` where that is not writable).
Compiling all of them takes tens of seconds; loading them from the cache takes about a second per
process. :func:`warm_up` calls each kernel the way the indicators, the patterns and the training
features do, so a build step that runs it (the Dockerfile does) leaves a full cache and no web
request or task ever waits for the compiler.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from apps.market.domain.indicators import REGISTRY
from apps.market.domain.patterns import find
from apps.market.domain.windows import window_moments_into

WARM_UP_BARS = 400


def warm_up() -> float:
    """Run every kernel once on a small random walk; returns the seconds it took."""
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, WARM_UP_BARS)))
    open_ = np.concatenate(([100.0], close[:-1]))
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.002,
            "low": np.minimum(open_, close) * 0.998,
            "close": close,
            "volume": rng.lognormal(3.0, 1.0, WARM_UP_BARS),
        },
        index=pd.date_range("2024-01-01", periods=WARM_UP_BARS, freq="h", tz="UTC"),
    )
    for indicator in REGISTRY.values():
        indicator.compute(frame)
    find(frame)
    returns = np.diff(np.log(close))  # as the training features call it: writable arrays
    window_moments_into(returns, 24, np.empty(len(returns)), np.empty(len(returns)))
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.stderr.write(f"numba kernels compiled or loaded in {warm_up():.1f} s\n")
