"""The Celery application: JSON only, late acks, per-queue time limits, schedules from the database."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")

from django.conf import settings

QUEUES = ("default", "backtests", "training", "llm", "orders")

# Task-name prefixes and the queue they run on; anything else runs on `default`.
ROUTES = {
    "strategies.backtest_": "backtests",
    "strategies.optimize_": "backtests",
    "strategies.daily_": "backtests",
    "training.": "training",
    "llm.": "llm",
    "strategies.generate_": "llm",
    "trading.": "orders",
}

# One task module per domain; each issue that adds a domain's jobs adds its module here.
TASK_MODULES = (
    "workers.health",
    "workers.market",
    "workers.training",
    "workers.strategies",
    "workers.trading",
)


def queue_for(task_name: str) -> str:
    """The queue a task runs on, by the longest matching name prefix."""
    matches = [prefix for prefix in ROUTES if task_name.startswith(prefix)]
    return ROUTES[max(matches, key=len)] if matches else "default"


def route_task(
    name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any
) -> dict[str, str]:
    return {"queue": queue_for(name)}


class QueueTimeLimits:
    """Celery task annotation giving every task the soft and hard time limits of its queue."""

    def annotate(self, task: Any) -> dict[str, int]:
        soft, hard = settings.CELERY_QUEUE_TIME_LIMITS[queue_for(task.name)]
        return {"soft_time_limit": soft, "time_limit": hard}


app = Celery("tradingsite")
app.conf.update(
    broker_url=settings.CELERY_BROKER_URL,
    broker_transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    broker_connection_retry_on_startup=True,
    task_always_eager=settings.CELERY_TASK_ALWAYS_EAGER,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    result_backend=None,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_send_task_events=False,
    timezone="UTC",
    enable_utc=True,
    task_default_queue="default",
    task_queues=[Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES],
    task_routes=(route_task,),
    task_annotations=(QueueTimeLimits(),),
    beat_scheduler="django_celery_beat.schedulers:DatabaseScheduler",
    worker_hijack_root_logger=False,
    include=list(TASK_MODULES),
)


@signals.beat_init.connect
def _sync_schedules_on_beat_start(**_: Any) -> None:
    """Beat starts with every declared schedule present in the database scheduler."""
    from workers.schedules import sync_schedules

    sync_schedules()
    # Probe once at start so the health document does not wait five minutes for its first answer.
    app.send_task("health.external_apis_probe")
