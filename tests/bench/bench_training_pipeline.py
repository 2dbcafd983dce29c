"""Training end to end through Django: candles loaded from the database, features, fit, evaluation and
the artifact saved to storage, against a bare xgboost fit; and newest-bar prediction through the
selector, the API in-process, and the API over HTTP (gunicorn).

Run from the repository root: ``python -m tests.bench.bench_training_pipeline``. The database part
runs in a child process on a scratch SQLite database in a temporary folder. Figures are medians;
the machine may be shared, so read them as indicative.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta

import numpy as np
import xgboost as xgb

from tests.bench.server import REPO_ROOT, measure, running_system, table

BARS = 100_000
THREADS = 2
REPEATS = 3
PREDICTIONS = 500
FIXTURE = REPO_ROOT / "fixtures" / "market" / "btc_usd_coinbase_1h_2017-07-01_2019-10-17.csv"
PREDICT_TARGET_MS = 5


def _median_seconds(
    run: Callable[[], object], repeats: int, before: Callable[[], object] = lambda: None
) -> float:
    timings = []
    for _ in range(repeats):
        before()
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def _bare_fit() -> None:
    """The reference of the issue: 200 trees of depth 6 on 100k rows x 30 features, 2 threads."""
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


def _verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def database_rows() -> list[tuple[str, ...]]:
    """Runs in the child process, with Django set up on the scratch database."""
    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command
    from django.test import Client
    from knox.models import AuthToken

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from apps.core import clock
    from apps.market import selectors as market
    from apps.market.services.candles import candles_store
    from apps.market.services.instruments import instrument_get_or_create
    from apps.training import selectors
    from apps.training.domain.features import CORE_V1
    from apps.training.services.model_training import model_train, model_train_request, training_spec_build
    from tests.unit.training.synthetic import random_walk_candles

    instrument = instrument_get_or_create(symbol="BENCHUSDT", exchange="bench", timeframes=["1h"])
    frame = random_walk_candles(BARS + CORE_V1.warmup, seed=1)
    # The synthetic hours run past today; only closed candles are stored, so replay the moment the
    # last one closed.
    with clock.replaying(frame.index[-1].to_pydatetime() + timedelta(hours=1, minutes=1)):
        candles_store(instrument=instrument, timeframe="1h", frame=frame)

    def train(hyperparameters: dict | None = None) -> object:
        spec = training_spec_build(
            symbol="BENCHUSDT",
            exchange="bench",
            timeframe="1h",
            model_type="price_prediction",
            lookback_period=BARS,
            hyperparameters=hyperparameters,
        )
        model = model_train(model_pk=model_train_request(spec=spec).pk)
        assert model is not None and model.stage == "candidate", model and model.error
        return model

    full_budget = {"n_estimators": 200, "max_depth": 6, "early_stopping_rounds": None}
    load = _median_seconds(
        lambda: market.candles_frame(instrument=instrument, timeframe="1h", limit=BARS + CORE_V1.warmup),
        REPEATS,
    )
    # Interleaved, so a shared machine's changing load weighs on the reference and the pipeline alike.
    runs = {"bare": _bare_fit, "pipeline": train, "budget": lambda: train(full_budget)}
    timings: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(REPEATS):
        for name, run in runs.items():
            timings[name].append(_median_seconds(run, 1))
    bare, pipeline, budget = (statistics.median(timings[name]) for name in runs)

    model = train()
    for _ in range(20):
        selectors.model_prediction(model=model)

    def predict() -> object:
        return selectors.model_prediction(model=model)

    cold_ms = 1000 * _median_seconds(predict, PREDICTIONS, before=cache.clear)
    warm_ms = 1000 * _median_seconds(predict, PREDICTIONS)

    user = get_user_model().objects.create_user(username="bench")
    _, token = AuthToken.objects.create(user=user)
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    path = f"/api/training/models/{model.model_id}/predict"
    assert client.get(path).status_code == 200
    api_ms = 1000 * _median_seconds(lambda: client.get(path), PREDICTIONS)

    return [
        ("bare xgboost fit: 200 trees, depth 6, 100k x 30, 2 threads", f"{bare:.2f} s", "reference", ""),
        (
            f"load {BARS + CORE_V1.warmup:,} candles from the database",
            f"{load:.2f} s",
            "(part of the pipeline)",
            "",
        ),
        (
            "pipeline end to end, default hyperparams: load from DB, features, fit + early stop, evaluate, "
            "save artifact + registry row",
            f"{pipeline:.2f} s ({pipeline / bare:.2f}x)",
            "< 2x bare",
            _verdict(pipeline < 2 * bare),
        ),
        (
            "pipeline end to end, full budget: 200 trees depth 6, no early stopping",
            f"{budget:.2f} s ({budget / bare:.2f}x)",
            "(information)",
            "",
        ),
        (
            f"predict newest bar, first request for the bar: selectors.model_prediction "
            f"(newest time, {CORE_V1.warmup + 1} candles from the DB, features, predict)",
            f"{cold_ms:.2f} ms",
            f"< {PREDICT_TARGET_MS} ms",
            _verdict(cold_ms < PREDICT_TARGET_MS),
        ),
        (
            "predict newest bar, later requests for the same bar (newest time + cache hit)",
            f"{warm_ms:.2f} ms",
            f"< {PREDICT_TARGET_MS} ms",
            _verdict(warm_ms < PREDICT_TARGET_MS),
        ),
        (
            "predict newest bar: GET .../predict in-process (token auth, DRF, JSON; cache hit)",
            f"{api_ms:.2f} ms",
            "(information)",
            "",
        ),
    ]


def _prepare_http(env: dict[str, str]) -> None:
    manage = [sys.executable, "manage.py"]
    train = ["--model-type", "price_prediction", "--lookback", "5000"]
    for command in (
        ["import_candles", str(FIXTURE), "--symbol", "BTCUSD", "--timeframe", "1h", "--exchange", "coinbase"],
        ["train_model", "--symbol", "BTCUSD", "--timeframe", "1h", *train],
    ):
        subprocess.run([*manage, *command], cwd=REPO_ROOT, env=env, check=True, capture_output=True)


def http_row() -> tuple[str, ...]:
    with running_system(prepare=_prepare_http, with_token=True) as (port, token):
        headers = {"Authorization": f"Token {token}"}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/api/training/models?limit=1", headers=headers)
        model_id = json.loads(conn.getresponse().read())["results"][0]["model_id"]
        path = f"/api/training/models/{model_id}/predict"
        measure(port, path, 20, headers)
        result = measure(port, path, PREDICTIONS, headers)
        assert result["status"] == 200, result
    return (
        f"predict newest bar: GET .../predict over HTTP to gunicorn, cache hit "
        f"({PREDICTIONS} requests; p95 {result['p95']:.1f} ms)",
        f"{result['median']:.2f} ms",
        "(information)",
        "",
    )


def main() -> None:
    if "--database-child" in sys.argv:
        for row in database_rows():
            print("\t".join(row))
        return
    with tempfile.TemporaryDirectory(prefix="bench-training-") as var_dir:
        env = {**os.environ, "VAR_DIR": var_dir, "ENVIRONMENT": "development", "LOG_LEVEL": "WARNING"}
        env |= {"DATABASE_URL": "", "DJANGO_SETTINGS_MODULE": "tradingsite.settings"}
        child = subprocess.run(
            [sys.executable, "-m", "tests.bench.bench_training_pipeline", "--database-child"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
    if child.returncode != 0:
        print(child.stderr[-3000:])
        raise SystemExit(1)
    rows = [tuple(line.split("\t")) for line in child.stdout.strip().splitlines()]
    rows.append(http_row())
    print(table(rows, ("benchmark", "figure", "target", "result")))


if __name__ == "__main__":
    main()
