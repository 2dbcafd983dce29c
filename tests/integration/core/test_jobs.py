"""Job rows are claimed once; a redelivered message does nothing; a lost worker's job is retried."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.jobs import job_claim, job_complete, job_fail
from apps.core.models import JobStatus
from apps.health.models import HealthSnapshot, SnapshotTrigger

pytestmark = pytest.mark.django_db
LEASE = 60


@pytest.fixture
def job() -> HealthSnapshot:
    return HealthSnapshot.objects.create(trigger=SnapshotTrigger.COMMAND)


def test_a_pending_job_is_claimed_once(job):
    first = job_claim(model=HealthSnapshot, pk=job.pk, lease_seconds=LEASE)
    second = job_claim(model=HealthSnapshot, pk=job.pk, lease_seconds=LEASE)

    assert first is not None and first.status == JobStatus.RUNNING and first.attempts == 1
    assert second is None


def test_a_finished_job_is_never_claimed_again(job):
    claimed = job_claim(model=HealthSnapshot, pk=job.pk, lease_seconds=LEASE)
    job_complete(job=claimed, overall_status="healthy")

    assert job_claim(model=HealthSnapshot, pk=job.pk, lease_seconds=LEASE) is None
    job.refresh_from_db()
    assert (job.status, job.attempts, job.progress) == (JobStatus.COMPLETED, 1, 1.0)


def test_a_job_whose_worker_died_is_claimed_again_after_its_lease(job):
    job_claim(model=HealthSnapshot, pk=job.pk, lease_seconds=LEASE)
    HealthSnapshot.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(seconds=LEASE + 1))

    again = job_claim(model=HealthSnapshot, pk=job.pk, lease_seconds=LEASE)

    assert again is not None and again.attempts == 2


def test_a_job_that_keeps_losing_its_worker_fails_after_the_attempt_limit(job, settings):
    settings.CELERY_TASK_MAX_ATTEMPTS = 2
    expired = timezone.now() - timedelta(seconds=LEASE + 1)
    for _ in range(2):
        assert job_claim(model=HealthSnapshot, pk=job.pk, lease_seconds=LEASE) is not None
        HealthSnapshot.objects.filter(pk=job.pk).update(started_at=expired)

    assert job_claim(model=HealthSnapshot, pk=job.pk, lease_seconds=LEASE) is None
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "Gave up after 2 attempts" in job.error


def test_only_the_claimant_can_finish_a_job(job):
    claimed = job_claim(model=HealthSnapshot, pk=job.pk, lease_seconds=LEASE)
    job_fail(job=claimed, error="boom")
    stale_copy = HealthSnapshot.objects.get(pk=job.pk)
    stale_copy.status = JobStatus.RUNNING  # a duplicate that still believes it is running

    job_complete(job=stale_copy, overall_status="healthy")

    job.refresh_from_db()
    assert (job.status, job.error, job.overall_status) == (JobStatus.FAILED, "boom", "")
