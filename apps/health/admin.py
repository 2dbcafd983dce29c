"""Admin pages for health snapshots and external API probes (read-only records)."""

from django.contrib import admin
from django.db import models

from apps.core.admin import ReadOnlyAdmin, list_time
from apps.health.models import ExternalApiProbe, HealthSnapshot


@admin.register(HealthSnapshot)
class HealthSnapshotAdmin(ReadOnlyAdmin):
    list_display = ("id", "status", "overall_status", "worker", "created")
    created = list_time("created_at", "created")
    list_filter = ("trigger", "status", "overall_status")
    date_hierarchy = "created_at"


@admin.register(ExternalApiProbe)
class ExternalApiProbeAdmin(ReadOnlyAdmin):
    list_display = ("name", "reachable", "status_code", "response_time_ms", "message", "checked")
    checked = list_time("checked_at", "checked")
    # The probes' URLs are https; saying so also keeps Django 6's changed default out of the page.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
