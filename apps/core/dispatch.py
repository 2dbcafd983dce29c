"""Sending a job's message after its row is committed, tolerating a broker that is down.

The row is the outbox: an entry point commits the PENDING row first, then sends its message. If
the broker is unreachable at that moment the row stays PENDING with no ``dispatched_at``, the
caller still answers that the job was accepted, and the sweeper sends it once the broker is back.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

from celery import Task, current_app
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerOperationalError

from apps.core.models import Job

logger = logging.getLogger(__name__)

# What publishing raises when the broker cannot be reached (kombu wraps its transports' errors).
BROKER_UNAVAILABLE = (BrokerOperationalError, ConnectionError, OSError)


def job_dispatch(task: Task | str, job: Job, args: Sequence[object] | None = None) -> bool:
    """Send the job's message now and record it on the row; False (logged) when the broker is down.

    ``task`` is a task object or a registered task name; ``args`` default to the row's id.
    """
    arguments = list(args) if args is not None else [job.pk]
    try:
        if isinstance(task, str):
            current_app.send_task(task, args=arguments)
        else:
            task.apply_async(args=arguments)
    except BROKER_UNAVAILABLE as error:
        name = task if isinstance(task, str) else task.name
        logger.warning(
            "broker unavailable: %s %s is kept PENDING and will be sent by the sweeper (%s: %s)",
            name,
            job.pk,
            type(error).__name__,
            error,
        )
        return False
    type(job).objects.filter(pk=job.pk).update(dispatched_at=timezone.now(), dispatches=F("dispatches") + 1)
    return True


def job_dispatch_on_commit(task: Task | str, job: Job, args: Sequence[object] | None = None) -> None:
    """Send the job's message once the surrounding transaction commits (at once outside one)."""
    transaction.on_commit(functools.partial(job_dispatch, task, job, args))


def send(task: Task, args: Sequence[object]) -> bool:
    """Send a message whose work is recovered without it (a live order that the reconciliation
    submits when its message never came); False (logged) when the broker is down."""
    try:
        task.apply_async(args=list(args))
    except BROKER_UNAVAILABLE as error:
        logger.warning(
            "broker unavailable: %s%s not sent (%s); recovery will pick it up", task.name, tuple(args), error
        )
        return False
    return True


def send_on_commit(task: Task, args: Sequence[object]) -> None:
    """:func:`send` once the surrounding transaction commits."""
    transaction.on_commit(functools.partial(send, task, args))
