"""Beat-driven snapshots are one per minute slot; old ones are pruned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.health import services
from apps.health.models import HealthSnapshot
from workers import app as celery_app

pytestmark = pytest.mark.django_db


def test_a_repeated_beat_message_for_a_minute_adds_nothing():
    minute = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    first = services.snapshot_take_for_current_slot(celery_app=celery_app, now=minute)
    again = services.snapshot_take_for_current_slot(celery_app=celery_app, now=minute + timedelta(seconds=30))

    assert first is not None and first.status == "completed"
    assert again is None
    assert HealthSnapshot.objects.count() == 1
    assert first.slot == minute.replace(second=0)
    assert set(first.document) >= {"status", "components", "metrics"}


def test_the_next_minute_gets_its_own_snapshot():
    minute = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    services.snapshot_take_for_current_slot(celery_app=celery_app, now=minute)
    services.snapshot_take_for_current_slot(celery_app=celery_app, now=minute + timedelta(minutes=1))

    assert HealthSnapshot.objects.count() == 2


def test_pruning_deletes_only_snapshots_past_the_retention(settings):
    old = services.snapshot_request(trigger="command")
    HealthSnapshot.objects.filter(pk=old.pk).update(
        created_at=datetime.now(UTC) - timedelta(days=settings.HEALTH_SNAPSHOT_RETENTION_DAYS + 1)
    )
    recent = services.snapshot_request(trigger="command")

    assert services.snapshots_prune() == 1
    assert list(HealthSnapshot.objects.values_list("pk", flat=True)) == [recent.pk]
