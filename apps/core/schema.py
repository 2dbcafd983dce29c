"""The API schema documents every error an operation can answer, in the one error shape.

drf-spectacular documents what a view declares; the errors come from the layers around it
(authentication, permissions, throttling, input validation, the body size limit, unknown ids), so a
postprocessing hook adds them to each operation where they can happen.
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": True},
            },
            "required": ["code", "message", "fields"],
        }
    },
    "required": ["error"],
}
_ERROR_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_METHODS_WITH_BODY = {"post", "put", "patch"}


def _errors(path: str, method: str, operation: dict[str, Any]) -> dict[str, str]:
    public = {} in operation.get("security", [{}])
    parameters = operation.get("parameters", [])
    errors = {"429": "Too many requests (throttled, the login locked out, or your queued jobs at their cap)"}
    if not public or path.endswith("/auth/login") or path.endswith("/auth/login/"):
        errors["401"] = "No valid credentials"
    if not public:
        errors["403"] = "Not allowed (permission, staff only, or a failed CSRF check)"
    if "{" in path or any(p.get("in") == "query" and p.get("name") == "account" for p in parameters):
        errors["404"] = "No such object (or not yours)"
    # Every operation: a query parameter it does not document is refused (apps.core.query_parameters).
    errors["400"] = "Invalid input, or a query parameter the operation does not read: the message names it"
    if method in _METHODS_WITH_BODY:
        errors["413"] = "The request body is larger than API_MAX_BODY_BYTES"
    if path.rstrip("/").endswith("/cancel"):
        errors["409"] = "It cannot be canceled (any more): it has ended"
    return errors


def error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Add the error shape as a component and each operation's possible errors to its responses."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for code, description in _errors(path, method, operation).items():
                responses.setdefault(code, {"description": description, "content": _ERROR_REF})
    return result
