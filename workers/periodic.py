"""Periodic tasks run once per schedule slot, whatever number of messages arrive for it.

The leader beat (``workers.scheduler``) stamps each message with the slot it was due for; a task
wrapped in :func:`once_per_slot` records the slot before it works and does nothing for a slot it
already ran. A message without a slot (a manual call, ``celery call``) always runs.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import ParamSpec, TypeVar

from celery import current_task

from apps.core.scheduling import periodic_slot_claim

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

SLOT_HEADER = "periodic_slot"


def once_per_slot(work: Callable[P, R]) -> Callable[P, R | None]:
    """Run ``work`` unless this task already ran for the slot its message was sent for."""

    @functools.wraps(work)
    def run(*args: P.args, **kwargs: P.kwargs) -> R | None:
        request = current_task.request if current_task else None
        slot = request.get(SLOT_HEADER) if request is not None else None
        if slot and not periodic_slot_claim(task=current_task.name, slot=datetime.fromisoformat(slot)):
            return None
        return work(*args, **kwargs)

    run.once_per_slot = True  # type: ignore[attr-defined]
    return run
