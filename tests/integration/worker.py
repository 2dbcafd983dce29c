"""Start a real Celery worker process bound to the test database and the configured broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

from workers import app as celery_app
from workers.celery import QUEUES

REPO_ROOT = Path(__file__).resolve().parents[2]


def _database_environment() -> dict[str, str]:
    """Environment variables that point a child process at the database this test uses."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        return {"DATABASE_URL": f"postgresql://{credentials}@{db['HOST']}:{db['PORT']}/{db['NAME']}"}
    return {"DATABASE_URL": "", "SQLITE_PATH": str(db["NAME"])}


def _wait_until_ready(process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited early with code {process.returncode}")
        if celery_app.control.ping(timeout=0.5):
            return
    raise RuntimeError(f"no worker answered a ping within {timeout:.0f}s")


@contextmanager
def running_worker(log_path: Path, timeout: float = 60) -> Iterator[subprocess.Popen]:
    """A `celery -A workers worker` child process serving every queue, stopped on exit."""
    celery_app.control.purge()  # messages left by tests that enqueued without a worker
    env = {
        **os.environ,
        **_database_environment(),
        "CELERY_BROKER_URL": celery_app.conf.broker_url,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }
    command = [sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool", "solo"]
    command += ["--queues", ",".join(QUEUES), "--hostname", f"test-{os.getpid()}@%h", "--loglevel", "INFO"]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_ready(process, timeout)
            yield process
        finally:
            process.terminate()
            process.wait(timeout=30)
