"""The /api/health document: every key of the brief, real component checks, status and HTTP code."""

from __future__ import annotations

import copy
import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core.models import JobStatus
from apps.health import services
from apps.health.models import HealthSnapshot, SnapshotTrigger
from tests.fakes.http import FixedAnswerServer, closed_port_url

BRIEF_KEYS = {
    "status",
    "timestamp",
    "uptime_seconds",
    "version",
    "environment",
    "components",
    "metrics",
    "dependencies",
    "recent_errors",
}
COMPONENTS = {
    "database",
    "cache",
    "broker",
    "workers",
    "scheduler",
    "external_apis",
    "market_data",
    "llm_services",
}


def _fresh_beat_snapshot(age: timedelta = timedelta(seconds=5)) -> HealthSnapshot:
    finished = timezone.now() - age
    return HealthSnapshot.objects.create(
        trigger=SnapshotTrigger.BEAT, status=JobStatus.COMPLETED, slot=finished, finished_at=finished
    )


@pytest.mark.django_db
def test_it_answers_anonymously_with_every_key_of_the_brief(anon_client):
    response = anon_client.get("/api/health")

    body = response.json()
    assert set(body) == BRIEF_KEYS
    assert set(body["components"]) >= COMPONENTS
    assert set(body["metrics"]) == {
        "cpu_usage_pct",
        "memory_usage_pct",
        "disk_usage_pct",
        "network_io",
        "active_connections",
    }
    assert set(body["metrics"]["network_io"]) == {"bytes_sent", "bytes_recv"}
    assert body["dependencies"]["python_version"].count(".") == 2
    assert body["dependencies"]["packages"]["django"]["status"] == "installed"
    assert body["version"] == "0.1.0"
    assert body["uptime_seconds"] > 0
    assert body["components"]["database"]["status"] == "healthy"
    assert body["components"]["database"]["response_time_ms"] >= 0


@pytest.mark.django_db
def test_it_also_answers_with_a_trailing_slash(anon_client):
    assert anon_client.get("/api/health/").status_code in (200, 503)


@pytest.mark.django_db
def test_without_workers_or_scheduler_it_is_degraded_not_down(staff_client):
    # No worker runs in this test process and no beat snapshot exists.
    response = staff_client.get("/api/health")

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert body["components"]["workers"]["status"] == "unhealthy"
    assert body["components"]["scheduler"]["status"] == "unhealthy"
    assert "No scheduled run" in body["components"]["scheduler"]["message"]


@pytest.mark.django_db
def test_the_scheduler_is_healthy_after_a_recent_beat_run_and_stale_after_an_old_one(staff_client, settings):
    _fresh_beat_snapshot()
    assert staff_client.get("/api/health").json()["components"]["scheduler"]["status"] == "healthy"

    HealthSnapshot.objects.all().delete()
    _fresh_beat_snapshot(age=timedelta(seconds=settings.HEALTH_SCHEDULER_MAX_AGE_SECONDS + 30))
    scheduler = staff_client.get("/api/health").json()["components"]["scheduler"]
    assert scheduler["status"] == "unhealthy"
    assert scheduler["age_seconds"] > settings.HEALTH_SCHEDULER_MAX_AGE_SECONDS


@pytest.fixture
def database_unreachable():
    """Point the default connection at a database that cannot be opened, then restore it."""
    original = connection.settings_dict
    broken = copy.deepcopy(original)
    if connection.vendor == "postgresql":
        broken["PORT"] = int(closed_port_url().rsplit(":", 1)[1].split("/")[0])
        broken["OPTIONS"].pop("pool", None)
    else:
        broken["NAME"] = "/nonexistent-directory/health.sqlite3"
    connection.close()
    if hasattr(connection, "close_pool"):
        connection.close_pool()
    connection.settings_dict = broken
    yield
    connection.close()
    connection.settings_dict = original


@pytest.mark.django_db(transaction=True)
def test_a_database_that_is_down_makes_it_unhealthy_with_503(staff_client, database_unreachable):
    response = staff_client.get("/api/health")

    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unhealthy"
    assert body["components"]["database"]["status"] == "unhealthy"
    assert body["components"]["database"]["message"]


@pytest.mark.django_db
def test_a_broker_that_is_down_makes_it_unhealthy_with_503(staff_client, broker_unreachable):
    response = staff_client.get("/api/health")

    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unhealthy"
    assert body["components"]["broker"]["status"] == "unhealthy"
    assert "Error" in body["components"]["broker"]["message"]


@pytest.mark.django_db
def test_external_apis_are_probed_by_the_task_and_read_from_the_database(staff_client, anon_client, settings):
    with FixedAnswerServer(status=200) as up, FixedAnswerServer(status=503) as failing:
        settings.HEALTH_EXTERNAL_APIS = {
            "Binance": up.url,
            "CoinGecko": failing.url,
            "Nowhere": closed_port_url(),
        }
        services.external_apis_probe()
        external = staff_client.get("/api/health").json()["components"]["external_apis"]
        public = anon_client.get("/api/health").json()["components"]["external_apis"]

    assert external["services"]["Binance"]["status"] == "healthy"
    assert external["services"]["Binance"]["status_code"] == 200
    assert external["services"]["CoinGecko"]["status"] == "unhealthy"
    assert external["services"]["CoinGecko"]["status_code"] == 503
    assert external["services"]["Nowhere"]["status"] == "unhealthy"
    assert external["services"]["Nowhere"]["message"].startswith("Unreachable")
    assert external["status"] == "degraded"
    # The probe's error can name hosts and ports: others see the statuses only.
    assert public["services"]["Nowhere"] == {
        key: external["services"]["Nowhere"][key]
        for key in ("status", "response_time_ms", "status_code", "checked_at")
    }
    assert public["message"] == "degraded: the reason is shown to staff"


@pytest.mark.django_db
def test_the_endpoint_never_calls_external_apis_itself(staff_client, settings):
    # A server that would hang for 30 s: if the endpoint called it, this test would time out.
    with FixedAnswerServer(status=200, delay=30) as hanging:
        settings.HEALTH_EXTERNAL_APIS = {"Binance": hanging.url}
        body = staff_client.get("/api/health").json()
        assert hanging.requests == 0

    assert body["components"]["external_apis"]["message"] == "External APIs not probed yet"
    assert body["status"] == "degraded"


@pytest.mark.django_db
def test_recent_errors_are_listed_newest_first_without_secrets_and_their_messages_only_to_staff(
    anon_client, api_client, staff_user, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-abcdefghijklmnop")
    logger = logging.getLogger("apps.test")
    logger.error("first failure")
    logger.error("provider rejected key sk-test-abcdefghijklmnop")
    staff = APIClient()
    staff.force_authenticate(staff_user)

    errors = staff.get("/api/health").json()["recent_errors"]

    assert [e["message"] for e in errors[:2]] == ["provider rejected key [REDACTED]", "first failure"]
    assert errors[0]["level"] == "ERROR"
    for caller in (anon_client, api_client):  # anonymous, or a user who is not staff
        public = caller.get("/api/health").json()["recent_errors"]
        assert [(e["level"], e["logger"]) for e in public[:2]] == [("ERROR", "apps.test")] * 2
        assert not any("message" in entry for entry in public)
