"""Admin pages for health snapshots and external API probes (read-only records)."""

from django.contrib import admin

from apps.health.models import ExternalApiProbe, HealthSnapshot


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(HealthSnapshot)
class HealthSnapshotAdmin(ReadOnlyAdmin):
    list_display = ("id", "trigger", "status", "overall_status", "worker", "created_at", "finished_at")
    list_filter = ("trigger", "status", "overall_status")
    date_hierarchy = "created_at"


@admin.register(ExternalApiProbe)
class ExternalApiProbeAdmin(ReadOnlyAdmin):
    list_display = ("name", "reachable", "status_code", "response_time_ms", "message", "checked_at")
