"""Hostile input stopped at the edge: request bodies and query strings that the database, the engine
or Python's own parser would choke on are a 400 (or a 413) in the API's error shape, never a 500.

* JSON bodies are parsed by :class:`StrictJSONParser`: nesting deeper than ``API_MAX_JSON_DEPTH``,
  NUL characters (PostgreSQL refuses them in text) and lone surrogates (no valid UTF-8) are refused.
* Bodies larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` are a 413.
* Paths and query strings with a NUL or a lone surrogate are refused before any view runs
  (``apps.core.middleware.InputGuardMiddleware``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def text_problem(text: str) -> str | None:
    """Why a piece of text cannot be stored, or None."""
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode)"
    return None


def _strings_and_depth(value: Any) -> Iterator[tuple[str, int]]:
    """Every value of a parsed JSON document with its nesting depth (its text for strings and keys,
    "" for anything else), without recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            yield "", depth
            for key, child in item.items():
                yield key, depth
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            yield "", depth
            stack.extend((child, depth + 1) for child in item)
        else:
            yield (item if isinstance(item, str) else ""), depth


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, refusing what no endpoint can use (see the module docstring)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON nested deeper than {settings.API_MAX_JSON_DEPTH} levels") from None
        for text, depth in _strings_and_depth(data):
            if depth > settings.API_MAX_JSON_DEPTH:
                raise ParseError(f"JSON nested deeper than {settings.API_MAX_JSON_DEPTH} levels")
            if problem := text_problem(text):
                raise ParseError(f"a string in the body {problem}")
        return data
