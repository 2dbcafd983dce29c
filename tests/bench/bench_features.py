"""Benchmark: the rolling-window training features (volatility, volume z-score) at 100k and 1M bars.

Run from the repository root: ``python -m tests.bench.bench_features``. Each size runs in its own
subprocess, so its peak memory (tracemalloc: every numpy allocation) is its own. Timed: the five
window features of ``core_v1`` (volatility over 6, 24 and 72 bars, volume z-score over 24 and 72)
on prepared bars, CPU seconds, best of 5; peak: the most memory allocated at once while they
run, outputs included, against the size of the input frame (five float columns and the index).
The whole ``core_v1`` matrix is shown for context: its output alone is 30 columns, 6x the frame.

Targets: time linear in bars (1M / 100k <= 12 for 10x the bars); peak < 2x the input frame.
"Before" is the window-view implementation (``sliding_window_view(...).std(axis=1)``), measured
on this machine with this script before the change.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable

from apps.training.domain.features import (
    CORE_V1,
    Bars,
    VolatilityFeature,
    VolumeZScoreFeature,
    feature_matrix,
)
from tests.unit.training.synthetic import random_walk_candles

SIZES = (100_000, 1_000_000)
REPEATS = 5
WINDOW_FEATURES = [f for f in CORE_V1.features if isinstance(f, VolatilityFeature | VolumeZScoreFeature)]
# Measured with this script on the window-view code, medians of three runs (2 shared cores, load 2.5).
BEFORE = {
    100_000: {"cpu_s": 0.120, "peak_mb": 64.8, "matrix_cpu_s": 0.235},
    1_000_000: {"cpu_s": 1.109, "peak_mb": 648.0, "matrix_cpu_s": 2.51},
}


def _cpu_seconds(work: Callable[[], object]) -> float:
    """Best of REPEATS: the figure least disturbed by the other work on a shared machine."""
    timings = []
    for _ in range(REPEATS):
        start = time.process_time()
        work()
        timings.append(time.process_time() - start)
    return min(timings)


def measure(bars_count: int) -> dict[str, float]:
    """One size, in this process: CPU seconds and tracemalloc peak of the window features."""
    frame = random_walk_candles(bars_count, seed=3)
    frame_mb = frame.memory_usage(deep=True).sum() / 1e6
    bars = Bars(frame)

    def window_features() -> list:
        return [feature.compute(bars) for feature in WINDOW_FEATURES]

    window_features()  # compile or load the kernels outside the timing
    loops = max(1, 1_000_000 // bars_count)  # as much work per timing at every size
    cpu = _cpu_seconds(lambda: [window_features() for _ in range(loops)]) / loops
    tracemalloc.start()
    window_features()
    peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    matrix_cpu = _cpu_seconds(lambda: feature_matrix(frame, CORE_V1))
    return {"cpu_s": cpu, "peak_mb": peak_mb, "frame_mb": frame_mb, "matrix_cpu_s": matrix_cpu}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--measure":
        print(json.dumps(measure(int(sys.argv[2]))))
        return
    figures = {}
    for size in SIZES:
        command = [sys.executable, "-m", "tests.bench.bench_features", "--measure", str(size)]
        figures[size] = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    small, large = (figures[size] for size in SIZES)
    growth = large["cpu_s"] / small["cpu_s"]
    growth_before = BEFORE[SIZES[1]]["cpu_s"] / BEFORE[SIZES[0]]["cpu_s"]
    print(f"## Window features of core_v1 ({len(WINDOW_FEATURES)}: volatility 6/24/72, volume z 24/72)\n")
    header = "| bars | frame MB | CPU s before | CPU s now | peak MB before | peak MB now | peak / frame |"
    print(f"{header} target |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for size in SIZES:
        now, before = figures[size], BEFORE[size]
        ratio = now["peak_mb"] / now["frame_mb"]
        verdict = "pass" if ratio < 2.0 else "FAIL"
        print(
            f"| {size:,} | {now['frame_mb']:.0f} | {before['cpu_s']:.3f} | {now['cpu_s']:.3f} "
            f"| {before['peak_mb']:.0f} | {now['peak_mb']:.0f} | {ratio:.2f} | < 2 ({verdict}) |"
        )
    verdict = "pass" if growth <= 12.0 else "FAIL"
    target = f"<= 12x for 10x bars ({verdict})"
    print(f"| 1M / 100k | - | {growth_before:.1f}x | **{growth:.1f}x** | - | - | - | {target} |")
    print("\n## The whole core_v1 matrix (context: indicators included), CPU s\n")
    print("| bars | before | now |")
    print("| ---: | ---: | ---: |")
    for size in SIZES:
        print(f"| {size:,} | {BEFORE[size]['matrix_cpu_s']:.2f} | {figures[size]['matrix_cpu_s']:.2f} |")


if __name__ == "__main__":
    main()
