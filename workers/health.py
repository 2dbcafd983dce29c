"""Health tasks: the per-minute snapshot (the scheduler and worker heartbeat) and external probes."""

from __future__ import annotations

from celery import shared_task

from apps.health import services
from workers.celery import app
from workers.periodic import once_per_slot


@shared_task(name="health.snapshot_take")
@once_per_slot
def snapshot_take() -> None:
    """Beat-driven: store this minute's health snapshot; a second run for the minute does nothing."""
    services.snapshot_take_for_current_slot(celery_app=app)


@shared_task(name="health.snapshot_run")
def snapshot_run(snapshot_id: int) -> None:
    """Run a requested snapshot (API or command); a redelivered message does nothing."""
    services.snapshot_run(snapshot_id=snapshot_id, celery_app=app)


@shared_task(name="health.external_apis_probe")
@once_per_slot
def external_apis_probe() -> None:
    services.external_apis_probe()


@shared_task(name="health.snapshots_prune")
@once_per_slot
def snapshots_prune() -> None:
    services.snapshots_prune()
