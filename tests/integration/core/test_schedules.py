"""Periodic jobs sync by name into the database scheduler, and admin edits survive a resync."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from workers.celery import app as celery_app
from workers.schedules import SCHEDULES, sync_schedules

pytestmark = pytest.mark.django_db


def _rows() -> list[tuple]:
    return list(
        PeriodicTask.objects.order_by("name").values_list(
            "name", "task", "crontab__minute", "crontab__hour", "expire_seconds", "enabled"
        )
    )


def test_syncing_twice_gives_the_same_rows():
    first = sync_schedules()
    rows = _rows()
    second = sync_schedules()

    assert set(first.values()) == {"created"}
    assert set(second.values()) == {"kept"}
    assert _rows() == rows
    assert len(rows) == len(SCHEDULES)


def test_every_declared_task_name_is_a_registered_task_with_an_expiry_that_runs_once_per_slot():
    celery_app.loader.import_default_modules()  # what a worker imports at start
    for schedule in SCHEDULES:
        task = celery_app.tasks[schedule.task]
        assert schedule.expires_seconds > 0
        assert getattr(task.run, "once_per_slot", False), f"{schedule.task} is not wrapped in once_per_slot"


def test_an_admin_edit_survives_a_resync_and_reset_restores_the_declaration():
    sync_schedules()
    task = PeriodicTask.objects.get(name=SCHEDULES[0].name)
    task.crontab = CrontabSchedule.objects.create(minute="*/7", timezone="UTC")
    task.enabled = False
    task.save()

    sync_schedules()
    edited = PeriodicTask.objects.get(pk=task.pk)
    assert (edited.crontab.minute, edited.enabled) == ("*/7", False)

    call_command("sync_schedules", "--reset", stdout=open("/dev/null", "w"))  # noqa: SIM115
    restored = PeriodicTask.objects.get(pk=task.pk)
    assert (restored.crontab.minute, restored.enabled) == (SCHEDULES[0].minute, True)


def test_the_health_snapshot_runs_every_minute_in_utc():
    sync_schedules()
    task = PeriodicTask.objects.get(task="health.snapshot_take")
    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == ("*", "*", "UTC")
    assert task.expire_seconds < 60
