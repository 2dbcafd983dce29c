"""Job rows are claimed once under a lease, held by a heartbeat, finished only by their claim, and
every way an attempt can end is recorded: completed, failed with a reason, or released for another."""

from __future__ import annotations

import os
import socket
import time
from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import OperationalError
from django.utils import timezone

from apps.core.jobs import job_claim, job_claimed, job_complete, job_fail, job_progress
from apps.core.models import JobStatus
from apps.health.models import HealthSnapshot, SnapshotTrigger

pytestmark = pytest.mark.django_db


@pytest.fixture
def job() -> HealthSnapshot:
    return HealthSnapshot.objects.create(trigger=SnapshotTrigger.COMMAND)


def _expire(job: HealthSnapshot) -> None:
    HealthSnapshot.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_a_pending_job_is_claimed_once_with_a_short_lease_by_this_process(job, settings):
    before = timezone.now()
    first = job_claim(model=HealthSnapshot, pk=job.pk)
    second = job_claim(model=HealthSnapshot, pk=job.pk)

    assert first is not None and first.status == JobStatus.RUNNING and first.attempts == 1
    assert second is None
    lease = (first.lease_expires_at - before).total_seconds()
    assert settings.JOB_LEASE_SECONDS - 1 <= lease <= settings.JOB_LEASE_SECONDS + 1
    assert first.claimed_by == f"{socket.gethostname()}:{os.getpid()}"


def test_a_finished_job_is_never_claimed_again(job):
    claimed = job_claim(model=HealthSnapshot, pk=job.pk)
    job_complete(job=claimed, overall_status="healthy")

    assert job_claim(model=HealthSnapshot, pk=job.pk) is None
    job.refresh_from_db()
    assert (job.status, job.attempts, job.progress, job.lease_expires_at) == (
        JobStatus.COMPLETED,
        1,
        1.0,
        None,
    )


def test_a_running_job_is_claimed_again_only_once_its_lease_expired(job):
    job_claim(model=HealthSnapshot, pk=job.pk)
    assert job_claim(model=HealthSnapshot, pk=job.pk) is None  # its worker still renews the lease

    _expire(job)
    again = job_claim(model=HealthSnapshot, pk=job.pk)

    assert again is not None and again.attempts == 2


def test_a_job_that_keeps_losing_its_worker_fails_after_the_attempt_limit(job, settings):
    settings.CELERY_TASK_MAX_ATTEMPTS = 2
    for _ in range(2):
        assert job_claim(model=HealthSnapshot, pk=job.pk) is not None
        _expire(job)

    assert job_claim(model=HealthSnapshot, pk=job.pk) is None
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "Gave up after 2 attempts" in job.error and "stopped renewing the lease" in job.error


def test_a_stale_attempt_can_neither_finish_nor_record_progress(job):
    stale = job_claim(model=HealthSnapshot, pk=job.pk)
    _expire(job)
    current = job_claim(model=HealthSnapshot, pk=job.pk)

    job_progress(job=stale, progress=0.9)
    job_complete(job=stale, overall_status="stale")
    job.refresh_from_db()
    assert (job.status, job.progress, job.overall_status) == (JobStatus.RUNNING, 0.0, "")

    job_fail(job=current, error="the current attempt decides")
    job.refresh_from_db()
    assert (job.status, job.error) == (JobStatus.FAILED, "the current attempt decides")


def test_an_error_in_the_block_fails_the_job_with_the_reason_and_propagates(job):
    def work() -> None:
        with job_claimed(model=HealthSnapshot, pk=job.pk) as claimed:
            assert claimed is not None
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        work()

    job.refresh_from_db()
    assert (job.status, job.error) == (JobStatus.FAILED, "ValueError: boom")
    assert job.lease_expires_at is None


def test_the_soft_time_limit_fails_the_job_instead_of_leaving_it_running(job):
    with pytest.raises(SoftTimeLimitExceeded), job_claimed(model=HealthSnapshot, pk=job.pk):
        raise SoftTimeLimitExceeded()

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == "Stopped at its queue's soft time limit."


def test_a_lost_database_releases_the_claim_for_another_attempt(job):
    with pytest.raises(OperationalError), job_claimed(model=HealthSnapshot, pk=job.pk):
        raise OperationalError("server closed the connection unexpectedly")

    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert job.lease_expires_at <= timezone.now()
    assert "attempt 1 was interrupted: OperationalError" in job.error
    assert job_claim(model=HealthSnapshot, pk=job.pk).attempts == 2  # free at once, not after the lease


def test_a_lost_database_on_the_last_attempt_fails_the_job(job, settings):
    settings.CELERY_TASK_MAX_ATTEMPTS = 1
    with pytest.raises(OperationalError), job_claimed(model=HealthSnapshot, pk=job.pk):
        raise OperationalError("connection refused")

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("Gave up after 1 attempts: attempt 1 was interrupted")


def test_a_block_that_forgets_to_record_its_outcome_fails_the_job(job):
    with job_claimed(model=HealthSnapshot, pk=job.pk):
        pass

    job.refresh_from_db()
    assert (job.status, job.error) == (JobStatus.FAILED, "The job ended without recording its outcome.")


def test_a_job_that_is_not_ours_yields_none_and_changes_nothing(job):
    job_complete(job=job_claim(model=HealthSnapshot, pk=job.pk), overall_status="healthy")

    with job_claimed(model=HealthSnapshot, pk=job.pk) as claimed:
        assert claimed is None

    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_keeps_a_long_job_leased_until_it_finishes(settings):
    settings.JOB_LEASE_SECONDS = 1.5  # renewed every half second
    job = HealthSnapshot.objects.create(trigger=SnapshotTrigger.COMMAND)

    with job_claimed(model=HealthSnapshot, pk=job.pk) as claimed:
        first_lease = claimed.lease_expires_at
        time.sleep(2.5)  # longer than the lease: only the heartbeat keeps it
        renewed = HealthSnapshot.objects.get(pk=job.pk).lease_expires_at
        assert renewed > first_lease + timedelta(seconds=1)
        assert renewed > timezone.now()
        assert job_claim(model=HealthSnapshot, pk=job.pk) is None  # nobody can take it over
        job_complete(job=claimed, overall_status="healthy")

    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.COMPLETED, 1)
