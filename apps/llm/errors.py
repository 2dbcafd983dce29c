"""The llm app's own exceptions: SDK errors become these at the provider edge."""

from __future__ import annotations

from apps.core.errors import PermanentError, TemporaryError


class LLMError(Exception):
    """Anything that went wrong asking a language model."""


class LLMTemporaryError(LLMError, TemporaryError):
    """Worth retrying: a timeout, a dropped connection, a rate limit (429) or a 5xx answer.

    ``retry_after`` is the wait in seconds the provider asked for, when it said so.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LLMPermanentError(LLMError, PermanentError):
    """Retrying will not help: refused credentials, a request the provider rejects, an unknown model."""


class LLMOutputError(LLMError, ValueError):
    """The model's answer is not one JSON object (empty, prose, cut off, duplicate keys, NaN)."""


class LLMUnavailableError(LLMError):
    """No provider produced a valid answer; ``failures`` says why, one line a provider."""

    def __init__(self, failures: list[str]) -> None:
        super().__init__("No LLM provider gave a usable answer: " + "; ".join(failures))
        self.failures = failures
