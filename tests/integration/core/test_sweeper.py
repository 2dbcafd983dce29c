"""The job sweeper sends again what a lost message or a dead worker left behind, fails what is out of
attempts, advances parents whose children are done, and reports it all to the health document."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import Celery
from django.utils import timezone

from apps.core.dispatch import job_dispatch
from apps.core.models import JobStatus, JobSweep
from apps.core.sweeper import job_kinds, jobs_sweep
from apps.health.checks import DEGRADED, HEALTHY, check_jobs
from apps.health.models import HealthSnapshot, SnapshotTrigger
from apps.trading.models import OrchestratorCycle

pytestmark = pytest.mark.django_db


class Outbox:
    """The sweeper's sender: records what would be published."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[object]]] = []

    def __call__(self, task: str, args: list[object]) -> None:
        self.sent.append((task, args))


def _snapshot(**fields: object) -> HealthSnapshot:
    snapshot = HealthSnapshot.objects.create(trigger=SnapshotTrigger.COMMAND)
    HealthSnapshot.objects.filter(pk=snapshot.pk).update(**fields)
    snapshot.refresh_from_db()
    return snapshot


def _ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def _sent_snapshots(outbox: Outbox) -> list[int]:
    return [args[0] for task, args in outbox.sent if task == "health.snapshot_run"]


def test_every_job_kind_of_the_project_is_registered():
    labels = {kind.label for kind in job_kinds()}

    assert labels >= {
        "health.healthsnapshot",
        "market.marketanalysis",
        "training.mlmodel",
        "training.trainingrun",
        "strategies.backtest",
        "strategies.optimizationchunk",
        "strategies.optimizationrun",
        "strategies.generationrun",
        "strategies.strategyupdateitem",
        "strategies.strategyupdaterun",
        "trading.orchestratorcycle",
        "trading.reconciliation",
    }


def test_a_pending_job_whose_message_was_never_sent_is_sent(settings):
    never_sent = _snapshot(created_at=_ago(30))
    _snapshot()  # just created: its message is probably being sent right now
    outbox = Outbox()

    jobs_sweep(send=outbox)

    assert _sent_snapshots(outbox) == [never_sent.pk]
    never_sent.refresh_from_db()
    assert never_sent.dispatches == 1 and never_sent.dispatched_at is not None
    assert never_sent.status == JobStatus.PENDING  # the claim, not the sweeper, starts it


def test_a_pending_job_is_sent_again_once_its_queue_is_empty_and_then_waits_twice_as_long(settings):
    settings.JOB_RESEND_AFTER_SECONDS = 60
    recent = _snapshot(created_at=_ago(600), dispatched_at=_ago(30), dispatches=1)
    lost = _snapshot(created_at=_ago(600), dispatched_at=_ago(90), dispatches=1)
    sent_twice = _snapshot(created_at=_ago(600), dispatched_at=_ago(90), dispatches=2)  # waits 120 s now
    outbox = Outbox()

    jobs_sweep(send=outbox, waiting=lambda task: 0)

    assert _sent_snapshots(outbox) == [lost.pk]
    assert {recent.pk, sent_twice.pk}.isdisjoint(_sent_snapshots(outbox))


def test_a_pending_job_waiting_behind_a_queue_is_left_alone():
    queued = _snapshot(created_at=_ago(600), dispatched_at=_ago(300), dispatches=1)
    asked: list[str] = []

    def waiting(task: str) -> int:
        asked.append(task)
        return 42

    outbox = Outbox()
    sweep = jobs_sweep(send=outbox, waiting=waiting)

    assert outbox.sent == [] and asked == ["health.snapshot_run"]
    assert sweep.report["kinds"]["health.healthsnapshot"]["pending_stuck"] == 1  # health still says so
    queued.refresh_from_db()
    assert queued.dispatches == 1


def test_a_running_job_whose_lease_expired_is_sent_again_while_attempts_remain(settings):
    settings.CELERY_TASK_MAX_ATTEMPTS = 3
    alive = _snapshot(
        status=JobStatus.RUNNING, attempts=1, lease_expires_at=timezone.now() + timedelta(seconds=30)
    )
    dead = _snapshot(
        status=JobStatus.RUNNING, attempts=1, lease_expires_at=_ago(5), dispatched_at=_ago(600), dispatches=1
    )
    outbox = Outbox()

    sweep = jobs_sweep(send=outbox)

    assert _sent_snapshots(outbox) == [dead.pk]
    facts = sweep.report["kinds"]["health.healthsnapshot"]
    assert (facts["running_expired"], facts["resent"]) == (1, 1)
    alive.refresh_from_db()
    assert alive.status == JobStatus.RUNNING


def test_a_running_job_out_of_attempts_fails_with_the_last_reason(settings):
    settings.CELERY_TASK_MAX_ATTEMPTS = 3
    dead = _snapshot(
        status=JobStatus.RUNNING,
        attempts=3,
        lease_expires_at=_ago(5),
        error="attempt 3 was interrupted: OperationalError: the connection was lost",
    )
    outbox = Outbox()

    jobs_sweep(send=outbox)

    dead.refresh_from_db()
    assert outbox.sent == []
    assert dead.status == JobStatus.FAILED
    assert dead.error == (
        "Gave up after 3 attempts: attempt 3 was interrupted: OperationalError: the connection was lost."
    )


def test_a_lost_orchestrator_cycle_is_failed_not_repeated():
    cycle = OrchestratorCycle.objects.create()
    OrchestratorCycle.objects.filter(pk=cycle.pk).update(
        status=JobStatus.RUNNING, attempts=1, lease_expires_at=_ago(5)
    )
    outbox = Outbox()

    jobs_sweep(send=outbox)

    cycle.refresh_from_db()
    assert outbox.sent == []
    assert cycle.status == JobStatus.FAILED
    assert "the next cycle acts" in cycle.error


def test_a_broker_that_is_down_postpones_the_sends_and_marks_nothing_sent():
    lost = _snapshot(created_at=_ago(30))

    def broker_down(task: str, args: list[object]) -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    sweep = jobs_sweep(send=broker_down)

    lost.refresh_from_db()
    assert (lost.dispatched_at, lost.dispatches) == (None, 0)
    assert "Connection refused" in sweep.report["broker_error"]
    health = check_jobs()
    assert health["status"] == DEGRADED and "the broker is unavailable" in health["message"]


def test_health_reports_stuck_jobs_per_kind_from_the_newest_sweep(settings):
    settings.JOB_RESEND_AFTER_SECONDS = 60
    assert check_jobs()["status"] == DEGRADED  # the sweeper has not run yet

    jobs_sweep(send=Outbox())
    assert check_jobs()["status"] == HEALTHY

    _snapshot(created_at=_ago(600), dispatched_at=_ago(120), dispatches=1)
    _snapshot(status=JobStatus.RUNNING, attempts=1, lease_expires_at=_ago(5))
    _snapshot(status=JobStatus.FAILED, finished_at=_ago(60), error="boom")
    jobs_sweep(send=Outbox())

    health = check_jobs()
    assert health["status"] == DEGRADED
    assert health["kinds"]["health.healthsnapshot"]["pending_stuck"] == 1
    assert health["kinds"]["health.healthsnapshot"]["running_expired"] == 1
    assert health["kinds"]["health.healthsnapshot"]["failed_24h"] == 1
    assert "health.healthsnapshot: 1 pending too long, 1 past their lease" in health["message"]


def test_health_says_when_the_sweeper_stopped_running(settings):
    JobSweep.objects.create(ran_at=_ago(3600), report={"kinds": {}})

    health = check_jobs()

    assert health["status"] == DEGRADED and "the job sweeper last ran 3600s ago" in health["message"]


def test_accepting_a_job_while_the_broker_is_down_keeps_it_pending_for_the_sweeper():
    unreachable = Celery("probe", broker="redis://127.0.0.1:1/0", set_as_current=False)
    unreachable.conf.broker_connection_retry = False
    unreachable.conf.broker_transport_options = {"socket_connect_timeout": 1}

    @unreachable.task(name="health.snapshot_run")
    def snapshot_run(snapshot_id: int) -> None:  # pragma: no cover - never runs
        pass

    accepted = HealthSnapshot.objects.create(trigger=SnapshotTrigger.API)

    assert job_dispatch(snapshot_run, accepted) is False

    accepted.refresh_from_db()
    assert (accepted.status, accepted.dispatched_at) == (JobStatus.PENDING, None)
    HealthSnapshot.objects.filter(pk=accepted.pk).update(created_at=_ago(30))
    outbox = Outbox()
    jobs_sweep(send=outbox)
    assert _sent_snapshots(outbox) == [accepted.pk]
