"""Health snapshots (the stored health document over time) and external API probe results."""

from __future__ import annotations

from django.db import models

from apps.core.models import Job


class SnapshotTrigger(models.TextChoices):
    BEAT = "beat", "Scheduled (celery-beat)"
    API = "api", "Requested through the API"
    COMMAND = "command", "Requested from the command line"


class HealthSnapshot(Job):
    """One health document computed by a worker; beat-driven ones are one per minute slot."""

    trigger = models.CharField(max_length=16, choices=SnapshotTrigger.choices)
    # The minute a beat-driven snapshot belongs to; unique, so a repeated beat message adds nothing.
    slot = models.DateTimeField(null=True, blank=True, unique=True)
    overall_status = models.CharField(max_length=16, blank=True, default="")
    document = models.JSONField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            models.Index(fields=("trigger", "-finished_at")),
            # GET /api/health reads the newest completed snapshot, whatever its trigger.
            models.Index(fields=("status", "-finished_at")),
        ]

    def __str__(self) -> str:
        return f"Health snapshot {self.pk} ({self.trigger}, {self.status})"


class ExternalApiProbe(models.Model):
    """The latest reachability check of one external API, written by a periodic task."""

    name = models.CharField(max_length=64, unique=True)
    url = models.URLField()
    reachable = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_time_ms = models.FloatField(null=True, blank=True)
    message = models.CharField(max_length=300, blank=True, default="")
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return f"{self.name}: {'reachable' if self.reachable else 'unreachable'}"
