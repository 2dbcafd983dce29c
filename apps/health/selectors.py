"""Reads: the health document of the brief, and the stored snapshot history."""

from __future__ import annotations

import time
from typing import Any

import psutil
from celery import Celery
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from apps.core.logging import RecentErrorsHandler
from apps.health import checks, metrics, visibility
from apps.health.models import HealthSnapshot


def health_document(*, celery_app: Celery, current_worker: str | None = None) -> dict[str, Any]:
    """The full health document: status, components measured now, metrics, dependencies, errors.

    ``current_worker`` names the Celery worker computing it, when one is.
    """
    components = checks.run_checks(celery_app, current_worker)
    return {
        "status": checks.overall_status(components),
        "timestamp": timezone.now().isoformat(),
        "uptime_seconds": round(time.time() - psutil.Process().create_time(), 1),
        "version": settings.APP_VERSION,
        "environment": settings.ENVIRONMENT,
        "components": components,
        "metrics": metrics.system_metrics(),
        "dependencies": metrics.dependencies(),
        "recent_errors": RecentErrorsHandler.recent(),
    }


def document_for(document: dict[str, Any], *, staff: bool) -> dict[str, Any]:
    """The health document as a caller may see it: staff see everything, others what
    ``visibility.public_document`` leaves (no error messages, no accounts or strategies)."""
    return document if staff else visibility.public_document(document)


def snapshot_list() -> QuerySet[HealthSnapshot]:
    return HealthSnapshot.objects.all()
