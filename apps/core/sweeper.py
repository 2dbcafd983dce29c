"""The job sweeper: every accepted job row ends, completed or failed with a reason, whatever was lost.

Each app registers its job kinds (``job_kind_register`` in its ``AppConfig.ready``). Every
``JOB_SWEEP_INTERVAL_SECONDS`` the sweeper looks at each kind and

* sends again a PENDING row whose message may be lost: never sent (the broker was down when it was
  accepted), or sent ``JOB_RESEND_AFTER_SECONDS`` ago, still unclaimed, while its queue in the
  broker is empty (the message is gone: a Redis restart, a dead worker holding it unacked); a row
  waiting behind a queue is left alone. Each further send waits twice as long (up to
  ``JOB_RESEND_MAX_SECONDS``);
* sends again a RUNNING row whose lease expired (its worker died) while attempts remain, so the
  next claim takes it over; with none left, or for kinds whose lost work is superseded by the next
  scheduled run (``lost_reason``), fails it with the reason;
* sends a parent (a row that aggregates child jobs) its advancing task once none of its children
  is unfinished, in case the child that finished last could not send it.

A duplicate message is harmless: the claim refuses it. What each pass found and did is stored as
a :class:`JobSweep`; the health document's ``jobs`` component reads the newest one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from apps.core.dispatch import BROKER_UNAVAILABLE
from apps.core.jobs import LOST_WORKER, failed_fields
from apps.core.models import UNFINISHED, Job, JobStatus, JobSweep

logger = logging.getLogger(__name__)

Send = Callable[[str, list[object]], object]
# Messages waiting in the queue a task is routed to (None: cannot tell).
Waiting = Callable[[str], int | None]
# A row sent this recently without a recorded dispatch is probably being sent right now.
NEVER_SENT_GRACE_SECONDS = 10


def _row_id(job: Job) -> list[object]:
    return [job.pk]


@dataclass(frozen=True)
class JobKind:
    """How the sweeper recovers one kind of job row."""

    model: type[Job]
    task: str  # the task that runs the row (or, for a parent, advances it)
    args: Callable[[Any], Sequence[object]] = _row_id
    children: tuple[str, ...] = ()  # a parent: the related names of its child jobs
    lost_reason: str = ""  # not re-run: a lost attempt fails with this reason

    @property
    def label(self) -> str:
        return self.model._meta.label_lower


_KINDS: dict[str, JobKind] = {}


def job_kind_register(kind: JobKind) -> None:
    """Make the sweeper and the health document aware of a kind of job row."""
    _KINDS[kind.label] = kind


def job_kinds() -> list[JobKind]:
    return sorted(_KINDS.values(), key=lambda kind: kind.label)


@dataclass
class _Pass:
    """One sweep pass: the moment, the sender and what it has done so far."""

    now: datetime
    send: Send
    waiting: Waiting | None = None
    broker_error: str = ""
    _depths: dict[str, int | None] = field(default_factory=dict)

    def queue_empty(self, task: str) -> bool:
        """Whether nothing waits in the task's queue; True when that cannot be told."""
        if self.waiting is None:
            return True
        if task not in self._depths:
            try:
                self._depths[task] = self.waiting(task)
            except BROKER_UNAVAILABLE:
                self._depths[task] = None
        return not self._depths[task]

    def resend(self, kind: JobKind, job: Job, why: str) -> bool:
        if self.broker_error:
            return False
        try:
            self.send(kind.task, list(kind.args(job)))
        except BROKER_UNAVAILABLE as error:
            self.broker_error = f"{type(error).__name__}: {error}"
            return False
        kind.model.objects.filter(pk=job.pk).update(dispatched_at=self.now, dispatches=F("dispatches") + 1)
        logger.info(
            "job sweeper: sent %s %s again (%s; send %s)", kind.label, job.pk, why, job.dispatches + 1
        )
        return True


def jobs_sweep(*, send: Send, waiting: Waiting | None = None, now: datetime | None = None) -> JobSweep:
    """One pass over every registered kind; ``send(task_name, args)`` publishes a message and
    ``waiting(task_name)`` counts the messages in that task's queue."""
    sweep = _Pass(now=now or timezone.now(), send=send, waiting=waiting)
    report: dict[str, Any] = {"kinds": {}}
    for kind in job_kinds():
        report["kinds"][kind.label] = _sweep_kind(kind, sweep)
    if sweep.broker_error:
        report["broker_error"] = sweep.broker_error
        logger.warning("job sweeper: the broker is unavailable, sends postponed: %s", sweep.broker_error)
    return JobSweep.objects.create(ran_at=sweep.now, report=report)


def job_facts(*, kind: JobKind, now: datetime | None = None) -> dict[str, int]:
    """Rows of the kind that are stuck or failed: PENDING past the resend threshold, RUNNING past
    their lease (for a parent: unfinished with every child done, i.e. its advance is overdue), and
    FAILED in the last 24 hours."""
    now = now or timezone.now()
    rows = kind.model.objects
    threshold = now - timedelta(seconds=settings.JOB_RESEND_AFTER_SECONDS)
    if kind.children:
        pending, running = _parents_waiting(kind, threshold).count(), 0
    else:
        pending = rows.filter(status=JobStatus.PENDING, created_at__lt=threshold).count()
        running = rows.filter(_lease_expired(now)).count()
    failed = rows.filter(status=JobStatus.FAILED, finished_at__gte=now - timedelta(hours=24)).count()
    return {"pending_stuck": pending, "running_expired": running, "failed_24h": failed}


def _sweep_kind(kind: JobKind, sweep: _Pass) -> dict[str, Any]:
    entry: dict[str, Any] = {**job_facts(kind=kind, now=sweep.now), "resent": 0, "failed": 0}
    if kind.children:
        settled = sweep.now - timedelta(seconds=NEVER_SENT_GRACE_SECONDS)
        for parent in _parents_waiting(kind, settled)[: settings.JOB_SWEEP_BATCH]:
            if _due(parent, sweep.now):
                entry["resent"] += sweep.resend(kind, parent, "its children are done")
        return entry
    for job in kind.model.objects.filter(_lease_expired(sweep.now))[: settings.JOB_SWEEP_BATCH]:
        if kind.lost_reason or job.attempts >= settings.CELERY_TASK_MAX_ATTEMPTS:
            entry["failed"] += _fail_lost(kind, job, sweep.now)
        elif _due(job, sweep.now):
            entry["resent"] += sweep.resend(kind, job, "its lease expired")
    for job in kind.model.objects.filter(status=JobStatus.PENDING)[: settings.JOB_SWEEP_BATCH]:
        if not _due(job, sweep.now):
            continue
        if kind.lost_reason:
            entry["failed"] += _fail_never_started(kind, job, sweep.now)
        elif job.dispatched_at is None:
            entry["resent"] += sweep.resend(kind, job, "never sent")
        elif sweep.queue_empty(kind.task):
            entry["resent"] += sweep.resend(kind, job, "never claimed, and its queue is empty")
    return entry


def _lease_expired(now: datetime) -> Q:
    legacy = Q(
        lease_expires_at__isnull=True, started_at__lt=now - timedelta(seconds=settings.JOB_LEASE_SECONDS)
    )
    return Q(status=JobStatus.RUNNING) & (Q(lease_expires_at__lt=now) | legacy)


def _parents_waiting(kind: JobKind, before: datetime) -> QuerySet:
    rows = kind.model.objects.filter(status__in=UNFINISHED, created_at__lt=before)
    for children in kind.children:
        rows = rows.exclude(**{f"{children}__status__in": UNFINISHED})
    return rows.distinct()


def _due(job: Job, now: datetime) -> bool:
    """Whether the row's last message is old enough to be presumed lost."""
    if job.dispatched_at is None:
        return job.created_at <= now - timedelta(seconds=NEVER_SENT_GRACE_SECONDS)
    wait = settings.JOB_RESEND_AFTER_SECONDS * 2 ** max(job.dispatches - 1, 0)
    return job.dispatched_at <= now - timedelta(seconds=min(wait, settings.JOB_RESEND_MAX_SECONDS))


def _fail_lost(kind: JobKind, job: Job, now: datetime) -> int:
    reason = kind.lost_reason or f"Gave up after {job.attempts} attempts: {job.error or LOST_WORKER}."
    failed = kind.model.objects.filter(_lease_expired(now), pk=job.pk, attempts=job.attempts).update(
        status=JobStatus.FAILED,
        finished_at=now,
        lease_expires_at=None,
        error=reason[:4000],
        **failed_fields(kind.model),
    )
    if failed:
        logger.warning("job sweeper: %s %s failed: %s", kind.label, job.pk, reason)
    return failed


def _fail_never_started(kind: JobKind, job: Job, now: datetime) -> int:
    reason = f"{kind.lost_reason} (it never started)"
    return kind.model.objects.filter(pk=job.pk, status=JobStatus.PENDING).update(
        status=JobStatus.FAILED, finished_at=now, error=reason, **failed_fields(kind.model)
    )


def job_sweeps_prune(*, keep_hours: int = 24) -> int:
    """Forget sweep reports older than a day (health reads only the newest)."""
    deleted, _ = JobSweep.objects.filter(ran_at__lt=timezone.now() - timedelta(hours=keep_hours)).delete()
    return deleted


def job_sweep_last() -> JobSweep | None:
    """The newest sweep report."""
    return JobSweep.objects.order_by("-ran_at").first()
