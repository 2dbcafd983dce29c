"""The leader beat stamps each periodic message with the slot its entry was found due in, whatever
the clock reads when the message goes out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django_celery_beat.models import PeriodicTask
from kombu import Queue

from workers.celery import app as celery_app
from workers.periodic import SLOT_HEADER
from workers.scheduler import LeaderScheduler
from workers.schedules import sync_schedules

pytestmark = pytest.mark.django_db


def _sent_slot(scheduler: LeaderScheduler, entry, advance: bool) -> str:
    """Send ``entry`` through the scheduler into an in-memory broker and read back its slot header."""
    with celery_app.connection_for_write("memory://") as connection:
        routed = celery_app.amqp.router.route(dict(entry.options), entry.task)["queue"]
        queue = Queue(routed.name, routed.exchange, routed.routing_key, channel=connection.default_channel)
        queue.declare()
        scheduler.apply_async(entry, producer=connection.Producer(), advance=advance)
        message = queue.get(no_ack=True)
        assert message is not None, "the scheduler sent nothing"
        return message.headers[SLOT_HEADER]


@pytest.fixture
def sweep():
    sync_schedules()
    scheduler = LeaderScheduler(app=celery_app, lazy=True)
    model = PeriodicTask.objects.get(task="core.jobs_sweep")
    return scheduler, scheduler.Entry(model, app=celery_app)


def test_a_send_found_due_just_before_its_slot_ends_keeps_that_slot(sweep):
    scheduler, entry = sweep
    period = timedelta(seconds=int(entry.schedule.run_every.total_seconds()))
    slot = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    next_entry = scheduler.reserve(entry)  # what the beat's tick does before it sends
    # Found due a millisecond before its slot ends, sent (now) long after.
    entry.model.last_run_at = slot + period - timedelta(milliseconds=1)

    assert _sent_slot(scheduler, entry, advance=False) == slot.isoformat()
    # The next send is found due a full period later at the earliest: in the next slot, never this one.
    entry.model.last_run_at += period
    assert _sent_slot(scheduler, next_entry, advance=False) == (slot + period).isoformat()


def test_a_send_that_reserves_itself_takes_the_slot_of_the_moment_it_reserved(sweep):
    scheduler, entry = sweep
    period = int(entry.schedule.run_every.total_seconds())
    entry.model.last_run_at = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # the previous send's moment
    before = datetime.now(UTC)

    slot = datetime.fromisoformat(_sent_slot(scheduler, entry, advance=True))

    assert entry.model.last_run_at >= before  # advancing reserved it now
    reserved = entry.model.last_run_at.astimezone(UTC)
    assert slot.timestamp() == int(reserved.timestamp()) // period * period
