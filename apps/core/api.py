"""API conventions shared by every app: one error shape, pagination and path helpers."""

from __future__ import annotations

import logging
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.urls import URLPattern, re_path
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, pagination, serializers, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from apps.core.jobs import JobNotCancelable
from apps.core.ownership import AccessRefused, NotVisible, TooManyJobs

logger = logging.getLogger(__name__)


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one error shape of the API: ``{"error": {"code", "message", "fields"}}``."""
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail: Any) -> Any:
    """DRF ErrorDetail trees become plain strings and lists, keyed by field."""
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten(item) for item in detail]
    return str(detail)


def _first_message(fields: dict[str, Any]) -> str:
    for name, problems in fields.items():
        first = problems[0] if isinstance(problems, list) and problems else problems
        if isinstance(first, dict):
            return f"{name}: {_first_message(first)}"
        return str(first) if name == "non_field_errors" else f"{name}: {first}"
    return "Invalid input."


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler that renders every error in the project's one shape."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(
            error_body("too_large", f"The request body is larger than the {limit:,} bytes allowed."),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, AccessRefused | JobNotCancelable):
        set_rollback()
        return _refusal(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # ApiErrorMiddleware renders unexpected errors as a logged 500.

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))

    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        fields = _flatten(detail)
        body = error_body("invalid", _first_message(fields), fields)
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else getattr(exc, "default_code", "error")
        body = error_body(code, str(exc.detail))
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


def _refusal(exc: AccessRefused | JobNotCancelable) -> Response:
    """An ownership refusal or a job that already ended, in the error shape with its status."""
    if isinstance(exc, NotVisible):  # worded exactly as for a missing object: existence does not leak
        return Response(
            error_body("not_found", str(exceptions.NotFound.default_detail)), status=status.HTTP_404_NOT_FOUND
        )
    if isinstance(exc, JobNotCancelable):
        return Response(error_body("not_cancelable", str(exc)), status=status.HTTP_409_CONFLICT)
    code = status.HTTP_429_TOO_MANY_REQUESTS if isinstance(exc, TooManyJobs) else status.HTTP_403_FORBIDDEN
    return Response(error_body(exc.code, str(exc)), status=code)


# Ids are PostgreSQL bigints: a larger number names nothing, and the database refuses to compare it.
MAX_ID = 2**63 - 1
_ID_DIGITS = len(str(MAX_ID)) - 1  # ids in paths: up to 18 digits, all below MAX_ID


class IdField(serializers.IntegerField):
    """An object id given as input: a whole number from 1 to ``MAX_ID``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=1, max_value=MAX_ID, **kwargs)


def validated(
    serializer_class: type[serializers.Serializer], data: Any, context: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``data`` (a body or ``request.query_params``) through an input serializer; a 400 in the error
    shape when it does not validate, or when a query names one of its single values twice (which one
    was meant cannot be told). ``context`` reaches its fields (e.g. the ``user`` whose objects an id
    may name)."""
    if isinstance(data, QueryDict):
        twice = {
            name: ["given more than once"]
            for name, field in serializer_class().fields.items()
            if len(data.getlist(name)) > 1 and not isinstance(field, serializers.ListField)
        }
        if twice:
            raise exceptions.ValidationError(twice)
    serializer = serializer_class(data=data, context=context or {})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def json_error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


@csrf_exempt  # a POST to an unknown path is a 404, not a CSRF page
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unknown paths under /api/ answer in the error shape, never with an HTML page."""
    return json_error(status.HTTP_404_NOT_FOUND, "not_found", f"No API endpoint at {request.path}.")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's CSRF refusal: in the error shape under /api/ (a session-authenticated unsafe request
    without its token), Django's own page elsewhere (the admin)."""
    if request.path.startswith("/api/"):
        return json_error(status.HTTP_403_FORBIDDEN, "csrf_failed", f"CSRF check failed: {reason}")
    return django_csrf_failure(request, reason=reason)


def api_path(route: str, view: Any, name: str) -> URLPattern:
    """A URL pattern that matches with or without a trailing slash (``trading/trades[/]``).

    ``route`` names path segments as ``<name>`` (any text) or ``<int:name>`` (an id: 1 to 18 digits;
    a longer number is no id and matches no route, a 404).
    """
    segments = []
    for part in route.split("/"):
        if part.startswith("<int:") and part.endswith(">"):
            segments.append(f"(?P<{part[5:-1]}>[0-9]{{1,{_ID_DIGITS}}})")
        elif part.startswith("<") and part.endswith(">"):
            segments.append(f"(?P<{part[1:-1]}>[^/]+)")
        else:
            segments.append(re.escape(part))
    return re_path(rf"^{'/'.join(segments)}/?$", view, name=name)


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """``?limit=&offset=`` as in the brief; limits are capped so one call cannot dump a table."""

    default_limit = 100
    max_limit = 1000
