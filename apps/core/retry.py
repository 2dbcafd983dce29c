"""The one way this project retries a temporary error: tenacity, with exponential backoff that
honours a server's Retry-After, an attempt cap and an optional deadline."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

T = TypeVar("T")
Errors = type[BaseException] | tuple[type[BaseException], ...]


def retry_temporary(
    attempt: Callable[[], T],
    *,
    temporary: Errors,
    attempts: int,
    backoff_seconds: float,
    max_wait_seconds: float = math.inf,
    retry_after: Callable[[BaseException], float | None] = lambda error: None,
    give_up: Callable[[BaseException], bool] = lambda error: False,
    deadline: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``attempt`` until it returns, at most ``attempts`` times in all, retrying only the
    ``temporary`` errors that ``give_up`` does not refuse; the last error propagates.

    Between attempts it waits ``backoff_seconds * 2**n`` (n = 0, 1, ...) or the error's
    ``retry_after`` when longer, at most ``max_wait_seconds`` and never past ``deadline`` (a
    ``time.monotonic()`` value).
    """

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        seconds = backoff_seconds * 2 ** (state.attempt_number - 1)
        if error is not None:
            seconds = max(seconds, retry_after(error) or 0.0)
        seconds = min(seconds, max_wait_seconds)
        if deadline is not None:
            seconds = min(seconds, max(0.0, deadline - time.monotonic()))
        return seconds

    retrying = Retrying(
        retry=retry_if_exception(lambda error: isinstance(error, temporary) and not give_up(error)),
        stop=stop_after_attempt(attempts),
        wait=wait,
        sleep=sleep,
        reraise=True,
    )
    return retrying(attempt)
