"""Abstract job-state rows: the database row, not Celery's result backend, is a job's state."""

from __future__ import annotations

from django.db import models


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class Job(models.Model):
    """Status, progress and outcome of one unit of background work.

    A worker claims the row with a conditional UPDATE (see ``apps.core.jobs.job_claim``), so a
    redelivered message finds it taken or finished and does nothing.
    """

    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING, db_index=True
    )
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.COMPLETED, JobStatus.FAILED)
