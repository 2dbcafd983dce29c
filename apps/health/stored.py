"""The aggregate components of the health document, read back from the newest stored snapshot.

A worker computes every component in the snapshot job (celery-beat sends it every minute; the API
and the command request more), stores the document and puts the newest snapshot's components in
the cache (``newest_publish``). ``GET /api/health`` checks the database, the cache and the broker
itself and reads the other components from that cache entry, or, when it is missing (Redis down or
restarted, or a per-process cache), from the database in one indexed query: its cost does not grow
with the candles, series, accounts or strategies stored.

- Each component carries ``checked_at``, when its check ran.
- A snapshot older than ``HEALTH_SCHEDULER_MAX_AGE_SECONDS`` is not recomputed on the request:
  its components are reported as they were, at least degraded, their message starting with
  "Stale: last computed at ...". (A cache entry that old is checked against the database first:
  the cache may lag behind the database, never lead it.)
- ``scheduler`` is never read stale: it is the age of the newest beat-driven snapshot, now.
- What no snapshot holds (none taken yet, at first start; a component added since) is left out:
  the caller computes it once on the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Subquery

from apps.core.models import JobStatus
from apps.health.checks import (
    DEGRADED,
    HEALTHY,
    STORED_COMPONENTS,
    UNHEALTHY,
    Component,
    scheduler_component,
)
from apps.health.models import HealthSnapshot, SnapshotTrigger

CACHE_KEY = "health:newest-snapshot"
# Longer than any snapshot stays fresh: past it the database answers, with the same components.
CACHE_SECONDS = 3600
_SEVERITY = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}


@dataclass(frozen=True)
class NewestSnapshot:
    """What the endpoint needs of the newest completed snapshot."""

    finished_at: datetime
    last_beat: datetime | None  # when the newest beat-driven snapshot finished
    components: dict[str, Component]


def newest_snapshot() -> NewestSnapshot | None:
    """The newest completed snapshot from the database: one query, both of its parts indexed."""
    completed = HealthSnapshot.objects.filter(status=JobStatus.COMPLETED, finished_at__isnull=False)
    beat = completed.filter(trigger=SnapshotTrigger.BEAT).order_by("-finished_at").values("finished_at")[:1]
    row = (
        completed.order_by("-finished_at")
        .annotate(last_beat=Subquery(beat))
        .values_list("finished_at", "last_beat", "document__components")
        .first()
    )
    if row is None:
        return None
    finished_at, last_beat, components = row
    return NewestSnapshot(finished_at, last_beat, components if isinstance(components, dict) else {})


def newest_publish() -> None:
    """Put the newest completed snapshot in the cache, where requests read it first. Called once a
    snapshot is stored; re-reading the database makes the entry the newest whichever finished last.
    A plain dict, not the dataclass: an entry left by another version of the code still loads."""
    newest = newest_snapshot()
    cache.set(CACHE_KEY, None if newest is None else vars(newest), timeout=CACHE_SECONDS)


def _cached() -> NewestSnapshot | None:
    entry = cache.get(CACHE_KEY)
    try:
        return NewestSnapshot(**entry) if isinstance(entry, dict) else None
    except TypeError:  # written by a version with other fields
        return None


def _is_stale(snapshot: NewestSnapshot, now: datetime) -> bool:
    return (now - snapshot.finished_at).total_seconds() > settings.HEALTH_SCHEDULER_MAX_AGE_SECONDS


def _stale(component: Component, computed_at: datetime) -> Component:
    status = component.get("status", UNHEALTHY)
    worse = status if _SEVERITY.get(status, 2) >= _SEVERITY[DEGRADED] else DEGRADED
    note = f"Stale: last computed at {computed_at:%Y-%m-%d %H:%M:%S} UTC"
    message = component.get("message")
    return {**component, "status": worse, "message": f"{note}; {message}" if message else note}


def stored_components(*, now: datetime) -> dict[str, Component]:
    """The stored components of the newest completed snapshot, as of ``now`` (see the module's rules):
    a cache read, or one query when the cache has no fresh entry."""
    snapshot = _cached()
    if snapshot is None or _is_stale(snapshot, now):
        snapshot = newest_snapshot()
    if snapshot is None:
        return {}
    stale = _is_stale(snapshot, now)
    components: dict[str, Any] = {}
    for name in STORED_COMPONENTS:
        if name == "scheduler":
            scheduler = scheduler_component(snapshot.last_beat, now=now)
            components[name] = {**scheduler, "checked_at": now.isoformat()}
            continue
        component = snapshot.components.get(name)
        if not isinstance(component, dict):
            continue
        component = {"checked_at": snapshot.finished_at.isoformat(), **component}
        components[name] = _stale(component, snapshot.finished_at) if stale else component
    return components
