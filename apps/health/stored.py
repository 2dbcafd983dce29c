"""The aggregate components of the health document, read back from the newest stored snapshot.

A worker computes every component in the snapshot job (celery-beat sends it every minute; the API
and the command request more) and stores the document. ``GET /api/health`` checks the database,
the cache and the broker itself and reads the other components from the newest completed
snapshot: one indexed query, whatever the number of candles, series, accounts or strategies.

- Each component carries ``checked_at``, when its check ran.
- A snapshot older than ``HEALTH_SCHEDULER_MAX_AGE_SECONDS`` is not recomputed on the request:
  its components are reported as they were, at least degraded, their message starting with
  "Stale: last computed at ...".
- ``scheduler`` is never read stale: it is the age of the newest beat-driven snapshot, now.
- What no snapshot holds (none taken yet, at first start; a component added since) is left out:
  the caller computes it once on the request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings

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

_SEVERITY = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}


def _beat_finished_last() -> datetime | None:
    return (
        HealthSnapshot.objects.filter(trigger=SnapshotTrigger.BEAT, status=JobStatus.COMPLETED)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )


def _stale(component: Component, computed_at: datetime) -> Component:
    status = component.get("status", UNHEALTHY)
    worse = status if _SEVERITY.get(status, 2) >= _SEVERITY[DEGRADED] else DEGRADED
    note = f"Stale: last computed at {computed_at:%Y-%m-%d %H:%M:%S} UTC"
    message = component.get("message")
    return {**component, "status": worse, "message": f"{note}; {message}" if message else note}


def stored_components(*, now: datetime) -> dict[str, Component]:
    """The stored components of the newest completed snapshot, as of ``now`` (see the module's rules).

    One query when the newest snapshot is beat-driven (the usual case), two otherwise.
    """
    row = (
        HealthSnapshot.objects.filter(status=JobStatus.COMPLETED, finished_at__isnull=False)
        .order_by("-finished_at")
        .values_list("finished_at", "trigger", "document__components")
        .first()
    )
    if row is None:
        return {}
    finished_at, trigger, stored = row
    last_beat = finished_at if trigger == SnapshotTrigger.BEAT else _beat_finished_last()
    stale = (now - finished_at).total_seconds() > settings.HEALTH_SCHEDULER_MAX_AGE_SECONDS
    components: dict[str, Any] = {}
    for name in STORED_COMPONENTS:
        if name == "scheduler":
            components[name] = {**scheduler_component(last_beat, now=now), "checked_at": now.isoformat()}
            continue
        component = (stored or {}).get(name)
        if not isinstance(component, dict):
            continue
        component = {"checked_at": finished_at.isoformat(), **component}
        components[name] = _stale(component, finished_at) if stale else component
    return components
