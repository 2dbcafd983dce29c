"""Long polling of a job (``GET <job>?wait=seconds``): the answer comes when the job ends, or when the
time is up, a bad value is a 400, and each process lets a bounded number of requests wait at once."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from apps.core import job_wait
from apps.core.models import JobStatus
from apps.health.models import HealthSnapshot, SnapshotTrigger
from apps.health.services import snapshot_request
from tests.integration.trading.threads import run_together

# Far above how long any of these answers takes, far below the waits asked for: an answer that comes
# in less did not wait for the deadline.
PROMPT = 8.0


def _url(snapshot: HealthSnapshot, wait: str) -> str:
    return f"/api/health/snapshots/{snapshot.pk}?wait={wait}"


def _timed_get(client, url: str) -> tuple[dict, float]:
    started = time.monotonic()
    response = client.get(url)
    assert response.status_code == 200, response.content
    return response.json(), time.monotonic() - started


def _finish_after(snapshot: HealthSnapshot, seconds: float) -> None:
    time.sleep(seconds)
    HealthSnapshot.objects.filter(pk=snapshot.pk).update(
        status=JobStatus.COMPLETED, document={"status": "healthy"}, finished_at=timezone.now()
    )


@pytest.mark.django_db
@pytest.mark.parametrize("wait", ["soon", "-1", "20.5", "nan", "inf", ""])
def test_a_bad_wait_is_a_400_naming_it_and_changes_nothing(api_client, wait):
    snapshot = snapshot_request(trigger=SnapshotTrigger.API)

    response = api_client.get(_url(snapshot, wait))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and list(error["fields"]) == ["wait"]
    assert "from 0 to 20" in error["message"]
    assert HealthSnapshot.objects.get(pk=snapshot.pk).status == JobStatus.PENDING


@pytest.mark.django_db
def test_a_bad_wait_is_a_400_on_the_strategy_jobs_too(api_client):
    for path in ("optimizations", "backtests", "generations"):
        response = api_client.get(f"/api/strategies/{path}/1?wait=later")
        assert response.status_code == 400, path
        assert list(response.json()["error"]["fields"]) == ["wait"]


@pytest.mark.django_db(transaction=True)
def test_the_answer_comes_when_the_job_ends(api_client):
    snapshot = snapshot_request(trigger=SnapshotTrigger.API)

    results = run_together(
        2, lambda i: _finish_after(snapshot, 1.0) if i == 0 else _timed_get(api_client, _url(snapshot, "20"))
    )

    assert results[0] is None, results
    body, took = results[1]
    assert body["status"] == "completed" and body["document"]["status"] == "healthy"
    assert 0.9 <= took < PROMPT


@pytest.mark.django_db(transaction=True)
def test_an_unfinished_job_is_answered_when_the_time_is_up(api_client):
    snapshot = snapshot_request(trigger=SnapshotTrigger.API)

    started = time.monotonic()
    response = api_client.get(_url(snapshot, "0.4"))
    took = time.monotonic() - started

    assert response.status_code == 200 and response.json()["status"] == "pending"
    assert 0.4 <= took < PROMPT
    assert HealthSnapshot.objects.get(pk=snapshot.pk).status == JobStatus.PENDING  # a GET changes nothing


@pytest.mark.django_db
def test_a_finished_job_is_answered_at_once(api_client):
    snapshot = snapshot_request(trigger=SnapshotTrigger.API)
    _finish_after(snapshot, 0)

    started = time.monotonic()
    response = api_client.get(_url(snapshot, "20"))

    assert response.json()["status"] == "completed"
    assert time.monotonic() - started < PROMPT


@pytest.mark.django_db(transaction=True)
def test_no_more_requests_wait_than_the_process_has_places_for(api_client, settings):
    settings.API_JOB_WAITERS = 1
    snapshot = snapshot_request(trigger=SnapshotTrigger.API)

    def second() -> tuple[dict, float]:
        _until_a_request_waits()
        answer = _timed_get(api_client, _url(snapshot, "12"))
        _finish_after(snapshot, 0)
        return answer

    results = run_together(2, lambda i: _timed_get(api_client, _url(snapshot, "12")) if i == 0 else second())

    assert not any(isinstance(result, Exception) for result in results), results
    (first, _), (body, took) = results

    assert body["status"] == "pending"
    assert took < PROMPT  # answered at once, not after its 12 seconds
    assert first["status"] == "completed"  # the waiting one saw the job end


def _until_a_request_waits(timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not job_wait._waiting:
        assert time.monotonic() < deadline, "no request took the waiting place"
        time.sleep(0.01)


def test_the_schema_documents_wait_on_every_job_that_is_polled(api_client, db):
    schema = api_client.get("/api/schema", HTTP_ACCEPT="application/json").json()
    documented = {
        path.rstrip("/")  # each path is served with and without its slash
        for path, operations in schema["paths"].items()
        if any(p["name"] == "wait" for p in operations.get("get", {}).get("parameters", []))
    }

    assert documented == {
        "/api/strategies/backtests/{backtest_id}",
        "/api/strategies/optimizations/{run_id}",
        "/api/strategies/generations/{run_id}",
        "/api/market/analyses/{analysis_id}",
        "/api/health/snapshots/{snapshot_id}",
        "/api/training/models/{model_id}",
    }
