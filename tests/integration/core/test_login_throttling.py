"""Password guessing is stopped: failed logins lock the username and the address out (django-axes),
the right password is refused during the lockout and works once a staff member unlocks it; callers
without credentials are rate-limited before the permission check refuses them."""

from __future__ import annotations

import base64

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

RIGHT = "correct horse battery"


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _login(username: str, password: str, address: str = "10.0.0.1") -> tuple[int, dict]:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=_basic(username, password))
    response = client.post("/api/auth/login")
    return response.status_code, response.json()


def test_failed_logins_lock_the_username_out_until_a_staff_member_unlocks_it(user, settings):
    statuses = [_login("trader", f"guess {n}")[0] for n in range(settings.AXES_FAILURE_LIMIT)]
    assert statuses == [401] * settings.AXES_FAILURE_LIMIT

    code, body = _login("trader", RIGHT, address="10.9.9.9")  # the right password, from elsewhere

    assert code == 429
    assert body["error"]["code"] == "locked_out"
    assert "Try again in 15 minutes" in body["error"]["message"]
    assert AccessAttempt.objects.get(username="trader").failures_since_start == settings.AXES_FAILURE_LIMIT

    call_command("axes_reset_username", "trader")
    code, body = _login("trader", RIGHT, address="10.9.9.9")
    assert code == 200 and body["token"]


def test_failed_logins_from_one_address_lock_it_out_whatever_the_usernames(user, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        assert _login(f"someone{n}", "guess", address="10.6.6.6")[0] == 401

    assert _login("trader", RIGHT, address="10.6.6.6")[0] == 429
    assert _login("trader", RIGHT, address="10.7.7.7")[0] == 200  # trader itself was never guessed


def test_a_success_before_the_limit_clears_the_failures(user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login("trader", "wrong")[0] == 401
    assert _login("trader", RIGHT)[0] == 200
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login("trader", "wrong")[0] == 401
    assert _login("trader", RIGHT)[0] == 200


def test_the_admin_login_is_locked_out_too(client, settings):
    get_user_model().objects.create_superuser(username="boss", password=RIGHT)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post("/admin/login/", {"username": "boss", "password": "wrong"}).status_code == 200
    assert client.post("/admin/login/", {"username": "boss", "password": "wrong"}).status_code == 429

    locked = client.post("/admin/login/", {"username": "boss", "password": RIGHT})

    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_anonymous_calls_are_throttled_before_the_permission_check_refuses_them(settings, user):
    rate = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["anon"].split("/")[0])
    anonymous = APIClient(REMOTE_ADDR="10.3.3.3")

    statuses = [anonymous.get("/api/strategies").status_code for _ in range(rate + 5)]

    # The count lives in the cache, which fails open: a Redis call lost under load costs one request.
    assert statuses[:rate] == [401] * rate and statuses[-1] == 429
    refused = anonymous.get("/api/strategies")
    assert refused.json()["error"]["code"] == "throttled" and int(refused["Retry-After"]) > 0
    assert APIClient(REMOTE_ADDR="10.4.4.4").get("/api/strategies").status_code == 401  # per address
    assert anonymous.get("/api/health").status_code in (200, 503)  # monitors are never throttled
