"""Per-request cost against stored size: health and the market API on N candles, 8 concurrent clients.

N candles (``BENCH_HOT_CANDLES``, default 10,000,000: ``BENCH_HOT_INSTRUMENTS`` = 10 instruments of
1M 1m candles each) are stored through the bulk path (``candles_store``: binary COPY, the series'
summary rows, ANALYZE on commit) into a PostgreSQL database of the benchmark's own
(``BENCH_HOT_DATABASE``, default ``bench_hot``, created on ``BENCH_POSTGRES_URL``'s server and
dropped afterwards). A gunicorn server (2 workers x 4 threads) and a Celery worker then serve it,
and 8 client threads, each on a keep-alive connection, send GET /api/health, GET
/api/market/data?limit=1000 and the same with RSI, MACD and BB(20,2), each repeated (as a poller asks)
and each built anew (a new ``end`` every time, so no answer is reused). Before them the worker takes a
health snapshot (celery-beat has one taken every minute in a running system), whose components
health reads back. Redis is ``BENCH_REDIS_URL`` (default database 13 of the local server; nothing
is flushed). The figures should not grow with N:
run ``BENCH_HOT_CANDLES=100000`` and ``1000000`` beside the default to see it.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd

from tests.bench.server import REPO_ROOT, running_system, table

CANDLES = int(os.environ.get("BENCH_HOT_CANDLES", "10000000"))
INSTRUMENTS = int(os.environ.get("BENCH_HOT_INSTRUMENTS", "10"))
ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE = os.environ.get("BENCH_HOT_DATABASE", "bench_hot")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
CLIENTS = 8
REQUESTS_PER_CLIENT = int(os.environ.get("BENCH_HOT_REQUESTS", "50"))
SYMBOL = "HOT{}USDT"

# (name, path, p50 target ms, p95 target ms or None); health also anonymously, as monitors poll it
# (a token's authentication is part of every other row's cost). The market rows repeat one query,
# as a dashboard or a bot polls the newest candles: after the first, its answer is reused until the
# series is written again. Their "built anew" rows give each request a different ``end`` (the same
# 1000 candles' work, never seen before), so that every answer is read, computed and rendered.
ENDPOINTS = [
    ("GET /api/health", "/api/health", 20, 50),
    ("GET /api/health (anonymous)", "/api/health", 20, 50),
    ("GET /api/market/data limit=1000", "/api/market/data?symbol={symbol}&timeframe=1m&limit=1000", 30, None),
    (
        "GET /api/market/data/indicators RSI,MACD,BB(20,2) limit=1000",
        "/api/market/data/indicators?symbol={symbol}&timeframe=1m&indicators=RSI,MACD,BB(20,2)&limit=1000",
        50,
        None,
    ),
    (
        "GET /api/market/data limit=1000, each answer built anew",
        "/api/market/data?symbol={symbol}&timeframe=1m&limit=1000&end={end}",
        None,
        None,
    ),
    (
        "GET /api/market/data/indicators RSI,MACD,BB(20,2) limit=1000, each built anew",
        "/api/market/data/indicators?symbol={symbol}&timeframe=1m&indicators=RSI,MACD,BB(20,2)&limit=1000&end={end}",
        None,
        None,
    ),
]


def database_url(name: str) -> str:
    return urlunsplit(urlsplit(ADMIN_URL)._replace(path=f"/{name}"))


def admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(statement)


def synthetic_candles(rows: int, seed: int) -> pd.DataFrame:
    """A random walk of closed 1m candles ending at the newest closed minute."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, rows)))
    open_ = np.concatenate(([100.0], close[:-1]))
    spread = np.abs(rng.normal(0, 0.0005, rows)) * close
    newest = pd.Timestamp.now(tz="UTC").floor("1min") - pd.Timedelta(minutes=1)
    index = pd.date_range(end=newest, periods=rows, freq="1min", tz="UTC", name="open_time")
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


def load_child() -> None:
    """Store the candles (run in a child process whose environment names the benchmark's database)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
    import django

    django.setup()
    from django.db import connection

    from apps.market.services.candles import candles_store
    from apps.market.services.instruments import instrument_get_or_create

    per_instrument = CANDLES // INSTRUMENTS
    started = time.perf_counter()
    for number in range(INSTRUMENTS):
        instrument = instrument_get_or_create(
            symbol=SYMBOL.format(number), exchange="binance", timeframes=["1m"]
        )
        counts = candles_store(
            instrument=instrument, timeframe="1m", frame=synthetic_candles(per_instrument, number)
        )
        assert counts.inserted == per_instrument, counts
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('market_candle'))")
        size = cursor.fetchone()[0]
    total = per_instrument * INSTRUMENTS
    print(f"{total:,} candles stored in {seconds:.1f} s ({total / seconds:,.0f} rows/s); candle table {size}")
    for row in query_costs():
        print("\t".join(row))


def _median_ms(call: Callable[[], object], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    return float(np.median(samples))


def _execution_ms(sql: str) -> tuple[float, bool]:
    """PostgreSQL's own execution time of ``sql`` (EXPLAIN ANALYZE), and whether it scans the candle table."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        document = cursor.fetchone()[0]
    result = (json.loads(document) if isinstance(document, str) else document)[0]
    nodes, scans = [result["Plan"]], False
    while nodes:
        node = nodes.pop()
        scans |= node["Node Type"] == "Seq Scan" and node.get("Relation Name") == "market_candle"
        nodes.extend(node.get("Plans", []))
    return result["Execution Time"], scans


def query_costs(repeats: int = 20) -> list[tuple[str, ...]]:
    """Each hot read: its wall time in this process and its queries' time inside PostgreSQL (medians);
    beside them, once each, the whole-table queries health and the API used to send."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.market import selectors
    from apps.market.models import Instrument
    from apps.market.queries import parse_indicator_list

    instrument = Instrument.objects.get(symbol=SYMBOL.format(INSTRUMENTS // 2))
    indicators = parse_indicator_list("RSI,MACD,BB(20,2)")
    calls: dict[str, Callable[[], object]] = {
        "health's freshness (newest_candles_by_series)": selectors.newest_candles_by_series,
        "an instrument's timeframes (candle_timeframes)": lambda: selectors.candle_timeframes(
            instrument=instrument
        ),
        "newest 1000 candles (candles_frame)": lambda: selectors.candles_frame(
            instrument=instrument, timeframe="1m", limit=1000
        ),
        "RSI,MACD,BB(20,2) of the newest 1000 (indicator_series)": lambda: selectors.indicator_series(
            instrument=instrument, timeframe="1m", requests=indicators, limit=1000
        ),
    }
    rows = []
    for name, call in calls.items():
        wall = _median_ms(call, repeats)
        with CaptureQueriesContext(connection) as captured:
            call()
        selects = [
            q["sql"] for q in captured.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")
        ]
        measured = [[_execution_ms(sql) for sql in selects] for _ in range(repeats + 1)][1:]  # 1st: warm-up
        database = float(np.median([sum(ms for ms, _ in run) for run in measured]))
        scans = any(scan for run in measured for _, scan in run)
        rows.append((name, f"{wall:.2f}", f"{database:.3f}", str(len(selects)), "yes" if scans else "no"))
    before = {
        "before: MAX(open_time) GROUP BY series, every candle": (
            "SELECT instrument_id, timeframe, MAX(open_time) FROM market_candle GROUP BY 1, 2"
        ),
        "before: DISTINCT timeframe of an instrument's candles": (
            f"SELECT DISTINCT timeframe FROM market_candle WHERE instrument_id = {int(instrument.pk)}"
        ),
    }
    for name, sql in before.items():
        database, scans = _execution_ms(sql)
        rows.append((name, "", f"{database:.3f}", "1", "yes" if scans else "no"))
    return rows


def _load(env: dict[str, str]) -> None:
    child = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_hot_queries", "--load-child"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if child.returncode != 0:
        print(child.stderr[-3000:])
        raise SystemExit(1)
    lines = child.stdout.strip().splitlines()
    print(lines[0], end="\n\n")
    header = ("hot read", "wall ms (in process)", "PostgreSQL ms", "queries", "Seq Scan of candles")
    print(table([tuple(line.split("\t")) for line in lines[1:]], header), end="\n\n")


def measure_concurrently(
    port: int, path: Callable[[], str], headers: dict[str, str], clients: int, requests: int
) -> dict[str, float]:
    """Latencies (ms) of ``clients`` threads, each sending ``requests`` GETs of ``path()`` over its
    own keep-alive connection, all at once."""
    samples: list[float] = []
    statuses: set[int] = set()
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine, seen = [], set()
        start.wait()
        for _ in range(requests):
            target = path()
            began = time.perf_counter()
            conn.request("GET", target, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append((time.perf_counter() - began) * 1000)
            seen.add(response.status)
        conn.close()
        with lock:
            samples.extend(mine)
            statuses.update(seen)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    ordered = np.sort(np.asarray(samples))
    return {
        "p50": float(np.percentile(ordered, 50)),
        "p95": float(np.percentile(ordered, 95)),
        "rate": len(ordered) / elapsed,
        "statuses": ",".join(str(status) for status in sorted(statuses)),
    }


def take_health_snapshot(port: int, headers: dict[str, str], timeout: float = 300) -> float:
    """Ask the worker for a health snapshot through the API and wait until it is stored; seconds taken."""
    began = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/api/health/snapshots", headers=headers)
    url = json.loads(conn.getresponse().read())["url"]
    while time.monotonic() - began < timeout:
        conn.request("GET", url, headers=headers)
        status = json.loads(conn.getresponse().read())["status"]
        if status == "completed":
            conn.close()
            return time.monotonic() - began
        if status == "failed":
            raise RuntimeError(f"the health snapshot {url} failed")
        time.sleep(0.2)
    raise RuntimeError(f"the health snapshot {url} was not taken within {timeout:.0f}s")


def _distinct_ends() -> Callable[[], str]:
    """A source of ``end`` values never asked before (newest candle minus 1, 2, ... hours; safe to
    call from the client threads), each leaving 1000 candles and their indicators' warm-up before it."""
    newest = pd.Timestamp.now(tz="UTC").floor("1min") - pd.Timedelta(minutes=1)
    counter, lock = itertools.count(1), threading.Lock()

    def end() -> str:
        with lock:
            hours = next(counter)
        return (newest - pd.Timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")

    return end


def _target(p50: int | None, p95: int | None) -> str:
    if p50 is None:
        return "(the cost behind the row above)"
    return f"p50 < {p50}" + (f", p95 < {p95}" if p95 else "")


def _verdict(result: dict[str, float], p50: int | None, p95: int | None) -> str:
    if p50 is None:
        return ""
    ok = result["p50"] < p50 and (p95 is None or result["p95"] < p95)
    return "pass" if ok else "FAIL"


def main() -> None:
    if "--load-child" in sys.argv:
        load_child()
        return
    if DATABASE in {"test", "postgres"} or DATABASE.startswith("test_"):
        raise SystemExit(f"refusing to use {DATABASE!r}: the benchmark drops its database afterwards")
    admin(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{DATABASE}"')
    saved = {name: os.environ.get(name) for name in ("DATABASE_URL", "REDIS_URL", "CACHE_KEY_PREFIX")}
    os.environ.update(DATABASE_URL=database_url(DATABASE), REDIS_URL=REDIS_URL, CACHE_KEY_PREFIX="bench-hot")
    rows = []
    try:
        with running_system(prepare=_load, with_token=True, database_url=database_url(DATABASE)) as (
            port,
            token,
        ):
            headers = {"Authorization": f"Token {token}"}
            symbol = SYMBOL.format(INSTRUMENTS // 2)
            time.sleep(2)  # the worker connects before it is asked for the snapshot
            print(f"health snapshot taken by the worker in {take_health_snapshot(port, headers):.1f} s\n")
            ends = _distinct_ends()
            for name, template, p50, p95 in ENDPOINTS:
                headers = {} if "anonymous" in name else {"Authorization": f"Token {token}"}

                def path(template: str = template) -> str:
                    return template.format(symbol=symbol, end=ends() if "{end}" in template else "")

                measure_concurrently(port, path, headers, CLIENTS, 5)  # warm-up: imports, connections
                single = measure_concurrently(port, path, headers, 1, REQUESTS_PER_CLIENT)
                result = measure_concurrently(port, path, headers, CLIENTS, REQUESTS_PER_CLIENT)
                rows.append(
                    (
                        name,
                        f"{single['p50']:.1f}",
                        f"{result['p50']:.1f}",
                        f"{result['p95']:.1f}",
                        f"{result['rate']:.0f}",
                        result["statuses"],
                        _target(p50, p95),
                        _verdict(result, p50, p95),
                    )
                )
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        admin(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    header = (
        f"{CANDLES:,} candles ({INSTRUMENTS} instruments)",
        "1 client p50 ms",
        f"{CLIENTS} clients p50 ms",
        "p95 ms",
        "req/s",
        "status",
        "target ms",
        "result",
    )
    print(table(rows, header))


if __name__ == "__main__":
    main()
