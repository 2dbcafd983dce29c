"""Market answers rendered once per write of their candles, reused while their series is unchanged."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse, HttpResponseBase
from django.utils.cache import get_conditional_response
from rest_framework.request import Request

from apps.market.models import CandleSeries

# Answers each web process keeps in its own memory besides the shared cache: reading a 1000-candle
# answer back from Redis was a tenth of a reuse's time.
MEMORY_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Answer:
    """A rendered answer and the version of the series it was built from."""

    series_id: int
    written: str
    body: bytes
    expires: float


class _Memory:
    """The newest answers this process rendered or read, at most MEMORY_BYTES of them (thread-safe:
    gunicorn serves requests on several threads)."""

    def __init__(self) -> None:
        self._answers: OrderedDict[str, Answer] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> Answer | None:
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
            return answer

    def put(self, key: str, answer: Answer) -> None:
        with self._lock:
            old = self._answers.pop(key, None)
            self._bytes += len(answer.body) - (len(old.body) if old else 0)
            self._answers[key] = answer
            while self._bytes > MEMORY_BYTES and self._answers:
                self._bytes -= len(self._answers.popitem(last=False)[1].body)

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()
            self._bytes = 0


memory = _Memory()


def _request_key(request: Request) -> str:
    """The endpoint and every query parameter, under the code's version (an upgrade renders anew)."""
    query = "&".join(f"{name}={value}" for name, value in sorted(request.query_params.lists()))
    identity = f"{settings.APP_VERSION}\n{request.path}\n{query}"
    return "market-answer:" + hashlib.sha256(identity.encode()).hexdigest()[:40]


def _respond(request: Request, key: str, answer: Answer) -> HttpResponseBase:
    """The body, or 304 when the client already holds it (its ``If-None-Match`` names this ETag)."""
    tag = hashlib.sha256(f"{key}\n{answer.written}".encode()).hexdigest()[:32]
    etag = f'W/"{tag}"'
    response = get_conditional_response(request, etag=etag) or HttpResponse(
        answer.body, content_type="application/json"
    )
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"  # the caller's own, and checked again before reuse
    return response


def reused_answer(request: Request) -> HttpResponseBase | None:
    """The answer rendered earlier for this very query, if its series has not been written since;
    None when there is none to reuse (build one with :func:`market_answer`).

    Dashboards and bots poll the same newest candles and indicators many times between two candles.
    A reuse costs one read of the series' summary row by its key, not the query's validation, a
    read of the candles, the indicators and a render. The query was validated when its answer was
    built; a change to the instruments it named shows once the series is written again or the answer
    expires (``MARKET_ANSWER_CACHE_SECONDS``).
    """
    if not settings.MARKET_ANSWER_CACHE_SECONDS:
        return None
    key = _request_key(request)
    answer = memory.get(key)
    if answer is None:
        answer = cache.get(key)
        if answer is None:
            return None
        memory.put(key, answer)
    if answer.expires < time.time():
        return None
    current = (
        CandleSeries.objects.filter(pk=answer.series_id).only("updated_at", "count", "newest_open").first()
    )
    if current is None or current.version != answer.written:
        return None
    return _respond(request, key, answer)


def market_answer(
    request: Request, series: CandleSeries, build: Callable[[], dict[str, Any]]
) -> HttpResponseBase:
    """The JSON answer ``build`` makes from ``series``, rendered and kept for reuse."""
    seconds = settings.MARKET_ANSWER_CACHE_SECONDS
    answer = Answer(
        series_id=series.pk,
        written=series.version,
        # orjson: the standard library's encoder was a third of a 1000-candle answer's time.
        body=orjson.dumps(build()),
        expires=time.time() + seconds,
    )
    key = _request_key(request)
    if seconds:
        memory.put(key, answer)
        cache.set(key, answer, seconds)
    return _respond(request, key, answer)
