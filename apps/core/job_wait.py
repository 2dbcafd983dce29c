"""Long polling of a job: a detail GET with ``?wait=seconds`` answers when the job ends, or then.

A client that polls a job every tenth of a second sees its result up to a tenth late and spends a
full request (token, visibility, serializer: about 10 ms of CPU) on every look; on a small machine
those requests take CPU from the workers running the job. With ``wait`` the server looks at the
job's status column alone every ``CHECK_SECONDS`` and answers once it has ended. A waiting request
holds a web thread, so each process lets at most ``API_JOB_WAITERS`` requests wait at once; the
next answers at once, as without ``wait``, and its client polls as before.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from apps.core.models import UNFINISHED, Job

J = TypeVar("J", bound=Job)

CHECK_SECONDS = 0.02  # a status query by primary key: about 0.15 ms of CPU per look

WAIT_PARAMETER = OpenApiParameter(
    "wait",
    OpenApiTypes.FLOAT,
    description=(
        "Seconds (at most API_JOB_WAIT_MAX_SECONDS, 20 by default) to hold the answer while the job is "
        "pending or running: it comes as soon as the job ends, or with the job still unfinished when "
        "the time is up. Answered at once when the server already holds API_JOB_WAITERS waiting requests."
    ),
)

_waiting = 0  # requests of this process waiting now
_waiting_lock = threading.Lock()


def wait_seconds(request: Request) -> float:
    """The ``wait`` query parameter in seconds (0 when absent); a 400 naming it when it is not a
    number from 0 to ``API_JOB_WAIT_MAX_SECONDS``."""
    raw = request.query_params.get("wait")
    if raw is None:
        return 0.0
    limit = settings.API_JOB_WAIT_MAX_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= limit:  # NaN fails both comparisons
        raise ValidationError({"wait": [f"a number of seconds from 0 to {limit:g}, got {raw[:32]!r}"]})
    return seconds


def job_awaited(request: Request, fetch: Callable[[], J]) -> J:
    """The job ``fetch`` reads (it checks that the requester may see it, or raises the 404), read
    again once it has ended if the request asks to wait for that (``?wait=``, a 400 when bad)."""
    seconds = wait_seconds(request)
    job = fetch()
    return fetch() if _waited(job, seconds) else job


def _waited(job: Job, seconds: float) -> bool:
    """Hold the request up to ``seconds`` while ``job`` is unfinished; True when it ended meanwhile,
    False when it had already ended, is still running or no waiting place was free. Reads only the
    job's status, by primary key."""
    if seconds <= 0 or job.is_finished:
        return False
    with _waiting_place() as placed:
        if not placed:
            return False
        unfinished = type(job).objects.filter(pk=job.pk, status__in=UNFINISHED)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(CHECK_SECONDS, left))
            if not unfinished.exists():
                return True
        return False


@contextmanager
def _waiting_place() -> Iterator[bool]:
    """One of the process's ``API_JOB_WAITERS`` waiting places for the block, if one is free."""
    global _waiting
    with _waiting_lock:
        placed = _waiting < settings.API_JOB_WAITERS
        _waiting += placed
    try:
        yield placed
    finally:
        with _waiting_lock:
            _waiting -= placed
