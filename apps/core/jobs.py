"""Claiming and finishing job rows so that a redelivered task never repeats finished work."""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from apps.core.models import Job, JobStatus

J = TypeVar("J", bound=Job)


def job_claim(*, model: type[J], pk: int, lease_seconds: int) -> J | None:
    """Mark the job RUNNING for this worker and return it, or None when it is not ours to run.

    A PENDING row is claimed. A RUNNING row whose lease has expired (its worker died; the message
    was redelivered by ``acks_late``) is claimed again while attempts remain; once they are spent
    the row is marked FAILED. Finished rows are never claimed: a duplicate message does nothing.
    """
    now = timezone.now()
    max_attempts = settings.CELERY_TASK_MAX_ATTEMPTS
    claimable = Q(status=JobStatus.PENDING) | Q(
        status=JobStatus.RUNNING, started_at__lt=now - timedelta(seconds=lease_seconds)
    )
    claimed = model.objects.filter(claimable, pk=pk, attempts__lt=max_attempts).update(
        status=JobStatus.RUNNING, started_at=now, attempts=F("attempts") + 1
    )
    if claimed == 1:
        return model.objects.get(pk=pk)
    model.objects.filter(claimable, pk=pk, attempts__gte=max_attempts).update(
        status=JobStatus.FAILED, finished_at=now, error=f"Gave up after {max_attempts} attempts."
    )
    return None


def job_progress(*, job: Job, progress: float) -> None:
    """Record progress (0..1) without touching any other column."""
    type(job).objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
        progress=min(max(progress, 0.0), 1.0)
    )
    job.progress = progress


def job_complete(*, job: J, **fields: object) -> J:
    """Finish a claimed job successfully, saving ``fields`` with it."""
    return _finish(job, JobStatus.COMPLETED, error="", progress=1.0, **fields)


def job_fail(*, job: J, error: str) -> J:
    """Finish a claimed job as failed with a message for the user."""
    return _finish(job, JobStatus.FAILED, error=error[:4000])


def _finish(job: J, status: str, **fields: object) -> J:
    fields.update(status=status, finished_at=timezone.now())
    # Only the claimant (row still RUNNING) may finish it; a stale duplicate changes nothing.
    type(job).objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(**fields)
    job.refresh_from_db()
    return job
