"""API conventions: authentication, the one error shape, trailing slashes, schema and docs."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import path
from rest_framework.test import APIClient
from rest_framework.views import APIView

from apps.core.api import error_body

pytestmark = pytest.mark.django_db


def _assert_error_shape(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def test_an_anonymous_write_is_refused_with_401(anon_client):
    _assert_error_shape(anon_client.post("/api/health/snapshots"), 401, "not_authenticated")


def test_an_anonymous_read_of_a_private_endpoint_is_refused_with_401(anon_client):
    _assert_error_shape(anon_client.get("/api/health/snapshots"), 401, "not_authenticated")


def test_a_bad_filter_value_is_a_400_that_names_the_field(api_client):
    error = _assert_error_shape(api_client.get("/api/health/snapshots?status=bogus"), 400, "invalid")
    assert "status" in error["fields"]
    assert "bogus" in error["fields"]["status"][0]


def test_unknown_paths_and_objects_are_404_in_the_error_shape(api_client):
    _assert_error_shape(api_client.get("/api/no/such/endpoint"), 404, "not_found")
    _assert_error_shape(api_client.get("/api/health/snapshots/999999"), 404, "not_found")


def test_a_wrong_method_is_a_405_in_the_error_shape(api_client):
    _assert_error_shape(api_client.put("/api/health/snapshots", {}), 405, "method_not_allowed")


class Boom(APIView):
    def get(self, request):
        raise RuntimeError("database password=hunter2hunter2 leaked into an exception")


urlpatterns = [path("api/boom", Boom.as_view())]


@pytest.mark.urls(__name__)
def test_an_unexpected_error_is_a_500_in_the_error_shape_without_a_trace(api_client):
    client = APIClient(raise_request_exception=False)
    client.credentials(**api_client._credentials)

    error = _assert_error_shape(client.get("/api/boom"), 500, "server_error")

    assert "hunter2" not in error["message"]
    assert "Traceback" not in error["message"]


def test_paths_answer_with_and_without_a_trailing_slash(api_client):
    assert api_client.get("/api/health/snapshots").status_code == 200
    assert api_client.get("/api/health/snapshots/").status_code == 200


def test_list_endpoints_paginate_with_limit_and_offset(api_client):
    for _ in range(3):
        api_client.post("/api/health/snapshots")
    body = api_client.get("/api/health/snapshots?limit=2").json()
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"]


def test_the_schema_and_its_docs_are_public_and_served_without_a_cdn(anon_client):
    schema = anon_client.get("/api/schema")
    docs = anon_client.get("/api/docs")

    assert schema.status_code == 200
    assert b"/api/health" in schema.content
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html


def test_api_token_prints_only_a_token_that_authenticates(anon_client):
    out = StringIO()
    call_command("api_token", "script-user", "--create", stdout=out, stderr=StringIO())
    token = out.getvalue().strip()

    assert len(token.split()) == 1 and len(token) >= 32
    anon_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert anon_client.get("/api/health/snapshots").status_code == 200


def test_api_token_refuses_an_unknown_user_without_create():
    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("api_token", "nobody", stdout=StringIO())


def test_tokens_are_stored_hashed(user):
    out = StringIO()
    call_command("api_token", user.username, stdout=out)
    from knox.models import AuthToken

    token = out.getvalue().strip()
    assert not AuthToken.objects.filter(digest=token).exists()
    assert AuthToken.objects.filter(user=user, token_key=token[:15]).exists()


def test_login_with_basic_credentials_returns_a_token(anon_client, user):
    anon_client.credentials(HTTP_AUTHORIZATION="Basic dHJhZGVyOmNvcnJlY3QgaG9yc2UgYmF0dGVyeQ==")
    response = anon_client.post("/api/auth/login")
    assert response.status_code == 200
    assert response.json()["token"]


def test_error_body_is_the_documented_shape():
    assert error_body("invalid", "symbol: unknown", {"symbol": ["unknown"]}) == {
        "error": {"code": "invalid", "message": "symbol: unknown", "fields": {"symbol": ["unknown"]}}
    }
