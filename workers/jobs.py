"""Job-keeping tasks: the sweeper that re-sends lost and orphaned jobs, and pruning its records."""

from __future__ import annotations

from celery import shared_task

from apps.core import scheduling, sweeper, tokens
from workers.celery import app, queue_for
from workers.periodic import once_per_slot


def _send(task: str, args: list[object]) -> object:
    return app.send_task(task, args=args)


@shared_task(name="core.jobs_sweep")
@once_per_slot
def jobs_sweep() -> None:
    """Beat-driven: re-send PENDING jobs whose message was lost and RUNNING jobs whose worker died."""
    with app.connection_for_write() as connection:

        def waiting(task: str) -> int | None:
            try:
                declared = connection.default_channel.queue_declare(queue=queue_for(task), passive=True)
            except connection.channel_errors:  # no such queue (a restarted Redis): nothing waits in it
                return 0
            return declared.message_count

        sweeper.jobs_sweep(send=_send, waiting=waiting)


@shared_task(name="core.records_prune")
@once_per_slot
def records_prune() -> None:
    """Beat-driven: forget old schedule-slot records and sweep reports, delete expired API tokens."""
    scheduling.periodic_runs_prune()
    sweeper.job_sweeps_prune()
    tokens.tokens_expired_delete()
