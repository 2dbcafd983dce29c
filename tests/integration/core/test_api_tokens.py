"""API tokens: one query to authenticate, an expired token refused without a write, and the daily
task that deletes expired tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from workers.jobs import records_prune

pytestmark = pytest.mark.django_db


def _client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def _token_queries(client: APIClient) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/strategies")
    assert response.status_code == 200, response.content
    return [q["sql"] for q in queries.captured_queries if "knox_authtoken" in q["sql"]]


def test_a_request_reads_its_token_once_however_many_tokens_the_user_has(user):
    _, token = AuthToken.objects.create(user=user)
    client = _client(token)
    assert len(_token_queries(client)) == 1
    for _ in range(5):
        AuthToken.objects.create(user=user, expiry=timedelta(hours=1))
    assert len(_token_queries(client)) == 1  # knox itself read every token of the user as well


def test_an_expired_token_is_a_401_and_a_get_deletes_nothing(user):
    instance, token = AuthToken.objects.create(user=user, expiry=timedelta(hours=1))
    AuthToken.objects.filter(pk=instance.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    other, _ = AuthToken.objects.create(user=user, expiry=timedelta(hours=1))
    AuthToken.objects.filter(pk=other.pk).update(expiry=timezone.now() - timedelta(days=1))

    response = _client(token).get("/api/strategies")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert AuthToken.objects.filter(user=user).count() == 2


def test_the_daily_prune_deletes_expired_tokens_only(user):
    expired, _ = AuthToken.objects.create(user=user, expiry=timedelta(hours=1))
    AuthToken.objects.filter(pk=expired.pk).update(expiry=timezone.now() - timedelta(minutes=1))
    _, live = AuthToken.objects.create(user=user, expiry=timedelta(hours=1))
    _, forever = AuthToken.objects.create(user=user, expiry=None)

    records_prune()

    assert set(AuthToken.objects.values_list("token_key", flat=True)) == {live[:15], forever[:15]}
    assert _client(live).get("/api/strategies").status_code == 200
