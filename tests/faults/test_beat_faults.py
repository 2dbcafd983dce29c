"""Two beats at once send every periodic job once per slot; when the leader dies the standby takes over."""

from __future__ import annotations

import time

import pytest
from django.db.models import Sum
from django.utils import timezone

from apps.core.models import PeriodicRun, SchedulerLease
from tests.faults.conftest import report
from tests.faults.harness import wait_until
from workers import app as celery_app
from workers.periodic import SLOT_HEADER

# Each waits for dozens of real jobs through a fault: minutes on a loaded machine, past the default 300 s.
pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True), pytest.mark.timeout(900)]
SWEEP = "core.jobs_sweep"  # every 2 s in these tests: many slots in a short test


def _slots(task: str = SWEEP) -> int:
    return PeriodicRun.objects.filter(task=task).count()


def _duplicates() -> int:
    return PeriodicRun.objects.aggregate(total=Sum("duplicates"))["total"] or 0


def test_two_beats_send_each_slot_once_and_the_standby_takes_over_when_the_leader_dies(stack):
    stack.worker("worker", concurrency=1)
    leader = stack.beat("beat-a")
    leader.wait_for_log(r"leads: it sends", timeout=60)
    standby = stack.beat("beat-b")
    standby.wait_for_log(r"beat: Starting", timeout=60)

    time.sleep(20)  # about ten 2-second slots with both beats up
    together = _slots()
    assert together >= 5
    assert _duplicates() == 0
    assert "leads: it sends" not in standby.text()
    assert SchedulerLease.objects.get().holder.split(":")[1] == str(leader.pid)

    leader.kill()
    killed = timezone.now()
    takeover = standby.wait_for_log(r"leads: it sends", timeout=60)
    wait_until(
        lambda: PeriodicRun.objects.filter(task=SWEEP, slot__gt=killed).count() >= 3, 30, "slots after"
    )

    figures = {
        "slots_with_two_beats": together,
        "duplicate_sends_ignored": _duplicates(),
        "takeover_seconds": round(takeover, 1),
        "slots_after_takeover": PeriodicRun.objects.filter(task=SWEEP, slot__gt=killed).count(),
    }
    report("two beats, leader killed", figures)
    assert takeover < 15  # the 6 s lease plus the standby's 5 s check
    # The new leader's sends fall in new slots; any catch-up send of a slot the old leader had sent
    # (a minute job) is counted and ignored, never run twice.
    assert PeriodicRun.objects.filter(task=SWEEP).aggregate(total=Sum("duplicates"))["total"] == 0


def test_a_beat_started_while_redis_is_down_stays_up_and_sends_once_redis_is_back(stack):
    stack.redis.stop()
    beat = stack.beat()
    beat.wait_for_log(r"leads: it sends", timeout=60)
    time.sleep(6)  # several sweep slots with no broker

    assert beat.process.poll() is None, beat.text()[-2000:]  # an outage must not kill the beat
    stack.redis.start()
    back = time.monotonic()
    stack.worker("worker", concurrency=1)  # a slot is recorded when its message runs
    wait_until(lambda: _slots() >= 3, 90, "sweeps sent after Redis came back")

    # A send cut off by the outage may have reached Redis and be sent again (delivery is at least
    # once): its slot's claim counts it and runs nothing. Two beats never send one slot twice (the
    # test above); here only the count is reported.
    report(
        "beat started with Redis down",
        {
            "sends_after_redis_back_seconds": round(time.monotonic() - back, 1),
            "duplicate_sends_ignored": _duplicates(),
        },
    )
    assert beat.process.poll() is None

    # What keeps such a send harmless, through this broker and worker: a message for a slot that
    # already ran is counted and runs nothing.
    before, slot = _duplicates(), PeriodicRun.objects.filter(task=SWEEP).earliest("slot").slot
    with celery_app.connection_for_write(stack.redis.url) as conn:
        celery_app.send_task(SWEEP, headers={SLOT_HEADER: slot.isoformat()}, connection=conn)
    wait_until(lambda: _duplicates() == before + 1, 60, "the repeated slot counted")
    assert PeriodicRun.objects.filter(task=SWEEP, slot=slot).count() == 1
