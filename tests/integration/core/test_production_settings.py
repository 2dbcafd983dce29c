"""Production settings fail loudly without secrets and pass Django's deployment checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "tradingsite.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = _manage("check", ENVIRONMENT="production", ALLOWED_HOSTS="trading.example.com")

    assert result.returncode != 0
    assert "SECRET_KEY must be set when ENVIRONMENT=production" in result.stderr


def test_production_passes_the_deployment_checks_at_warning_level():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        ENVIRONMENT="production",
        SECRET_KEY="a-production-secret-" + "x7Kq2" * 10,
        ALLOWED_HOSTS="trading.example.com",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_an_unknown_environment_is_refused():
    result = _manage("check", ENVIRONMENT="staging")

    assert result.returncode != 0
    assert "ENVIRONMENT must be development, test or production" in result.stderr
