"""Real processes to break: a Redis of the test's own, a TCP proxy that can cut a connection, and
Celery workers and beats started as the Procfile starts them, pointed at them."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from django.db import connection

from workers.celery import QUEUES

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[2]
# Short leases and a fast sweeper, so a recovery takes seconds instead of minutes; the same
# mechanism as production's 60 s lease and 60 s sweep.
FAST_RECOVERY = {
    "JOB_LEASE_SECONDS": "6",
    "JOB_RESEND_AFTER_SECONDS": "5",
    "JOB_SWEEP_INTERVAL_SECONDS": "2",
    "JOB_DATABASE_RETRY_SECONDS": "30",
    "BEAT_LEADER_LEASE_SECONDS": "6",
    "CELERY_TASK_MAX_ATTEMPTS": "3",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> float:
    """Poll ``condition`` until it holds; return the seconds it took, or fail naming ``what``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def wait_for(produce: Callable[[], T | None], timeout: float, what: str, every: float = 0.05) -> T:
    """Poll ``produce`` until it returns something; return that, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = produce()
        if value is not None:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class RedisServer:
    """A redis-server on its own port that keeps nothing on disk: a restart loses every message."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", str(self.directory)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, 10, f"redis on port {self.port}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; ``cut()`` resets every connection and refuses new ones
    until ``restore()``, as a network failure between a worker and its database does."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._stopped = threading.Event()

    def start(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._listener.settimeout(0.2)
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed by cut()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        sockets = [client, upstream]
        try:
            while True:
                readable, _, _ = select.select(sockets, [], [], 0.5)
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is client else client).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in sockets:
                sock.close()

    def cut(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            for sock in (client, upstream):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    sock.close()  # linger 0: a reset, as a dropped link looks to both ends
                except OSError:
                    pass

    def restore(self) -> None:
        self.start()

    def stop(self) -> None:
        self._stopped.set()
        self.cut()


def database_url(port: int | None = None) -> str:
    """The test database's URL, optionally through another port (a proxy)."""
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgresql://{credentials}@{db['HOST']}:{port or db['PORT']}/{db['NAME']}"


class CeleryProcess:
    """``celery -A workers worker`` or ``beat``, with its own log file, in its own process group."""

    def __init__(self, kind: str, log: Path, *, broker: str, database: str, name: str = "") -> None:
        self.kind, self.log, self.name = kind, log, name or kind
        self.env = {
            **os.environ,
            **FAST_RECOVERY,
            "DATABASE_URL": database,
            "REDIS_URL": broker,
            "CELERY_BROKER_URL": broker,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PYTHONUNBUFFERED": "1",
        }
        self.process: subprocess.Popen | None = None

    def start(self, *extra: str) -> CeleryProcess:
        command = [sys.executable, "-m", "celery", "-A", "workers", self.kind, "--loglevel", "INFO"]
        if self.kind == "worker":
            command += ["--queues", ",".join(QUEUES), "--hostname", f"{self.name}-{os.getpid()}@%h"]
            command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        command += list(extra)
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def wait_for_log(self, pattern: str, timeout: float) -> float:
        return wait_until(
            lambda: re.search(pattern, self.text()) is not None, timeout, f"{self.name}: {pattern}"
        )

    def kill(self) -> None:
        """kill -9 of the main process alone (its pool children are left to notice)."""
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def pool_children(worker_pid: int) -> list[int]:
    """Pids of a worker's pool processes, from /proc."""
    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except (OSError, ValueError):
            continue
        if fields.get("PPid", "").strip() == str(worker_pid):
            children.append(int(status.parent.name))
    return children


def finishes(logs: list[str], model: str) -> Counter[int]:
    """How many times each job of ``model`` was finished (completed or failed) according to the logs:
    ``apps.core.jobs`` logs a line only when its claim-checked update won."""
    pattern = re.compile(rf"{model} (\d+) (?:completed|failed) \(attempt \d+\)")
    return Counter(int(match) for text in logs for match in pattern.findall(text))
