"""Fixtures for the ownership tests: the shipped candles, training on them, and the people involved."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from knox.models import AuthToken
from rest_framework.test import APIClient

from apps.core.ownership import researcher_set
from tests.integration.market.conftest import btc_hourly  # noqa: F401  (the shipped real candles)
from tests.integration.training.conftest import (  # noqa: F401  (autouse: training on the shipped data)
    _live_at_the_end_of_the_shipped_history,
    _training_settings,
)


@pytest.fixture
def other_user(db):
    return get_user_model().objects.create_user(username="rival", password="another horse battery")


@pytest.fixture
def people(user, other_user, staff_user) -> dict[str, Any]:
    """The owner (in the researchers group, so they may make every kind), another user, staff."""
    researcher_set(user=user)
    return {"owner": user, "other": other_user, "staff": staff_user}


def client_for(user: Any) -> APIClient:
    """An API client holding a real token of ``user`` (None: anonymous)."""
    client = APIClient()
    if user is not None:
        _, token = AuthToken.objects.create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client
