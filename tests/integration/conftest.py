"""Fixtures for tests that use the database, the API and the broker."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from knox.models import AuthToken
from rest_framework.test import APIClient

from apps.core.logging import RecentErrorsHandler
from apps.core.ownership import researcher_set
from apps.market.api import answers


def _cache_clear() -> None:
    """Empty this test run's cache. On Redis only its own keys (its prefix): django-redis' clear()
    flushes the whole database, every other run's cache and broker messages included."""
    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("*")
    else:
        cache.clear()
    answers.memory.clear()


@pytest.fixture(autouse=True)
def _isolated_cache_and_errors():
    """Each test starts with an empty cache and no remembered errors."""
    _cache_clear()
    RecentErrorsHandler.clear()
    yield
    _cache_clear()


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user(username="trader", password="correct horse battery")


@pytest.fixture
def researcher(user):
    """The ``user`` fixture in the researchers group: they may start LLM generation and training."""
    researcher_set(user=user)
    return user


@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_user(
        username="operator", password="correct horse battery", is_staff=True
    )


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def staff_client(staff_user) -> APIClient:
    """A staff operator's client: it sees the health document whole (error messages, accounts)."""
    client = APIClient()
    client.force_authenticate(staff_user)
    return client


@pytest.fixture
def api_client(user) -> APIClient:
    """An API client authenticated with a real knox token, as a script would be."""
    _, token = AuthToken.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client
