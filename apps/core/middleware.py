"""Request ids for logs, JSON errors (never HTML or a trace) for anything under /api/, and a guard
against paths and query strings no view could use."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core import query_parameters
from apps.core.api import error_body, json_error
from apps.core.input import text_problem
from apps.core.logging import request_id_var

logger = logging.getLogger("apps.api")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Tag each request with an id (the client's X-Request-ID when it is safe) for logs and replies."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class ApiErrorMiddleware:
    """Render unexpected exceptions under /api/ as a logged 500 in the API's error shape."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith("/api/"):
            return None
        logger.exception("Unhandled error on %s %s", request.method, request.path)
        return json_error(500, "server_error", "Internal server error; it has been logged.")


class InputGuardMiddleware:
    """Refuse a path or query string that holds a NUL or a lone surrogate, and a query parameter the
    API schema does not document for the operation, before any view runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            texts = [request.path, *(item for pair in request.GET.lists() for item in (pair[0], *pair[1]))]
            for text in texts:
                if problem := text_problem(text):
                    return json_error(400, "invalid", f"The request's path or query string {problem}.")
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        if not request.GET or not request.path.startswith("/api/"):
            return None
        unknown = query_parameters.undocumented(view, request.method or "GET", list(request.GET))
        if not unknown:
            return None
        known = sorted(query_parameters.documented(view, request.method or "GET") or ())
        reads = f"it reads {', '.join(known)}" if known else "it reads none"
        body = error_body(
            "invalid",
            f"{unknown[0]}: not a query parameter of this endpoint ({reads}).",
            {name: ["not a query parameter of this endpoint"] for name in unknown},
        )
        return JsonResponse(body, status=400)
