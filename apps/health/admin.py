"""Admin pages for health snapshots and external API probes (read-only records)."""

from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.health.models import ExternalApiProbe, HealthSnapshot


@admin.register(HealthSnapshot)
class HealthSnapshotAdmin(ReadOnlyAdmin):
    list_display = ("id", "trigger", "status", "overall_status", "worker", "created_at", "finished_at")
    list_filter = ("trigger", "status", "overall_status")
    date_hierarchy = "created_at"


@admin.register(ExternalApiProbe)
class ExternalApiProbeAdmin(ReadOnlyAdmin):
    list_display = ("name", "reachable", "status_code", "response_time_ms", "message", "checked_at")
