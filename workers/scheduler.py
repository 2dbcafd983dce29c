"""The beat scheduler: django-celery-beat's database scheduler that sends only while it leads.

Every beat process asks for the leader lease (``apps.core.scheduling``) at each tick. The holder
renews it and sends the due periodic jobs, each stamped with its slot; any other beat stands by,
sending nothing, and takes over once the leader's lease expires (``BEAT_LEADER_LEASE_SECONDS``
after its last renewal: the leader was killed or lost its database). On taking over it reloads
the schedule from the database, so it continues where the leader stopped; a slot the old leader
already sent is refused by the task (``workers.periodic``).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from celery.schedules import schedule as interval_schedule
from celery.utils.time import maybe_make_aware
from django.conf import settings
from django.db import DatabaseError, InterfaceError, close_old_connections
from django_celery_beat.schedulers import DatabaseScheduler

from apps.core.dispatch import BROKER_UNAVAILABLE
from apps.core.scheduling import leadership_hold, leadership_release
from workers.periodic import SLOT_HEADER
from workers.schedules import sync_schedules

logger = logging.getLogger(__name__)

STANDBY_CHECK_SECONDS = 5.0


def slot_of(entry: Any, due: datetime) -> datetime:
    """The slot of a send of ``entry`` found due at ``due``: the minute for crontab schedules, the
    interval's own period for interval schedules."""
    due = maybe_make_aware(due).astimezone(UTC)
    if isinstance(entry.schedule, interval_schedule):
        period = max(int(entry.schedule.run_every.total_seconds()), 1)
        return datetime.fromtimestamp(int(due.timestamp()) // period * period, tz=UTC)
    return due.replace(second=0, microsecond=0)


class LeaderScheduler(DatabaseScheduler):
    """Sends periodic jobs only while this process holds the beat leader lease."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.leading = False
        self._renewed_at = 0.0
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        leading = self._hold()
        if leading and not self.leading:
            logger.info("beat %s leads: it sends the periodic jobs", self.holder)
            self._take_over()
        elif self.leading and not leading:
            logger.warning("beat %s lost the leader lease: standing by", self.holder)
        self.leading = leading
        if not leading:
            return STANDBY_CHECK_SECONDS
        return min(super().tick(*args, **kwargs), self._renew_every())

    def _renew_every(self) -> float:
        return max(settings.BEAT_LEADER_LEASE_SECONDS / 6, 1.0)

    def _hold(self) -> bool:
        now = time.monotonic()
        if self.leading and now - self._renewed_at < self._renew_every():
            return True
        try:
            close_old_connections()
            held = leadership_hold(holder=self.holder, ttl_seconds=settings.BEAT_LEADER_LEASE_SECONDS)
        except (DatabaseError, InterfaceError) as error:  # cannot prove the lease: send nothing
            logger.warning("beat %s cannot reach the database for the lease: %s", self.holder, error)
            return False
        if held:
            self._renewed_at = now
        return held

    def _take_over(self) -> None:
        """Start from what the database says was last sent, with every declared schedule present."""
        sync_schedules()
        self._initial_read = True
        self._heap = None
        # Probe once at the start so the health document does not wait five minutes for its answer;
        # with the broker down the scheduled probe does it later (a beat must not die of an outage).
        try:
            self.app.send_task("health.external_apis_probe")
        except BROKER_UNAVAILABLE as error:
            logger.warning("beat %s: the first external API probe was not sent: %s", self.holder, error)

    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        if advance:
            entry = self.reserve(entry)
        # The slot is the moment the entry was found due (reserve stamps it on the shared model), not
        # the clock at sending: a send found due just before a slot's end but sent just after it
        # would share the next send's slot. Moments found due are a full period apart, so their slots differ.
        slot = slot_of(entry, entry.model.last_run_at)
        headers = {**entry.options.get("headers", {}), SLOT_HEADER: slot.isoformat()}
        entry.options = {**entry.options, "headers": headers}
        return super().apply_async(entry, producer=producer, advance=False, **kwargs)

    def close(self) -> None:
        super().close()
        if self.leading:
            try:
                leadership_release(holder=self.holder)
            except (DatabaseError, InterfaceError) as error:
                logger.warning("beat %s could not release the lease: %s", self.holder, error)
