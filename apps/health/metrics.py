"""Process and host metrics for the health document, read with psutil."""

from __future__ import annotations

import platform
import threading
import time
from functools import lru_cache
from importlib import metadata
from typing import Any

import psutil
from django.conf import settings

# Distribution names whose versions the health document reports.
KEY_PACKAGES = (
    "django",
    "djangorestframework",
    "celery",
    "django-celery-beat",
    "psycopg",
    "redis",
    "numpy",
    "pandas",
    "ta",
    "xgboost-cpu",
    "scikit-learn",
    "ccxt",
    "openai",
    "anthropic",
    "google-genai",
)


def prime_cpu_counter() -> None:
    """psutil's first non-blocking cpu_percent() call returns 0.0; make it at start-up instead."""
    psutil.cpu_percent(interval=None)


# Host metrics move slowly; a request reads them at most this old (psutil costs a few ms a call).
METRICS_MAX_AGE_SECONDS = 5.0
_recent: tuple[float, dict[str, Any]] | None = None
_recent_lock = threading.Lock()


def system_metrics_recent() -> dict[str, Any]:
    """``system_metrics()``, measured again when the last measure of this process is older than
    ``METRICS_MAX_AGE_SECONDS``."""
    global _recent
    with _recent_lock:
        if _recent is None or time.monotonic() - _recent[0] > METRICS_MAX_AGE_SECONDS:
            _recent = (time.monotonic(), system_metrics())
        return _recent[1]


@lru_cache(maxsize=1)
def _process_started() -> float:
    return float(psutil.Process().create_time())


def uptime_seconds() -> float:
    return round(time.time() - _process_started(), 1)


def system_metrics() -> dict[str, Any]:
    network = psutil.net_io_counters()
    return {
        "cpu_usage_pct": psutil.cpu_percent(interval=None),
        "memory_usage_pct": psutil.virtual_memory().percent,
        "disk_usage_pct": psutil.disk_usage(str(settings.BASE_DIR)).percent,
        "network_io": {"bytes_sent": network.bytes_sent, "bytes_recv": network.bytes_recv},
        "active_connections": len(psutil.Process().net_connections(kind="inet")),
    }


@lru_cache(maxsize=1)
def dependencies() -> dict[str, Any]:
    """Installed versions of the key packages; computed once per process (they cannot change)."""
    packages = {}
    for name in KEY_PACKAGES:
        try:
            packages[name] = {"status": "installed", "version": metadata.version(name)}
        except metadata.PackageNotFoundError:
            packages[name] = {"status": "missing", "version": None}
    return {"python_version": platform.python_version(), "packages": packages}
