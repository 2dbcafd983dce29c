"""The query parameters the API schema documents for each operation: the only ones the API accepts.

The schema is the contract, so it is also the list: a parameter it does not name (a typo such as
``?simbol=BTCUSD``, or one a client hopes is read) is refused with a 400 naming it, instead of being
silently ignored while the answer looks right. Built once per process from drf-spectacular's own
generator (about half a second of CPU), as a web process starts (``tradingsite.wsgi``) or on the
first request that carries a query string.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Operations = dict[tuple[Callable[..., Any], str], frozenset[str]]

_lock = threading.Lock()
_operations: Operations | None = None


def _build() -> Operations:
    from drf_spectacular.generators import SchemaGenerator

    generator = SchemaGenerator()
    paths = generator.get_schema(public=True)["paths"]
    operations: Operations = {}
    for path, _regex, method, callback in generator.endpoints:
        view = generator.create_view(callback, method)
        schema_path = generator.coerce_path(path, method, view)
        operation = paths.get(schema_path if schema_path.startswith("/") else f"/{schema_path}", {}).get(
            method.lower()
        )
        if operation is not None:
            names = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
            operations[(callback, method.upper())] = frozenset(names)
    return operations


def prepare() -> Operations:
    """Every operation's documented parameters, built on the first call. The web server's entry point
    calls it as a process starts, so that no request waits for the build."""
    global _operations
    if _operations is None:
        with _lock:
            if _operations is None:
                _operations = _build()
    return _operations


def documented(callback: Callable[..., Any], method: str) -> frozenset[str] | None:
    """The query parameters the schema documents for ``method`` on the view ``callback``; None when
    the schema does not describe that operation (the schema and docs views, OPTIONS)."""
    method = "GET" if method.upper() == "HEAD" else method.upper()
    return prepare().get((callback, method))


def undocumented(callback: Callable[..., Any], method: str, given: list[str]) -> list[str]:
    """The names in ``given`` that the operation does not document, in the order given."""
    allowed = documented(callback, method)
    if allowed is None:
        return []
    return [name for name in given if name not in allowed]
