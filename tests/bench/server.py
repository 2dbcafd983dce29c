"""Start the real system (gunicorn and a Celery worker) on a scratch database for API benchmarks."""

from __future__ import annotations

import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_http(port: int, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not answer {path} within {timeout}s")


@contextmanager
def scratch_database(purpose: str) -> Iterator[str]:
    """The DATABASE_URL a benchmark migrates and loads its data into: a new database on the
    PostgreSQL server DATABASE_URL names, dropped afterwards, never the database itself (a user's
    DATABASE_URL may name their real one); without a PostgreSQL DATABASE_URL, "" (SQLite under the
    benchmark's VAR_DIR)."""
    server = os.environ.get("DATABASE_URL", "")
    if not server.startswith(("postgres://", "postgresql://")):
        yield ""
        return
    import psycopg

    name = f"bench_{purpose}_{os.getpid()}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def running_system(
    prepare: Callable[[dict[str, str]], None] | None = None,
    with_token: bool = False,
    database_url: str | None = None,
) -> Iterator[int | tuple[int, str]]:
    """Yield the port of a gunicorn server (2 workers) with a Celery worker, on embedded defaults
    unless DATABASE_URL/REDIS_URL are set (then on a :func:`scratch_database` of that server, or on
    ``database_url``, which the caller owns); ``prepare(env)`` may load data before it starts.
    With ``with_token`` it yields ``(port, token)`` for an API user."""
    with tempfile.TemporaryDirectory(prefix="bench-") as var_dir, ExitStack() as stack:
        if database_url is None:
            database_url = stack.enter_context(scratch_database("system"))
        # Latency is measured here, not the throttle: one client sends hundreds of requests a minute.
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "VAR_DIR": var_dir,
            "ENVIRONMENT": "development",
            "LOG_LEVEL": "WARNING",
            "API_THROTTLE_USER": "1000000/min",
            "API_THROTTLE_ANON": "1000000/min",
        }
        env.pop("DJANGO_SETTINGS_MODULE", None)
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=REPO_ROOT, env=env, check=True)
        if prepare:
            prepare(env)
        token = ""
        if with_token:
            token = subprocess.run(
                [*manage, "api_token", "bench", "--create"],
                cwd=REPO_ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        port = _free_port()
        web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "tradingsite.wsgi",
                "-b",
                f"127.0.0.1:{port}",
                "-w",
                "2",
                "--threads",
                "4",
            ],
            cwd=REPO_ROOT,
            env=env,
            stderr=subprocess.DEVNULL,
        )
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "WARNING",
            ],
            cwd=REPO_ROOT,
            env=env,
            stderr=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        try:
            _wait_for_http(port, "/api/health")
            yield (port, token) if with_token else port
        finally:
            for process in (web, worker):
                process.terminate()
            for process in (web, worker):
                process.wait(timeout=30)


def measure(port: int, path: str, requests: int, headers: dict[str, str] | None = None) -> dict[str, float]:
    """Latency in ms of ``requests`` sequential GETs over one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        response.read()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "median": statistics.median(samples),
        "p95": samples[int(0.95 * (len(samples) - 1))],
        "p99": samples[int(0.99 * (len(samples) - 1))],
        "status": response.status,
    }


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
