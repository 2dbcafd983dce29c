"""Periodic jobs, declared once and synced by name into django-celery-beat's database scheduler.

A schedule that is missing from the database is created; one that exists is left as it is, so
an edit made in the admin (a new crontab, disabled) survives every restart. ``reset=True``
restores the declared definition. Every task named here is wrapped in
``workers.periodic.once_per_slot``, so a second send for one slot does nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask


@dataclass(frozen=True)
class Schedule:
    """One periodic job: a name for the admin, a task name, a crontab in UTC (or, with
    ``every_seconds``, a fixed interval) and an expiry."""

    name: str
    task: str
    minute: str = "*"
    hour: str = "*"
    day_of_week: str = "*"
    day_of_month: str = "*"
    month_of_year: str = "*"
    expires_seconds: int = 60
    every_seconds: int | None = None
    kwargs: dict = field(default_factory=dict)
    description: str = ""


SCHEDULES: tuple[Schedule, ...] = (
    Schedule(
        name="health: snapshot every minute",
        task="health.snapshot_take",
        expires_seconds=50,
        description="Stores the health document; its age is the scheduler and worker heartbeat.",
    ),
    Schedule(
        name="jobs: sweep lost and orphaned jobs",
        task="core.jobs_sweep",
        every_seconds=settings.JOB_SWEEP_INTERVAL_SECONDS,
        expires_seconds=max(settings.JOB_SWEEP_INTERVAL_SECONDS - 5, 5),
        description="Re-sends PENDING jobs whose message was lost and RUNNING jobs whose worker died; "
        "fails those out of attempts with the reason.",
    ),
    Schedule(
        name="health: probe external APIs every 5 minutes",
        task="health.external_apis_probe",
        minute="*/5",
        expires_seconds=240,
        description="Checks that Binance and CoinGecko answer, so /api/health never waits on the internet.",
    ),
    Schedule(
        name="market: analysis every 30 minutes",
        task="market.analysis_run_all",
        minute="*/30",
        expires_seconds=25 * 60,
        description="Fetch new candles, compute indicators and patterns, store signals and events.",
    ),
    Schedule(
        name="training: retrain every 6 hours",
        task="training.scheduled_run",
        minute="0",
        hour="0,6,12,18",
        expires_seconds=5 * 3600,
        description="Fetch new candles, train a candidate per instrument, timeframe and model type; "
        "promote it if it beats the champion on the same holdout.",
    ),
    Schedule(
        name="strategies: daily update at 02:00 UTC",
        task="strategies.daily_update",
        minute="0",
        hour="2",
        expires_seconds=3600,
        description="Backtest active strategies on recent bars, retire underperformers, "
        "re-optimise and adopt better parameters.",
    ),
    Schedule(
        name="trading: orchestrator every 5 minutes",
        task="trading.orchestrator_run",
        minute="*/5",
        expires_seconds=240,
        description="Evaluate active strategies on the newest closed candle and place their orders.",
    ),
    Schedule(
        name="trading: match paper orders every minute",
        task="trading.paper_orders_match",
        expires_seconds=50,
        description="Fill resting paper limit and stop orders against new candles.",
    ),
    Schedule(
        name="trading: reconcile live accounts every minute",
        task="trading.orders_reconcile_all",
        expires_seconds=50,
        description="Sync open orders, fills and balances with the exchange and record every repair.",
    ),
    Schedule(
        name="trading: portfolio snapshots every 5 minutes",
        task="trading.portfolio_snapshot_all",
        minute="*/5",
        expires_seconds=240,
        description="Store each account's portfolio for the history and the performance monitor.",
    ),
    Schedule(
        name="trading: strategy performance every 5 minutes",
        task="trading.performance_record_all",
        minute="1-59/5",
        expires_seconds=240,
        description="Per-strategy live PnL and drawdown beside the backtest over the same period.",
    ),
    Schedule(
        name="trading: prune idempotency keys daily",
        task="trading.idempotency_keys_prune",
        minute="41",
        hour="3",
        expires_seconds=3600,
        description="Forget API idempotency keys older than TRADING_IDEMPOTENCY_KEY_TTL_HOURS.",
    ),
    Schedule(
        name="jobs: prune slot records and sweep reports daily",
        task="core.records_prune",
        minute="23",
        hour="3",
        expires_seconds=3600,
        description="Forgets periodic-slot records older than 7 days and sweep reports older than a day; "
        "deletes expired API tokens.",
    ),
    Schedule(
        name="health: prune old snapshots daily",
        task="health.snapshots_prune",
        minute="17",
        hour="3",
        expires_seconds=3600,
        description="Deletes health snapshots older than HEALTH_SNAPSHOT_RETENTION_DAYS.",
    ),
)


def _crontab(schedule: Schedule) -> CrontabSchedule:
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=schedule.minute,
        hour=schedule.hour,
        day_of_week=schedule.day_of_week,
        day_of_month=schedule.day_of_month,
        month_of_year=schedule.month_of_year,
        timezone="UTC",
    )
    return crontab


def _definition(schedule: Schedule) -> dict:
    if schedule.every_seconds:
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=schedule.every_seconds, period=IntervalSchedule.SECONDS
        )
        timing = {"interval": interval, "crontab": None}
    else:
        timing = {"interval": None, "crontab": _crontab(schedule)}
    return {
        "task": schedule.task,
        **timing,
        "expire_seconds": schedule.expires_seconds,
        "kwargs": json.dumps(schedule.kwargs),
        "description": schedule.description,
    }


@transaction.atomic
def sync_schedules(*, reset: bool = False, schedules: tuple[Schedule, ...] = SCHEDULES) -> dict[str, str]:
    """Create missing periodic tasks (or, with ``reset``, restore them); return what happened by name."""
    outcome = {}
    for schedule in schedules:
        task = PeriodicTask.objects.filter(name=schedule.name).first()
        if task is None:
            PeriodicTask.objects.create(name=schedule.name, **_definition(schedule))
            outcome[schedule.name] = "created"
        elif reset:
            for attribute, value in _definition(schedule).items():
                setattr(task, attribute, value)
            task.enabled = True
            task.save()
            outcome[schedule.name] = "reset"
        else:
            outcome[schedule.name] = "kept"
    return outcome
