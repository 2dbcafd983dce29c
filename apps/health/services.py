"""Writes: health snapshots (requested or beat-driven) and external API probes."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta

from celery import Celery
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.jobs import job_claimed, job_complete
from apps.health import selectors, stored
from apps.health.models import ExternalApiProbe, HealthSnapshot, SnapshotTrigger


def snapshot_request(*, trigger: str) -> HealthSnapshot:
    """Store a PENDING snapshot for a worker to compute. The caller enqueues it after commit."""
    return HealthSnapshot.objects.create(trigger=trigger)


def snapshot_run(*, snapshot_id: int, celery_app: Celery) -> HealthSnapshot | None:
    """Claim the snapshot and store the health document as this worker sees it.

    Returns None, changing nothing, when the snapshot was already taken (a redelivered message).
    """
    with job_claimed(model=HealthSnapshot, pk=snapshot_id) as snapshot:
        if snapshot is None:
            return None
        worker = socket.gethostname()
        document = selectors.health_document_computed(celery_app=celery_app, current_worker=worker)
        completed = job_complete(
            job=snapshot, document=document, overall_status=document["status"], worker=worker
        )
    stored.newest_publish()
    return completed


def current_slot(now: datetime | None = None) -> datetime:
    return (now or timezone.now()).replace(second=0, microsecond=0)


def snapshot_take_for_current_slot(
    *, celery_app: Celery, now: datetime | None = None
) -> HealthSnapshot | None:
    """The beat job: one snapshot per minute slot, however often the message arrives."""
    slot = current_slot(now)
    try:
        with transaction.atomic():
            snapshot, _ = HealthSnapshot.objects.get_or_create(
                slot=slot, defaults={"trigger": SnapshotTrigger.BEAT}
            )
    except IntegrityError:  # another worker created the slot's row between our read and insert
        snapshot = HealthSnapshot.objects.get(slot=slot)
    return snapshot_run(snapshot_id=snapshot.pk, celery_app=celery_app)


def _probe(url: str, timeout: float) -> tuple[bool, int | None, str]:
    request = urllib.request.Request(url, headers={"User-Agent": "ai-trading-backend-health/1"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310  (URLs come from settings)
            return 200 <= response.status < 400, response.status, f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return False, error.code, f"HTTP {error.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        return False, None, f"Unreachable: {reason}"[:300]


def external_apis_probe() -> list[ExternalApiProbe]:
    """Check each configured external API once, with a short timeout, and store the outcome."""
    probes = []
    for name, url in settings.HEALTH_EXTERNAL_APIS.items():
        started = time.perf_counter()
        reachable, status_code, message = _probe(url, settings.HEALTH_EXTERNAL_TIMEOUT_SECONDS)
        probe, _ = ExternalApiProbe.objects.update_or_create(
            name=name,
            defaults={
                "url": url,
                "reachable": reachable,
                "status_code": status_code,
                "response_time_ms": round((time.perf_counter() - started) * 1000, 1),
                "message": message,
                "checked_at": timezone.now(),
            },
        )
        probes.append(probe)
    return probes


def snapshots_prune(*, now: datetime | None = None) -> int:
    """Delete snapshots older than the retention; returns how many were deleted."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.HEALTH_SNAPSHOT_RETENTION_DAYS)
    deleted, _ = HealthSnapshot.objects.filter(created_at__lt=cutoff).delete()
    return deleted
