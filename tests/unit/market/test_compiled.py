"""The warm-up compiles every kernel the indicators, patterns and features use: its cache is complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

# After the warm-up has filled the cache, a fresh process uses every kernel for real (another
# frame, every indicator, every pattern, the core feature set) and counts what it had to compile.
USE_EVERYTHING = """
import json, numba
from apps.market.domain import kernels, windows
from apps.market.domain.indicators import REGISTRY
from apps.market.domain.patterns import candlestick, find
from apps.market.domain.patterns.chart import breakouts, levels, lines, reversals, swings
from apps.training.domain.features import CORE_V1, feature_matrix
from tests.unit.market.synthetic import random_walk

frame = random_walk(11, bars=900, halts=True)
for indicator in REGISTRY.values():
    indicator.compute(frame)
find(frame)
feature_matrix(frame, CORE_V1)
feature_matrix(frame, CORE_V1, last_rows=1)
misses = {
    f"{module.__name__}.{name}": sum(kernel.stats.cache_misses.values())
    for module in (windows, kernels, swings, levels, breakouts, reversals, lines, candlestick)
    for name, kernel in vars(module).items()
    if isinstance(kernel, numba.core.registry.CPUDispatcher)
}
print(json.dumps({name: count for name, count in misses.items() if count}))
"""


def run(code: str, cache: Path) -> str:
    environment = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=environment, capture_output=True, text=True, check=True
    )
    return result.stdout


def test_after_the_warm_up_nothing_is_compiled_again(tmp_path):
    """An empty cache of its own, so the warm-up really compiles (about a minute on two cores)."""
    run("from apps.market.domain.compiled import warm_up; warm_up()", tmp_path)
    assert json.loads(run(USE_EVERYTHING, tmp_path)) == {}
