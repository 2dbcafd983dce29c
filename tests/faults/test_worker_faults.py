"""Workers die mid-job, Redis loses its queues, the database link drops: every accepted backtest still
ends, completed, and none is finished twice."""

from __future__ import annotations

import os
import re
import signal
import time
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from apps.core.models import JobStatus
from apps.strategies.models import Backtest
from tests.faults.conftest import outcome, queue_backtests, report, unfinished, wait_all_finished
from tests.faults.harness import database_url, pool_children, wait_for, wait_until

# Each waits for dozens of real jobs through a fault: minutes on a loaded machine, past the default 300 s.
pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True), pytest.mark.timeout(900)]


def _running_in(children: list[int]) -> Backtest | None:
    """A backtest that one of these pool processes is running now."""
    for backtest in Backtest.objects.filter(status=JobStatus.RUNNING):
        if int(backtest.claimed_by.rsplit(":", 1)[1]) in children:
            return backtest
    return None


def test_a_pool_child_killed_mid_job_leaves_no_job_behind(stack, strategy):
    ids = queue_backtests(stack, strategy, 100)
    worker = stack.worker("worker", concurrency=2)
    stack.beat()

    for _ in range(5):  # a kill can land between two jobs; then try the next one
        victim = wait_for(lambda: _running_in(pool_children(worker.pid)), 60, "a running backtest")
        os.kill(int(victim.claimed_by.rsplit(":", 1)[1]), signal.SIGKILL)
        killed_at, killed_wall = time.monotonic(), timezone.now()
        victim.refresh_from_db()
        if victim.status == JobStatus.RUNNING:
            break
    assert victim is not None and victim.status == JobStatus.RUNNING, "no kill landed mid-job"

    wait_until(
        lambda: Backtest.objects.get(pk=victim.pk).status != JobStatus.RUNNING,
        120,
        "the killed job to finish",
    )
    finished_after = time.monotonic() - killed_at
    wait_all_finished(ids, timeout=300)

    figures = outcome(stack, ids)
    victim.refresh_from_db()
    resent = re.search(
        rf"^(\S+ \S+) INFO apps.core.sweeper .* strategies.backtest {victim.pk} again "
        r"\(its lease expired; send 2\)",
        "\n".join(stack.logs()),
        re.MULTILINE,
    )
    assert resent is not None, "the sweeper did not send the killed job again"
    resent_at = datetime.strptime(resent.group(1), "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
    resent_after = (resent_at - killed_wall).total_seconds()
    report(
        "pool child killed",
        {
            **figures,
            "victim_attempts": victim.attempts,
            "victim_resent_after_seconds": resent_after,
            "victim_finished_after_seconds": finished_after,  # it queues behind the others again
        },
    )
    assert figures["completed"] == 100 and figures["failed"] == []
    assert figures["finished_twice"] == [] and figures["never_finished_in_logs"] == []
    assert (victim.status, victim.attempts) == (JobStatus.COMPLETED, 2)
    # Its lease (6 s) ran out, then the next sweep (every 2 s) sent it; while that message waited
    # behind the queue, later sweeps sent it again at growing intervals (harmless: claim-checked).
    assert 0 < resent_after < 20


def test_a_killed_worker_main_process_is_replaced_and_its_jobs_finish(stack, strategy):
    ids = queue_backtests(stack, strategy, 40)
    first = stack.worker("first", concurrency=2)
    stack.beat()
    wait_until(
        lambda: Backtest.objects.filter(pk__in=ids, status=JobStatus.COMPLETED).count() >= 5, 120, "5 done"
    )

    first.kill()
    for child in pool_children(first.pid):  # orphans of the dead worker die with it in practice
        os.kill(child, signal.SIGKILL)
    killed_at = time.monotonic()
    left = unfinished(ids)
    stack.worker("second", concurrency=2)
    wait_all_finished(ids, timeout=300)
    recovered = time.monotonic() - killed_at

    figures = outcome(stack, ids)
    report(
        "worker main process killed", {**figures, "unfinished_at_kill": left, "recovery_seconds": recovered}
    )
    assert left > 0
    assert figures["completed"] == 40 and figures["failed"] == []
    assert figures["finished_twice"] == []


def test_a_redis_restart_that_loses_every_queued_message_loses_no_job(stack, strategy):
    ids = queue_backtests(stack, strategy, 50)
    stack.worker("worker", concurrency=2)
    stack.beat()
    wait_until(
        lambda: Backtest.objects.filter(pk__in=ids, status=JobStatus.COMPLETED).count() >= 3, 120, "3 done"
    )

    stack.redis.stop()
    lost = unfinished(ids)
    restarted_at = time.monotonic()
    time.sleep(3)
    stack.redis.start()  # empty: the queued messages are gone
    wait_all_finished(ids, timeout=300)
    recovered = time.monotonic() - restarted_at

    figures = outcome(stack, ids)
    report("redis restarted empty", {**figures, "unfinished_when_lost": lost, "recovery_seconds": recovered})
    assert lost > 10
    assert figures["completed"] == 50 and figures["failed"] == []
    assert figures["finished_twice"] == []


def test_a_database_connection_cut_for_15_seconds_mid_run_loses_no_job(stack, strategy):
    ids = queue_backtests(stack, strategy, 30)
    proxy = stack.proxy_to_database()
    stack.worker("worker", concurrency=2, database=database_url(proxy.port))
    stack.beat()  # the sweeper reaches the database directly
    wait_until(lambda: Backtest.objects.filter(status=JobStatus.RUNNING).exists(), 120, "a running backtest")

    proxy.cut()
    cut_at = time.monotonic()
    time.sleep(15)
    proxy.restore()
    wait_all_finished(ids, timeout=300)
    recovered = time.monotonic() - cut_at - 15

    figures = outcome(stack, ids)
    report("database cut 15 s", {**figures, "recovery_seconds_after_restore": recovered})
    assert figures["completed"] == 30 and figures["failed"] == []
    assert figures["finished_twice"] == []
