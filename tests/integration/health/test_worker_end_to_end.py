"""A real worker process takes a snapshot requested through the API, exactly once."""

from __future__ import annotations

import time

import pytest

from apps.core.models import JobStatus
from apps.health.models import HealthSnapshot
from tests.integration.worker import running_worker
from workers.health import snapshot_run

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _wait_for(snapshot_id: int, timeout: float = 30) -> HealthSnapshot:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snapshot = HealthSnapshot.objects.get(pk=snapshot_id)
        if snapshot.is_finished:
            return snapshot
        time.sleep(0.1)
    raise AssertionError(f"snapshot {snapshot_id} still {snapshot.status} after {timeout}s")


def test_a_real_worker_runs_a_snapshot_enqueued_after_commit_and_ignores_a_redelivery(api_client, tmp_path):
    with running_worker(tmp_path / "worker.log"):
        accepted = api_client.post("/api/health/snapshots")
        assert accepted.status_code == 202
        first = _wait_for(accepted.json()["id"])

        # The same message again, as a broker redelivers it after a lost acknowledgement.
        snapshot_run.delay(first.pk)
        # A later job on the same solo worker finishes only after the redelivered one was consumed.
        second = _wait_for(api_client.post("/api/health/snapshots").json()["id"])

    first_again = HealthSnapshot.objects.get(pk=first.pk)
    assert first.status == JobStatus.COMPLETED
    assert first.document["components"]["workers"]["status"] == "healthy"
    assert first.worker
    assert (first_again.attempts, first_again.finished_at, first_again.document) == (
        1,
        first.finished_at,
        first.document,
    )
    assert second.status == JobStatus.COMPLETED
    assert api_client.get(accepted.json()["url"]).json()["status"] == "completed"
