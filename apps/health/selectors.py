"""Reads: the health document of the brief, and the stored snapshot history."""

from __future__ import annotations

from typing import Any

from celery import Celery
from django.conf import settings
from django.db import DatabaseError
from django.db.models import QuerySet
from django.utils import timezone

from apps.core.logging import RecentErrorsHandler
from apps.health import checks, metrics, stored, visibility
from apps.health.models import HealthSnapshot


def health_document(*, celery_app: Celery) -> dict[str, Any]:
    """The document ``GET /api/health`` answers: the database, the cache and the broker checked now;
    the other components read back from the newest snapshot (``apps.health.stored``), computed here
    only when no snapshot holds them (first start). Its cost does not grow with what is stored."""
    components = checks.run_checks(celery_app, only=checks.LIVE_COMPONENTS)
    read = _stored(database_up=components["database"]["status"] == checks.HEALTHY)
    missing = tuple(name for name in checks.STORED_COMPONENTS if name not in read)
    computed = checks.run_checks(celery_app, only=missing) if missing else {}
    components.update({name: read.get(name) or computed[name] for name in checks.STORED_COMPONENTS})
    return _document(components, system=metrics.system_metrics_recent())


def health_document_computed(*, celery_app: Celery, current_worker: str | None = None) -> dict[str, Any]:
    """Every component computed now: what a snapshot stores. ``current_worker`` names the Celery
    worker computing it, when one is."""
    return _document(checks.run_checks(celery_app, current_worker), system=metrics.system_metrics())


def _stored(*, database_up: bool) -> dict[str, checks.Component]:
    if not database_up:
        return {}  # each component is then computed, and says why it failed
    try:
        return stored.stored_components(now=timezone.now())
    except DatabaseError:  # the database went away after its check: the same as above
        return {}


def _document(components: dict[str, checks.Component], *, system: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": checks.overall_status(components),
        "timestamp": timezone.now().isoformat(),
        "uptime_seconds": metrics.uptime_seconds(),
        "version": settings.APP_VERSION,
        "environment": settings.ENVIRONMENT,
        "components": components,
        "metrics": system,
        "dependencies": metrics.dependencies(),
        "recent_errors": RecentErrorsHandler.recent(),
    }


def document_for(document: dict[str, Any], *, staff: bool) -> dict[str, Any]:
    """The health document as a caller may see it: staff see everything, others what
    ``visibility.public_document`` leaves (no error messages, no accounts or strategies)."""
    return document if staff else visibility.public_document(document)


def snapshot_list() -> QuerySet[HealthSnapshot]:
    return HealthSnapshot.objects.all()
