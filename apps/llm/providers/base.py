"""The project's own LLM interface: LLMRequest in, LLMResponse out, the SDK errors translated."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from apps.llm.errors import LLMOutputError, LLMPermanentError, LLMTemporaryError
from apps.llm.prompts import parse_json_answer

# HTTP statuses worth retrying: request timeout, rate limit, and every server error.
_TEMPORARY_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class LLMRequest:
    """One question for a model.

    ``user`` carries the instructions and the context, the context delimited as data (see
    ``apps.llm.prompts.user_message``). ``schema`` is the JSON Schema the answer must match; it is
    sent as each vendor's native structured output, so keep it to the subset all three accept:
    every object lists all its properties in ``required`` and sets ``additionalProperties: false``;
    ``enum``, ``minimum``/``maximum`` and ``minItems``/``maxItems`` are fine. The answer is
    validated by the project afterwards whatever the vendor promised.
    """

    system: str
    user: str
    schema: dict[str, Any]
    temperature: float = 0.2
    max_tokens: int = 4096


@dataclass(frozen=True)
class LLMResponse:
    """A model's answer: its text, that text as a JSON object when it is one, usage and timing."""

    text: str
    parsed: dict[str, Any] | None
    tokens_in: int
    tokens_out: int
    latency_ms: float
    raw: dict[str, Any] = field(repr=False)


class LLMProvider(Protocol):
    """A language model behind one vendor's SDK. ``complete`` raises only ``apps.llm.errors``."""

    name: str
    model: str

    def complete(self, request: LLMRequest) -> LLMResponse: ...


@dataclass(frozen=True)
class ProviderConfig:
    """How to reach one provider. ``base_url`` None means the vendor's own endpoint."""

    name: str
    model: str
    api_key: str = field(repr=False)
    base_url: str | None
    timeout_seconds: float


def is_temporary_status(status: int) -> bool:
    return status in _TEMPORARY_STATUSES or status >= 500


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The ``Retry-After`` header in seconds, when present as a number."""
    value = (headers or {}).get("retry-after")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the service's own backoff applies


def status_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Exception:
    """The project's error for an HTTP error status from a provider."""
    if is_temporary_status(status):
        return LLMTemporaryError(f"HTTP {status}: {message}", retry_after=retry_after_seconds(headers))
    return LLMPermanentError(f"HTTP {status}: {message}")


def response_from(
    text: str | None, *, tokens_in: int | None, tokens_out: int | None, started: float, raw: dict[str, Any]
) -> LLMResponse:
    """An LLMResponse, parsing the text as a JSON object where it is one."""
    text = text or ""
    try:
        parsed: dict[str, Any] | None = parse_json_answer(text)
    except LLMOutputError:
        parsed = None
    return LLMResponse(
        text=text,
        parsed=parsed,
        tokens_in=tokens_in or 0,
        tokens_out=tokens_out or 0,
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
        raw=raw,
    )


@contextmanager
def translated_errors(translate: Callable[[Exception], Exception | None]) -> Iterator[None]:
    """Re-raise SDK exceptions as the project's own; ``translate`` returns None for foreign ones."""
    try:
        yield
    except Exception as error:
        translated = translate(error)
        if translated is None:
            raise
        raise translated from error


def sdk_error_translator(
    *,
    status_error_type: type,
    connection_error_type: type,
    base_error_type: type,
    vendor_message: Callable[[Any], str],
) -> Callable[[Exception], Exception | None]:
    """Translation of an official SDK's errors (the OpenAI and Anthropic SDKs share this shape):
    an HTTP status by its code, a connection failure or timeout as temporary, anything else of the
    SDK as permanent, and foreign exceptions left alone (None)."""

    def translate(error: Exception) -> Exception | None:
        if isinstance(error, status_error_type):
            return status_error(error.status_code, vendor_message(error), error.response.headers)
        if isinstance(error, connection_error_type):  # includes the SDK's timeout error
            return LLMTemporaryError(f"{type(error).__name__}: {error}")
        if isinstance(error, base_error_type):
            return LLMPermanentError(f"{type(error).__name__}: {error}")
        return None

    return translate
