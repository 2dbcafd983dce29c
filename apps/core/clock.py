"""The market clock: what time it is for candles, slots, signals and orders.

Every service that asks "which candles have closed", "which slot is this", "is this data stale" or
"when did this order happen" reads :func:`now`. It is the wall clock, except while a replay
(``python manage.py replay``) plays stored history as if it were live: then it is the replay's
moment, so analysis, training, the daily update, the orchestrator, paper matching and snapshots
all run on history exactly as they would have run then. Infrastructure (job leases, the sweeper,
the beat leader, LLM budgets) keeps the wall clock: a replay must not expire a lease.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.utils import timezone

# The moment being replayed in this process (the replay command is one process), or None.
_replayed: list[datetime] = []


def now() -> datetime:
    """The market's current moment (UTC): the replay's while one runs in this process, else the wall clock."""
    return _replayed[-1] if _replayed else timezone.now()


@contextmanager
def replaying(moment: datetime) -> Iterator[None]:
    """Run the block at ``moment`` (timezone-aware): every :func:`now` in this process returns it."""
    if moment.tzinfo is None:
        raise ValueError("a replay moment must be timezone-aware")
    _replayed.append(moment)
    try:
        yield
    finally:
        _replayed.pop()
