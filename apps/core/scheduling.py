"""Keeping scheduled work single: one beat sends (a leader lease) and one run per schedule slot.

Two ``celery beat`` processes are a common deployment accident. Each beat asks for the leader
lease before it sends anything; the holder renews it while alive and a standby takes it over once
it expires, within ``BEAT_LEADER_LEASE_SECONDS``. Each periodic message carries its slot (the
minute it was due), and a task records the slot before it works, so a second send for the same
slot, from a second beat at a takeover or a redelivery, does nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.core.models import PeriodicRun, SchedulerLease

logger = logging.getLogger(__name__)

BEAT_LEASE = "celery-beat"


def leadership_hold(*, holder: str, ttl_seconds: float, name: str = BEAT_LEASE) -> bool:
    """Take or renew the named lease for ``holder``; False while someone else holds it unexpired."""
    now = timezone.now()
    until = now + timedelta(seconds=ttl_seconds)
    if SchedulerLease.objects.filter(name=name, holder=holder, expires_at__gte=now).update(expires_at=until):
        return True
    taken = SchedulerLease.objects.filter(Q(expires_at__lt=now) | Q(holder=holder), name=name).update(
        holder=holder, acquired_at=now, expires_at=until
    )
    if taken:
        return True
    try:
        with transaction.atomic():
            SchedulerLease.objects.create(name=name, holder=holder, acquired_at=now, expires_at=until)
    except IntegrityError:  # another process created it first: it leads
        return False
    return True


def leadership_release(*, holder: str, name: str = BEAT_LEASE) -> None:
    """Give the lease up at a clean shutdown, so a standby takes over at its next check."""
    SchedulerLease.objects.filter(name=name, holder=holder).update(expires_at=timezone.now())


def periodic_slot_claim(*, task: str, slot: datetime) -> bool:
    """Record that ``task`` runs for ``slot``; False (and the duplicate counted) when it already did."""
    try:
        with transaction.atomic():
            PeriodicRun.objects.create(task=task, slot=slot)
    except IntegrityError:
        PeriodicRun.objects.filter(task=task, slot=slot).update(duplicates=F("duplicates") + 1)
        logger.info("%s already ran for the slot %s: this send does nothing", task, slot.isoformat())
        return False
    return True


def periodic_runs_prune(*, older_than_days: int = 7) -> int:
    """Forget slot records older than the retention (the uniqueness only matters for recent slots)."""
    deleted, _ = PeriodicRun.objects.filter(
        slot__lt=timezone.now() - timedelta(days=older_than_days)
    ).delete()
    return deleted
