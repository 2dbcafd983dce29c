"""Job-state rows (the database row, not Celery's result backend, is a job's state), the owner field
of owned objects, and the records that keep scheduled work single: the beat leader's lease,
periodic slots and sweep reports."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


UNFINISHED = (JobStatus.PENDING, JobStatus.RUNNING)


def owner_field() -> models.ForeignKey:
    """Who made an object (see ``apps.core.ownership``): a user, or null when the system made it.

    PROTECT: deleting a user who owns research would otherwise hand it to the system (visible to
    everyone) or destroy what accounts may still trade; reassign or delete their objects first.
    """
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The user who made it; empty: made by the system (scheduled jobs, demo data, commands)",
    )


class Job(models.Model):
    """Status, progress and outcome of one unit of background work.

    A worker claims the row with a conditional UPDATE that sets a short lease (see
    ``apps.core.jobs``); a heartbeat renews the lease while the work runs, and only the attempt that
    holds the claim can finish the row. A row whose message was lost (PENDING, never claimed) or
    whose worker died (RUNNING, lease expired) is sent again by the sweeper, up to the attempt limit.
    """

    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING, db_index=True
    )
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Claims so far; the current claim's number fences out stale workers"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="While RUNNING: the claim is lost unless renewed before this"
    )
    claimed_by = models.CharField(
        max_length=100, blank=True, default="", help_text="host:pid of the process that claimed it last"
    )
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="When its message was last sent (empty: never, e.g. broker down)"
    )
    dispatches = models.PositiveSmallIntegerField(default=0, help_text="Messages sent for it so far")

    class Meta:
        abstract = True

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.COMPLETED, JobStatus.FAILED)


class SchedulerLease(models.Model):
    """Who may send periodic jobs: the one beat process holding an unexpired lease."""

    name = models.CharField(max_length=64, unique=True)
    holder = models.CharField(max_length=200)
    acquired_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}: {self.holder} until {self.expires_at:%Y-%m-%d %H:%M:%S}"


class PeriodicRun(models.Model):
    """One periodic job for one schedule slot: unique, so a second send for the slot does nothing."""

    task = models.CharField(max_length=200)
    slot = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    duplicates = models.PositiveIntegerField(default=0, help_text="Further sends for this slot, ignored")

    class Meta:
        ordering = ("-slot",)
        constraints = [models.UniqueConstraint(fields=("task", "slot"), name="periodic_run_once_per_slot")]

    def __str__(self) -> str:
        return f"{self.task} @ {self.slot:%Y-%m-%d %H:%M:%S}"


class JobSweep(models.Model):
    """What one pass of the job sweeper found and did, per job kind (health reads the newest)."""

    ran_at = models.DateTimeField(db_index=True)
    report = models.JSONField(default=dict)

    class Meta:
        ordering = ("-ran_at",)

    def __str__(self) -> str:
        return f"Job sweep at {self.ran_at:%Y-%m-%d %H:%M:%S}"
