"""A health snapshot taken in the test's process, as the snapshot job takes it in a worker."""

from __future__ import annotations

from apps.health import services
from apps.health.models import HealthSnapshot, SnapshotTrigger
from workers import app as celery_app


def take_snapshot() -> HealthSnapshot:
    """Compute every component and store the document, as a worker does for the beat or the API;
    GET /api/health then reads its stored components back."""
    snapshot = services.snapshot_request(trigger=SnapshotTrigger.COMMAND)
    taken = services.snapshot_run(snapshot_id=snapshot.pk, celery_app=celery_app)
    assert taken is not None
    return taken
