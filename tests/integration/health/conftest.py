"""Fixtures of the health tests."""

from __future__ import annotations

import pytest

from tests.fakes.http import closed_port_url
from workers import app as celery_app


@pytest.fixture
def broker_unreachable():
    """Send the project's Celery app to a broker address where nothing listens, then restore it."""
    original = celery_app.conf.broker_url
    celery_app.conf.broker_url = closed_port_url().replace("http://", "redis://").replace("/ping", "/0")
    yield
    celery_app.conf.broker_url = original
