"""Claiming, holding and finishing job rows, so that every accepted job ends once, completed or failed.

A job is claimed with one conditional UPDATE that sets a short lease and counts the attempt; while
the work runs a heartbeat thread renews the lease, so a live job never loses it and a dead
worker's job is free again within ``JOB_LEASE_SECONDS``. The attempt number is the claim: only the
attempt that holds it can record progress or finish the row, so a stale worker changes nothing.
The sweeper (``apps.core.sweeper``) sends again what a lost message or a dead worker left behind.

Use it as::

    with job_claimed(model=Backtest, pk=backtest_id) as backtest:
        if backtest is None:
            return None  # someone else has it, or it is finished: a redelivery is harmless
        ...
        return job_complete(job=backtest, **fields)

Leaving the block with an exception records it: a soft time limit or any other error fails the
row with the reason; a lost database connection or a shutdown releases the claim for another
attempt (the sweeper re-sends it). The exception then propagates.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from apps.core import ownership
from apps.core.models import UNFINISHED, Job, JobStatus

logger = logging.getLogger(__name__)

J = TypeVar("J", bound=Job)
T = TypeVar("T")

# The database went away under the attempt: nothing is wrong with the job itself.
DATABASE_LOST = (OperationalError, InterfaceError)
# What interrupts an attempt from outside. A per-item ``except Exception`` must let these through
# (``except Interrupted: raise`` first): SoftTimeLimitExceeded is an Exception.
Interrupted = (SoftTimeLimitExceeded, *DATABASE_LOST)
LOST_WORKER = "its worker stopped renewing the lease (killed, out of memory, or past the hard time limit)"


def lease_seconds() -> int:
    return settings.JOB_LEASE_SECONDS


def failed_fields(model: type[Job]) -> dict[str, object]:
    """Columns every failure of this kind also sets (a model's ``failed_fields``, e.g. its stage)."""
    return dict(getattr(model, "failed_fields", {}))


def job_claim(*, model: type[J], pk: int) -> J | None:
    """Mark the job RUNNING under a new attempt with a fresh lease and return it, or None when it
    is not ours to run.

    A PENDING row is claimed; so is a RUNNING row whose lease expired (its worker died), while
    attempts remain; once they are spent that row is marked FAILED. Finished rows are never
    claimed: a duplicate message does nothing.
    """
    now = timezone.now()
    max_attempts = settings.CELERY_TASK_MAX_ATTEMPTS
    claimable = Q(status=JobStatus.PENDING) | Q(status=JobStatus.RUNNING, lease_expires_at__lt=now)
    claimed = model.objects.filter(claimable, pk=pk, attempts__lt=max_attempts).update(
        status=JobStatus.RUNNING,
        started_at=now,
        lease_expires_at=now + timedelta(seconds=lease_seconds()),
        attempts=F("attempts") + 1,
        claimed_by=f"{socket.gethostname()}:{os.getpid()}",  # at claim time: pool children fork
    )
    if claimed == 1:
        job = model.objects.get(pk=pk)
        logger.info("%s %s claimed (attempt %s)", model.__name__, pk, job.attempts)
        return job
    model.objects.filter(claimable, pk=pk, attempts__gte=max_attempts).update(
        status=JobStatus.FAILED,
        finished_at=now,
        lease_expires_at=None,
        error=f"Gave up after {max_attempts} attempts: {LOST_WORKER}.",
        **failed_fields(model),
    )
    return None


@contextmanager
def job_claimed(*, model: type[J], pk: int) -> Iterator[J | None]:
    """Claim the job and hold its lease while the block runs (see the module docstring).

    Yields None, holding nothing, when the job is not ours to run.
    """
    job = job_claim(model=model, pk=pk)
    if job is None:
        yield None
        return
    heartbeat = _Heartbeat(job)
    heartbeat.start()
    try:
        yield job
    except SoftTimeLimitExceeded:
        job_fail(job=job, error="Stopped at its queue's soft time limit.")
        raise
    except (*DATABASE_LOST, SystemExit, KeyboardInterrupt) as error:
        job_release(job=job, reason=f"attempt {job.attempts} was interrupted: {_describe(error)}")
        raise
    except Exception as error:
        logger.exception("%s %s failed", model.__name__, pk)
        job_fail(job=job, error=_describe(error))
        raise
    else:
        _fail_if_still_held(job)
    finally:
        heartbeat.stop()


def _fail_if_still_held(job: Job) -> None:
    """A block that returned while its claim still holds forgot to record the outcome: a bug, made
    visible instead of a row RUNNING for ever."""
    left = (
        type(job)
        .objects.filter(_claim_filter(job))
        .update(
            status=JobStatus.FAILED,
            finished_at=timezone.now(),
            lease_expires_at=None,
            error="The job ended without recording its outcome.",
            **failed_fields(type(job)),
        )
    )
    if left:
        logger.error("%s %s ended without recording its outcome", type(job).__name__, job.pk)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class _Heartbeat(threading.Thread):
    """Renews one claim's lease every third of the lease until stopped or the claim is lost."""

    def __init__(self, job: Job) -> None:
        super().__init__(name=f"heartbeat-{type(job).__name__}-{job.pk}", daemon=True)
        self.job = job
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = max(lease_seconds() / 3, 0.5)
        try:
            while not self.stopped.wait(interval):
                try:
                    if not _renew(self.job):
                        logger.warning("%s lost its claim; its outcome will be discarded", self.name)
                        return
                except DATABASE_LOST as error:  # the next beat tries again on a fresh connection
                    logger.warning("%s could not renew the lease: %s", self.name, error)
                    connection.close()
        finally:
            connection.close()  # this thread's own connection

    def stop(self) -> None:
        # No join: a renewal blocked on a row lock held by the caller's transaction must not
        # deadlock the caller; a late renewal of a finished row matches nothing.
        self.stopped.set()


def _claim_filter(job: Job) -> Q:
    return Q(pk=job.pk, status=JobStatus.RUNNING, attempts=job.attempts)


def _renew(job: Job) -> bool:
    until = timezone.now() + timedelta(seconds=lease_seconds())
    return type(job).objects.filter(_claim_filter(job)).update(lease_expires_at=until) == 1


def job_progress(*, job: Job, progress: float) -> None:
    """Record progress (0..1) and renew the lease; a stale attempt changes nothing."""
    progress = min(max(progress, 0.0), 1.0)
    until = timezone.now() + timedelta(seconds=lease_seconds())
    type(job).objects.filter(_claim_filter(job)).update(progress=progress, lease_expires_at=until)
    job.progress = progress


def job_complete(*, job: J, **fields: object) -> J:
    """Finish a claimed job successfully, saving ``fields`` with it (only if the claim still holds)."""
    return _finish(job, JobStatus.COMPLETED, error="", progress=1.0, **fields)


def job_fail(*, job: J, error: str) -> J:
    """Finish a claimed job as failed with a message for the user (only if the claim still holds).

    The write survives a broken database connection: it is retried on a fresh one.
    """
    return _finish(job, JobStatus.FAILED, error=error[:4000], **failed_fields(type(job)))


def job_release(*, job: Job, reason: str) -> None:
    """Give up a claim without an outcome, so another attempt can run now (the sweeper sends it);
    with no attempts left the row fails with the reason."""
    now = timezone.now()
    model = type(job)

    def write() -> None:
        if job.attempts >= settings.CELERY_TASK_MAX_ATTEMPTS:
            model.objects.filter(_claim_filter(job)).update(
                status=JobStatus.FAILED,
                finished_at=now,
                lease_expires_at=None,
                error=f"Gave up after {job.attempts} attempts: {reason}"[:4000],
                **failed_fields(model),
            )
        else:
            model.objects.filter(_claim_filter(job)).update(lease_expires_at=now, error=reason[:4000])

    try:
        on_fresh_connection(write)
    except DATABASE_LOST:  # the lease expires by itself; the sweeper then takes over
        logger.warning("%s %s: could not release the claim (%s)", model.__name__, job.pk, reason)


class JobNotCancelable(Exception):
    """The job already ended: there is nothing to cancel."""


def job_cancel(*, job: J, by: ownership.User | None, what: str) -> J:
    """Fail a pending or running job now, saying who canceled it; ``by`` must be allowed to change
    it (``ownership.change_check``; ``what`` names the job in a refusal).

    One conditional UPDATE: a worker that holds the claim keeps running its current step, but it no
    longer holds the claim, so it records nothing (its outcome is discarded) and a queued message
    finds a finished row. Raises JobNotCancelable when the job had already ended.
    """
    ownership.change_check(obj=job, user=by, what=what)
    actor = ownership.actor_name(by)
    model = type(job)
    canceled = model.objects.filter(pk=job.pk, status__in=UNFINISHED).update(
        status=JobStatus.FAILED,
        finished_at=timezone.now(),
        lease_expires_at=None,
        error=f"Canceled by {actor}.",
        **failed_fields(model),
    )
    job.refresh_from_db()
    if not canceled:
        raise JobNotCancelable(f"{what} is {job.status}: only a pending or running job can be canceled")
    logger.info("%s %s canceled by %s", model.__name__, job.pk, actor)
    return job


def _finish(job: J, status: str, **fields: object) -> J:
    fields.update(status=status, finished_at=timezone.now(), lease_expires_at=None)
    model = type(job)
    won = on_fresh_connection(lambda: model.objects.filter(_claim_filter(job)).update(**fields) == 1)
    if won:
        logger.info("%s %s %s (attempt %s)", model.__name__, job.pk, status, job.attempts)
    else:
        logger.warning(
            "%s %s: attempt %s no longer holds the claim; its outcome (%s) was discarded",
            model.__name__,
            job.pk,
            job.attempts,
            status,
        )
    job.refresh_from_db()
    return job


def on_fresh_connection(write: Callable[[], T]) -> T:
    """Run a database write, retrying it on a fresh connection while the database is unreachable
    (for up to JOB_DATABASE_RETRY_SECONDS). Inside a transaction it runs once: a broken
    transaction cannot be resumed, so its caller's caller records the interruption."""
    if connection.in_atomic_block:
        return write()
    retrying = Retrying(
        retry=retry_if_exception_type(DATABASE_LOST),
        wait=wait_exponential(multiplier=0.5, max=5),
        stop=stop_after_delay(settings.JOB_DATABASE_RETRY_SECONDS),
        before_sleep=lambda _: connection.close(),
        reraise=True,
    )
    return retrying(write)


def jobs_abandon(*, rows: QuerySet[J], reason: str) -> int:
    """Fail every unfinished job of ``rows`` with ``reason``, claimed or not, and return how many.

    Only for a process that runs these jobs itself and is stopping before they ended (a replay
    interrupted mid-bar): no sweeper may send them to a worker, which would run them on another clock.
    """
    model = rows.model
    return rows.filter(status__in=UNFINISHED).update(
        status=JobStatus.FAILED,
        finished_at=timezone.now(),
        lease_expires_at=None,
        error=reason[:4000],
        **failed_fields(model),
    )
