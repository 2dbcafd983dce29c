"""The first-run command prints the admin login once, a working token, and the real address."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from knox.auth import TokenAuthentication

pytestmark = pytest.mark.django_db


def _run() -> str:
    out = io.StringIO()
    call_command("bootstrap_admin", stdout=out)
    return out.getvalue()


def test_it_prints_the_login_once_a_working_token_and_the_configured_address(settings):
    settings.WEB_BIND = "0.0.0.0:8123"

    first, again = _run(), _run()

    assert "shown once" in first and "exists; password unchanged" in again
    token = first.split("API token:")[1].split()[0]
    user, _ = TokenAuthentication().authenticate_credentials(token.encode())
    assert user.is_superuser and user.username == "admin"
    assert "http://0.0.0.0:8123/api/health/snapshots" in first
