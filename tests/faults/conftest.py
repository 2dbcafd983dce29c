"""Fault-injection fixtures: a stack of real processes (own Redis, workers, beats) around the test
database, with backtests to run on the shipped BTCUSD history.

These tests need PostgreSQL (a TCP proxy stands between a worker and it); on the embedded SQLite
defaults they are deselected, with a line saying so (tests/conftest.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from apps.core.models import JobStatus
from apps.market.services.candles import candles_import_file
from apps.strategies.models import Backtest, Strategy, StrategyStatus
from apps.strategies.services.backtests import backtest_create
from apps.strategies.services.strategies import strategy_create
from tests.faults.harness import CeleryProcess, RedisServer, TcpProxy, database_url, finishes, wait_until
from workers.celery import app as celery_app

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "market"
BTC_HOURLY = FIXTURES / "btc_usd_coinbase_1h_2017-07-01_2019-10-17.csv"


class Stack:
    """The processes of one fault test; everything it started is killed at the end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.redis = RedisServer(directory)
        self.processes: list[CeleryProcess] = []
        self.proxies: list[TcpProxy] = []

    def worker(self, name: str, *, concurrency: int = 2, database: str | None = None) -> CeleryProcess:
        process = CeleryProcess(
            "worker",
            self.directory / f"{name}.log",
            broker=self.redis.url,
            database=database or database_url(),
            name=name,
        )
        self.processes.append(process.start("--pool", "prefork", "--concurrency", str(concurrency)))
        process.wait_for_log(r"ready\.", timeout=60)
        return process

    def beat(self, name: str = "beat") -> CeleryProcess:
        process = CeleryProcess(
            "beat", self.directory / f"{name}.log", broker=self.redis.url, database=database_url()
        )
        self.processes.append(process.start())
        return process

    def proxy_to_database(self) -> TcpProxy:
        db = connection.settings_dict
        proxy = TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
        proxy.start()
        self.proxies.append(proxy)
        return proxy

    def send(self, task: str, args: list[object]) -> None:
        """Publish a message to this stack's Redis, as an API view does to the configured broker."""
        with celery_app.connection_for_write(self.redis.url) as conn:
            celery_app.send_task(task, args=args, connection=conn)

    def logs(self) -> list[str]:
        return [process.text() for process in self.processes]

    def close(self) -> None:
        for process in self.processes:
            process.stop()
        for proxy in self.proxies:
            proxy.stop()
        self.redis.stop()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(tmp_path)
    stack.redis.start()
    try:
        yield stack
    finally:
        stack.close()


@pytest.fixture
def strategy(transactional_db) -> Strategy:
    """The brief's RSI strategy on the shipped BTCUSD 1h history (20,111 candles); its instrument is
    inactive so that no scheduled analysis tries to reach an exchange during the test."""
    instrument = candles_import_file(
        path=BTC_HOURLY, symbol="BTCUSD", timeframe="1h", exchange="coinbase"
    ).instrument
    instrument.active = False
    instrument.save(update_fields=["active"])
    return strategy_create(
        name="RSI Mean Reversion",
        type="mean_reversion",
        instrument=instrument,
        timeframe="1h",
        parameters={"rsi_period": 14, "stop_loss_pct": 0.02, "take_profit_pct": 0.05},
        indicators=["RSI"],
        rules=[
            {"condition": "RSI(rsi_period) < 30", "action": "buy", "priority": 1},
            {"condition": "RSI(rsi_period) > 70", "action": "sell", "priority": 1},
        ],
        status=StrategyStatus.DRAFT,
    )


def queue_backtests(stack: Stack, strategy: Strategy, count: int) -> list[int]:
    """``count`` accepted backtests over the whole history, each committed and then sent."""
    ids = []
    for _ in range(count):
        backtest = backtest_create(
            strategy=strategy, start=datetime(2017, 7, 1, tzinfo=UTC), end=datetime(2019, 10, 17, tzinfo=UTC)
        )
        stack.send("strategies.backtest_run", [backtest.pk])
        Backtest.objects.filter(pk=backtest.pk).update(dispatched_at=timezone.now(), dispatches=1)
        ids.append(backtest.pk)
    return ids


def unfinished(ids: list[int]) -> int:
    return Backtest.objects.filter(pk__in=ids, status__in=(JobStatus.PENDING, JobStatus.RUNNING)).count()


def wait_all_finished(ids: list[int], timeout: float) -> float:
    return wait_until(lambda: unfinished(ids) == 0, timeout, f"{len(ids)} backtests to finish", every=0.5)


def outcome(stack: Stack, ids: list[int]) -> dict[str, object]:
    """What happened to the backtests: statuses, attempts and how often each was finished."""
    rows = list(Backtest.objects.filter(pk__in=ids).values("pk", "status", "attempts", "error"))
    finished = finishes(stack.logs(), "Backtest")
    return {
        "completed": sum(row["status"] == JobStatus.COMPLETED for row in rows),
        "failed": [row for row in rows if row["status"] == JobStatus.FAILED],
        "retried": sum(row["attempts"] > 1 for row in rows),
        "finished_twice": sorted(pk for pk in ids if finished[pk] > 1),
        "never_finished_in_logs": sorted(pk for pk in ids if finished[pk] == 0),
    }


def report(name: str, figures: dict[str, object]) -> None:
    """Print the figures of a fault test (``pytest -s`` shows them; CI's log keeps them)."""
    print(f"\nFAULT {name}: {json.dumps(figures, default=str)}")
