"""What an entry point enqueued: the messages waiting for the transaction's commit, none of them sent."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from apps.core.dispatch import job_dispatch, send


def enqueued(callbacks: Iterable[Any]) -> list[tuple[str, tuple]]:
    """(task name, args) of each ``job_dispatch_on_commit``, ``send_on_commit`` or ``delay_on_commit``."""
    found = []
    for callback in callbacks:
        if callback.func is job_dispatch:
            task, job, args = callback.args
            found.append((task.name, tuple(args) if args is not None else (job.pk,)))
        elif callback.func is send:
            task, args = callback.args
            found.append((task.name, tuple(args)))
        else:
            found.append((callback.func.__self__.name, callback.args))
    return sorted(found)
