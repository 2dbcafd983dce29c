"""Strategy optimisation through the API, end to end: a 100-combination grid on 100k hourly bars,
POST /api/strategies/optimize until GET says completed, with one Celery worker, two, and four where the
machine has four cores.

Each configuration runs on a scratch system (gunicorn and N workers; SQLite and the filesystem
broker, or a scratch database on DATABASE_URL's server and REDIS_URL when they are set) holding
100,000 synthetic 1h candles. The strategy is an SMA crossover; the grid is 10 fast x 10 slow
periods, walk-forward with 3 folds, cut into chunks of STRATEGY_OPTIMIZE_CHUNK_TRIALS (25) that the
workers share. Each run is timed until its client sees it completed, and until its own
``finished_at``: a client that follows the run with ``GET ...?wait=`` (answered when the run ends), and,
in alternate runs, one that polls every POLL_SECONDS. The worker counts take turns on one system, round
by round, with the engine alone timed in each round (see :func:`bench`). Beside each ratio of workers,
the pure engine's own: the search cut into as many parts run at once in as many processes, which
is what the machine's cores give with no API at all (:func:`engine_scaling`).
"""

from __future__ import annotations

import http.client
import json
import math
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from tests.bench.server import REPO_ROOT, _free_port, _wait_for_http, scratch_database, table

BARS = 100_000
RUNS = 7
TARGET_ONE_WORKER = 4.0
TARGET_SCALING = 0.6  # two workers against one (four against two where there are the cores)
TARGET_ENGINE_SHARE = 0.8
# A client asking ten times a second: on two cores its requests take about a tenth of a core from
# the workers it waits for (measured: gunicorn and PostgreSQL CPU during a two-worker run).
POLL_SECONDS = 0.1
WAIT_SECONDS = 10  # ?wait= of each GET of the waiting client
SYMBOL = "BENCHUSD"
STRATEGY = {
    "name": "Bench SMA Crossover",
    "type": "trend_following",
    "symbol": SYMBOL,
    "timeframe": "1h",
    "parameters": {"fast_period": 10, "slow_period": 50},
    "indicators": ["SMA"],
    "rules": [
        {"condition": "SMA(fast_period) crosses_above SMA(slow_period)", "action": "buy", "priority": 1},
        {"condition": "SMA(fast_period) crosses_below SMA(slow_period)", "action": "sell", "priority": 1},
    ],
}
SPACE = {"fast_period": {"min": 5, "max": 50, "step": 5}, "slow_period": {"min": 60, "max": 240, "step": 20}}


def synthetic_hours(rows: int, seed: int = 11) -> pd.DataFrame:
    """A seeded random walk of hourly candles from 2000-01-01 UTC."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, rows)))
    open_ = np.concatenate(([100.0], close[:-1]))
    spread = np.abs(rng.normal(0, 0.004, rows)) * close
    index = pd.date_range("2000-01-01", periods=rows, freq="1h", tz="UTC", name="open_time")
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


def store_candles() -> None:
    """Runs in a child process with Django set up on the scratch system's database."""
    import django

    django.setup()
    from apps.market.services.candles import candles_store
    from apps.market.services.instruments import instrument_get_or_create

    instrument = instrument_get_or_create(symbol=SYMBOL, exchange="bench", timeframes=["1h"])
    candles_store(instrument=instrument, timeframe="1h", frame=synthetic_hours(BARS))


@dataclass(frozen=True)
class System:
    """A running scratch system: its server's port, an API token and the environment of its processes."""

    port: int
    token: str
    env: dict[str, str]

    @contextmanager
    def more_workers(self, count: int) -> Iterator[None]:
        """``count`` more Celery workers for the time of the block, the first always running."""
        processes = [_worker(self.env, f"extra{number}") for number in range(count)]
        try:
            if processes:
                _wait_for_workers(self.env, 1 + count)
            yield
        finally:
            _stop(processes)


def _worker(env: dict[str, str], name: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool", "solo"]
    command += ["--hostname", f"{name}@%h", "--loglevel", "WARNING", "--without-gossip"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, **quiet)


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=30)


@contextmanager
def running_system() -> Iterator[System]:
    """A gunicorn server and one Celery worker on a scratch database with the candles stored."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-strategies-") as var_dir,
        scratch_database("strategies") as database_url,
    ):
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "VAR_DIR": var_dir,
            "ENVIRONMENT": "development",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "tradingsite.settings",
            "API_THROTTLE_USER": "100000/min",  # the poll loop asks often
        }
        manage = [sys.executable, "manage.py"]
        run = {"cwd": REPO_ROOT, "env": env, "check": True}
        subprocess.run([*manage, "migrate", "--noinput", "-v0"], **run)
        subprocess.run([sys.executable, "-m", "tests.bench.bench_strategies_api", "--store-candles"], **run)
        token = subprocess.run(
            [*manage, "api_token", "bench", "--create"], **run, capture_output=True, text=True
        ).stdout.strip()
        port = _free_port()
        web = [sys.executable, "-m", "gunicorn", "tradingsite.wsgi", "-b", f"127.0.0.1:{port}"]
        web += ["--workers", "2", "--threads", "4"]  # as the Procfile
        processes = [subprocess.Popen(web, cwd=REPO_ROOT, env=env, stderr=subprocess.DEVNULL)]
        processes.append(_worker(env, "bench"))
        try:
            _wait_for_http(port, "/api/health")
            _wait_for_workers(env, 1)
            yield System(port, token, env)
        finally:
            _stop(processes)


def _wait_for_workers(env: dict[str, str], count: int, timeout: float = 60) -> None:
    ping = [sys.executable, "-m", "celery", "-A", "workers", "inspect", "ping", "--timeout", "1", "--json"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = subprocess.run(ping, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
        if answer.returncode == 0 and answer.stdout.count("pong") >= count:
            return
    raise RuntimeError(f"{count} worker(s) did not answer within {timeout:.0f}s")


class Api:
    def __init__(self, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        self.connection.request(method, path, json.dumps(body) if body else None, self.headers)
        response = self.connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")


@dataclass(frozen=True)
class Timing:
    """Seconds from the POST until the poll saw the run completed, and until it completed (its
    ``finished_at``; the same machine's clock): the difference is the poll's interval and request."""

    seen: float
    completed: float


def optimise(api: Api, strategy_id: str, *, poll: bool = False) -> tuple[Timing, dict]:
    """How long from the POST until the run completed and until its client saw it (waiting with
    ``?wait=``, or polling every POLL_SECONDS), and the finished run."""
    request = {"strategy_id": strategy_id, "space": SPACE, "objective": "sharpe_ratio", "folds": 3}
    posted = time.time()
    status, accepted = api.call("POST", "/api/strategies/optimize", request)
    assert status == 202, accepted
    url = accepted["url"] if poll else f"{accepted['url']}?wait={WAIT_SECONDS}"
    while True:
        status, run = api.call("GET", url)
        if run["status"] in ("completed", "failed"):
            break
        if poll:
            time.sleep(POLL_SECONDS)
    seen = time.time() - posted
    assert run["status"] == "completed", run["error"]
    assert len(run["trials"]) == 100 and run["bars"] == BARS, (len(run["trials"]), run["bars"])
    completed = datetime.fromisoformat(run["finished_at"]).timestamp() - posted
    return Timing(seen=seen, completed=completed), run


Rounds = dict[int, list[tuple[Timing, Timing]]]


def bench(counts: tuple[int, ...], engine: Callable[[], float]) -> tuple[Rounds, list[float]]:
    """RUNS rounds on one system; in each, the search by the ``engine`` alone in this process (the
    system idle), then for every worker count in turn an optimisation followed with ``?wait=`` and
    one polled. The machine's pace drifts over minutes, so the engine, one worker and two are
    compared round by round rather than block against block. The extra workers of a round are
    started for it, and read the candles in an untimed run (as the first worker did in the warm-up
    and the engine did in its first, untimed run)."""
    rounds: Rounds = {workers: [] for workers in counts}
    engine_times: list[float] = []
    engine()  # warm-up
    with running_system() as system:
        api = Api(system.port, system.token)
        status, strategy = api.call("POST", "/api/strategies", STRATEGY)
        assert status == 201, strategy
        strategy_id = strategy["strategy_id"]
        for poll in (False, True):  # warm-up: the worker's imports and first read of the candles
            optimise(api, strategy_id, poll=poll)
        for number in range(RUNS):
            engine_times.append(engine())
            for workers in counts:
                with system.more_workers(workers - 1):
                    api = Api(system.port, system.token)  # the server closed the idle one meanwhile
                    if workers > 1:
                        optimise(api, strategy_id)
                    waited, polled = (optimise(api, strategy_id, poll=poll)[0] for poll in (False, True))
                rounds[workers].append((waited, polled))
            seen = ", ".join(f"{n}: {rounds[n][-1][0].seen:.2f}/{rounds[n][-1][1].seen:.2f}" for n in counts)
            alone = f"engine {engine_times[-1]:.2f} s"
            print(f"round {number + 1}, {alone}, seen waiting/polling, by workers: {seen} s", flush=True)
    return rounds, engine_times


def _median(timings: list[Timing]) -> Timing:
    return Timing(
        seen=statistics.median(t.seen for t in timings),
        completed=statistics.median(t.completed for t in timings),
    )


def _ratio(rounds: Rounds, more: int, fewer: int, client: int, field: str) -> float:
    """The median over the rounds of ``more`` workers' time against ``fewer``'s in the same round."""
    pairs = zip(rounds[more], rounds[fewer], strict=True)
    return statistics.median(getattr(m[client], field) / getattr(f[client], field) for m, f in pairs)


def _engine_searches(*shares: tuple[int, int]) -> list[Callable[[], float]]:
    """Timers of the same search by the pure engine, with the whole-window statistics the workers keep
    for the robustness block: one per ``(part, parts)`` share, over that part of ``parts`` equal parts
    of the trials; they share one frame."""
    from apps.strategies.engine.optimize import Window, chunk, evaluate_chunk, grid, walk_forward_folds
    from apps.strategies.engine.robustness import window_statistics

    frame, folds = synthetic_hours(BARS), walk_forward_folds(BARS, 3)
    trials = chunk(grid(SPACE), 100)[0]
    hook = window_statistics(frame, window=Window(0, BARS))

    def timer(part: int, parts: int) -> Callable[[], float]:
        mine = trials[part * len(trials) // parts : (part + 1) * len(trials) // parts]

        def timed() -> float:
            started = time.perf_counter()
            evaluate_chunk(frame, STRATEGY["rules"], STRATEGY["parameters"], mine, folds, whole_window=hook)
            return time.perf_counter() - started

        return timed

    return [timer(part, parts) for part, parts in shares]


def _engine_part(part: int, parts: int, start: Any) -> list[tuple[float, float]]:
    """In one of ``parts`` processes: per run, the whole search alone in the first process while the
    others wait, then this process's part with all the others' at once."""
    whole, mine = _engine_searches((0, 1), (part, parts))
    if part == 0:
        whole()  # warm-up
    mine()
    timings = []
    for _ in range(RUNS):
        start.wait()
        alone = whole() if part == 0 else math.nan
        start.wait()  # every process starts its part together
        timings.append((alone, mine()))
    return timings


def engine_scaling(processes: int) -> float:
    """The pure engine's own scaling on this machine: the search cut into ``processes`` equal parts
    run at once in as many processes against the whole search in one of them, run by run; the median
    over RUNS of the slowest part's time against the whole's. What the API's ratio of workers could
    reach with no serial step, database, broker or web server at all."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(processes) as pool:
        start = manager.Barrier(processes)
        parts = pool.starmap(_engine_part, [(part, processes, start) for part in range(processes)])
    runs = zip(*parts, strict=True)
    return statistics.median(max(part for _, part in run) / run[0][0] for run in runs)


def main() -> None:
    if "--store-candles" in sys.argv:
        store_candles()
        return
    load = os.getloadavg()[0]
    counts = (1, 2, 4) if (os.cpu_count() or 1) >= 4 else (1, 2)
    engine_parts = {n: engine_scaling(n) for n in counts[1:]}
    rounds, engine_times = bench(counts, _engine_searches((0, 1))[0])
    engine = statistics.median(engine_times)
    pairs = list(zip(engine_times, (waited for waited, _ in rounds[1]), strict=True))
    share = {  # the engine's time against one worker's, round by round
        field: statistics.median(alone / getattr(waited, field) for alone, waited in pairs)
        for field in ("seen", "completed")
    }
    api = {n: _median([waited for waited, _ in rounds[n]]) for n in counts}
    polled = {n: _median([polled for _, polled in rounds[n]]) for n in counts}
    backend = "PostgreSQL + Redis" if os.environ.get("DATABASE_URL") else "SQLite + filesystem broker"
    print(f"\nPOST /api/strategies/optimize until GET ?wait={WAIT_SECONDS} says completed ({backend},")
    print(f"medians of {RUNS} rounds; in brackets until the run's finished_at; ratios are the median of")
    print(f"each round's; the polling client asks every {POLL_SECONDS:g} s, in the same rounds)")
    end_load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, load average {load:.1f} when it started, {end_load:.1f} at the end\n")

    def verdict(ok: bool) -> str:
        return "pass" if ok else "FAIL"

    rows = [
        (
            "the same grid, engine alone in one process (no API, database or broker; one run a round)",
            f"{engine:.2f} s",
            "",
            "",
        ),
        (
            "100-combination grid, 100k 1h bars, 3 folds, 1 worker: seen by the client (completed)",
            f"{api[1].seen:.2f} s ({api[1].completed:.2f} s)",
            f"< {TARGET_ONE_WORKER:g} s",
            verdict(api[1].seen < TARGET_ONE_WORKER),
        ),
        (
            "the engine's share of the 1-worker API time (of the time to completion), round by round",
            f"{share['seen']:.0%} ({share['completed']:.0%})",
            f"> {TARGET_ENGINE_SHARE:.0%}",
            verdict(share["seen"] > TARGET_ENGINE_SHARE),
        ),
    ]
    for more, fewer in zip(counts[1:], counts, strict=False):
        ratio = _ratio(rounds, more, fewer, 0, "seen")
        rows.append(
            (
                f"the same with {more} workers: seen by the client (completed)",
                f"{api[more].seen:.2f} s, {ratio:.2f}x of {fewer} "
                f"({api[more].completed:.2f} s, {_ratio(rounds, more, fewer, 0, 'completed'):.2f}x)",
                f"< {TARGET_SCALING:g}x of {fewer}",
                verdict(ratio < TARGET_SCALING),
            )
        )
        rows.append(
            (
                f"  the engine alone in {more} processes at once, 1/{more} of the trials each: "
                "this machine's own scaling",
                f"{engine_parts[more]:.2f}x of the whole search in 1 process (run by run)",
                "",
                "",
            )
        )
    for workers in counts:
        scaling = f", {_ratio(rounds, workers, 1, 1, 'seen'):.2f}x of 1" if workers > 1 else ""
        rows.append(
            (
                f"{workers} worker(s), a client polling every {POLL_SECONDS:g} s instead: seen (completed)",
                f"{polled[workers].seen:.2f} s ({polled[workers].completed:.2f} s){scaling}",
                "",
                "",
            )
        )
    print(table(rows, ("benchmark", "figure", "target", "result")))


if __name__ == "__main__":
    main()
