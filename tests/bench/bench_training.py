"""Benchmark of the training pipeline against a bare xgboost fit, and of newest-bar prediction.

Run from the repository root: ``python -m tests.bench.bench_training``. Prints a markdown table.
Figures are medians of repeated runs; the machine may be shared, so read them as indicative.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import xgboost as xgb

from apps.training.domain.features import CORE_V1, feature_matrix
from apps.training.domain.fitting import deserialize
from apps.training.domain.pipeline import predict_latest, train
from tests.unit.training.synthetic import random_walk_candles

BARS = 100_000
THREADS = 2
REPEATS = 3
PREDICTIONS = 500


def _median_seconds(run: Callable[[], object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def _bare_fit() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BARS, 30))
    y = (rng.random(BARS) > 0.5).astype(np.float64)
    params = {
        "tree_method": "hist",
        "max_depth": 6,
        "objective": "binary:logistic",
        "nthread": THREADS,
        "seed": 0,
    }
    xgb.train(params, xgb.DMatrix(x, label=y, nthread=THREADS), num_boost_round=200)


def main() -> None:
    frame = random_walk_candles(BARS, seed=1)
    full_budget = {"n_estimators": 200, "max_depth": 6, "early_stopping_rounds": None}

    bare = _median_seconds(_bare_fit, REPEATS)
    features = _median_seconds(lambda: feature_matrix(frame, CORE_V1), REPEATS)
    pipeline = _median_seconds(lambda: train(frame, "price_prediction", 1, nthread=THREADS), REPEATS)
    budget = _median_seconds(
        lambda: train(frame, "price_prediction", 1, hyperparams=full_budget, nthread=THREADS), REPEATS
    )

    booster = deserialize(train(frame, "price_prediction", 1, nthread=THREADS).model_bytes)
    for _ in range(20):
        predict_latest(booster, frame, CORE_V1)
    predict_ms = 1_000 * _median_seconds(lambda: predict_latest(booster, frame, CORE_V1), PREDICTIONS)

    rows = [
        ("bare xgboost fit: 200 trees, depth 6, 100k x 30, 2 threads", f"{bare:.2f} s", "reference", ""),
        (f"features on {BARS:,} bars ({len(CORE_V1.columns)} columns)", f"{features:.2f} s", "", ""),
        (
            "pipeline, default hyperparams (features, labels, fit + early stop, evaluate, save)",
            f"{pipeline:.2f} s ({pipeline / bare:.2f}x)",
            "< 2x bare",
            "pass" if pipeline < 2 * bare else "FAIL",
        ),
        (
            "pipeline, full budget: 200 trees depth 6, no early stopping",
            f"{budget:.2f} s ({budget / bare:.2f}x)",
            "(information)",
            "",
        ),
        (
            f"predict newest bar (trailing {CORE_V1.warmup + 1} bars, features + inplace_predict)",
            f"{predict_ms:.2f} ms",
            "< 5 ms",
            "pass" if predict_ms < 5 else "FAIL",
        ),
    ]
    print("| benchmark | figure | target | result |")
    print("| --- | --- | --- | --- |")
    for name, figure, target, result in rows:
        print(f"| {name} | {figure} | {target} | {result} |")


if __name__ == "__main__":
    main()
