"""docker-compose.yml describes the whole system, and Compose itself accepts it where installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]


def _compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def test_compose_runs_postgres_redis_web_worker_and_beat_with_health_checks():
    services = _compose()["services"]

    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in services[name], name
    assert "gunicorn" in services["web"]["command"]
    assert services["worker"]["command"].startswith("celery -A workers worker")
    assert services["beat"]["command"].startswith("celery -A workers beat")


def test_compose_redis_keeps_its_queues_across_restarts_and_never_evicts_them():
    command = _compose()["services"]["redis"]["command"]

    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_the_image_runs_in_production_mode_with_only_the_runtime_requirements():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()

    assert "ENVIRONMENT=production" in dockerfile
    assert "pip install -r requirements.txt" in dockerfile
    assert "requirements-dev" not in dockerfile


def _compose_command() -> list[str] | None:
    if shutil.which("docker"):
        plugin = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if plugin.returncode == 0:
            return ["docker", "compose"]
    compose = shutil.which("docker-compose")
    return [compose] if compose else None


def test_compose_config_accepts_the_file():
    compose = _compose_command()
    if compose is None:
        pytest.skip("no Docker Compose on this machine (CI installs it to run this check)")
    result = subprocess.run(
        [*compose, "config", "-q"],
        cwd=REPO_ROOT,
        env={**os.environ, "SECRET_KEY": "x"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_the_procfile_starts_web_worker_and_beat():
    procfile = dict(
        line.split(":", 1) for line in (REPO_ROOT / "Procfile").read_text().splitlines() if line.strip()
    )
    assert set(procfile) == {"web", "worker", "beat"}
