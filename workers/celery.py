"""The Celery application: JSON only, late acks, per-queue time limits, one leader beat.

Acknowledgement: every task is acked late (after it ran) and rejected back to its queue when its
worker process dies (``task_reject_on_worker_lost``), so a killed child's message is delivered
again. A task that raised or hit its time limit is acked (``task_acks_on_failure_or_timeout``):
by then ``apps.core.jobs.job_claimed`` has recorded the outcome on its row (FAILED with the
reason, or released for another attempt). Whatever a message loss or a dead worker leaves
PENDING or RUNNING, the job sweeper sends again (``apps.core.sweeper``), so no job row depends on
a message surviving.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")

from django.conf import settings

QUEUES = ("default", "backtests", "training", "llm", "orders")

# Task-name prefixes and the queue they run on; anything else runs on `default`.
ROUTES = {
    "strategies.backtest_": "backtests",
    "strategies.optimize_": "backtests",
    "strategies.daily_": "backtests",
    "strategies.ml_series_": "training",
    "training.": "training",
    "llm.": "llm",
    "strategies.generate_": "llm",
    "trading.": "orders",
}

# One task module per domain; each issue that adds a domain's jobs adds its module here.
TASK_MODULES = (
    "workers.jobs",
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
    task_acks_on_failure_or_timeout=True,
    # A broker that is down answers at once; the caller keeps the row PENDING for the sweeper.
    task_publish_retry_policy={
        "max_retries": 2,
        "interval_start": 0,
        "interval_step": 0.5,
        "interval_max": 1,
    },
    beat_scheduler="workers.scheduler:LeaderScheduler",
    worker_hijack_root_logger=False,
    include=list(TASK_MODULES),
)
