"""Market benchmarks: 1M candles upserted into the database, and the market API against a live server."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

from tests.bench.server import REPO_ROOT, measure, running_system, scratch_database, table

ROWS = 1_000_000
INGEST_TARGET = 200_000  # rows per second


def synthetic_candles(rows: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, rows)))
    open_ = np.concatenate(([100.0], close[:-1]))
    spread = np.abs(rng.normal(0, 0.001, rows)) * close
    index = pd.date_range("2000-01-01", periods=rows, freq="1min", tz="UTC", name="open_time")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.gamma(2.0, 5.0, rows),
        },
        index=index,
    )


def bench_ingestion() -> tuple[str, ...]:
    """Runs in a child process with Django set up against DATABASE_URL (PostgreSQL for the target)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from apps.market.models import Candle, Instrument
    from apps.market.services.candles import candles_store
    from apps.market.services.instruments import instrument_get_or_create

    frame = synthetic_candles(ROWS)
    instrument = instrument_get_or_create(symbol="BENCHUSDT", exchange="bench")
    Candle.objects.filter(instrument=instrument).delete()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # earlier runs' deleted rows must not slow this one down
            cursor.execute("VACUUM market_candle")
    started = time.perf_counter()
    first = candles_store(instrument=instrument, timeframe="1m", frame=frame)
    insert_seconds = time.perf_counter() - started
    started = time.perf_counter()
    again = candles_store(instrument=instrument, timeframe="1m", frame=frame)
    again_seconds = time.perf_counter() - started
    Instrument.objects.filter(pk=instrument.pk).delete()
    assert first.inserted == ROWS and again.unchanged == ROWS
    rate = ROWS / insert_seconds
    return (
        f"upsert {ROWS:,} new candles ({connection.vendor})",
        f"{insert_seconds:.2f} s = {rate:,.0f} rows/s",
        f"≥ {INGEST_TARGET:,} rows/s",
        "pass" if rate >= INGEST_TARGET else "FAIL",
    ), (
        f"re-upsert the same {ROWS:,} (all unchanged)",
        f"{again_seconds:.2f} s = {ROWS / again_seconds:,.0f} rows/s",
        "",
        "",
    )


def _load_demo(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "load_demo_data"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def main() -> None:
    if "--ingestion-child" in sys.argv:
        for row in bench_ingestion():
            print("\t".join(row))
        return
    with (
        tempfile.TemporaryDirectory(prefix="bench-market-") as var_dir,
        scratch_database("market") as database_url,
    ):
        child = subprocess.run(
            [sys.executable, "-m", "tests.bench.bench_market", "--ingestion-child"],
            cwd=REPO_ROOT,
            env={**os.environ, "DATABASE_URL": database_url, "VAR_DIR": var_dir},
            capture_output=True,
            text=True,
        )
    if child.returncode != 0:
        print(child.stderr[-2000:])
        raise SystemExit(1)
    rows = [tuple(line.split("\t")) for line in child.stdout.strip().splitlines()]
    print(table(rows, ("benchmark", "figure", "target", "result")))
    print()
    print(api_table())


def api_table() -> str:
    paths = {
        "GET /api/market/data?limit=1000": "/api/market/data?symbol=BTCUSD&timeframe=1h&limit=1000",
        "GET /api/market/data/indicators (RSI,MACD,BB) limit=1000": (
            "/api/market/data/indicators?symbol=BTCUSD&timeframe=1h&indicators=RSI,MACD,BB(20,2)&limit=1000"
        ),
    }
    results = []
    with running_system(prepare=_load_demo, with_token=True) as (port, token):
        headers = {"Authorization": f"Token {token}"}
        for name, path in paths.items():
            measure(port, path, 10, headers)
            result = measure(port, path, 200, headers)
            assert result["status"] == 200, result
            results.append((name, f"{result['median']:.1f}", f"{result['p95']:.1f}", f"{result['p99']:.1f}"))
    return table(results, ("endpoint (200 requests, one keep-alive client)", "median ms", "p95 ms", "p99 ms"))


if __name__ == "__main__":
    main()
