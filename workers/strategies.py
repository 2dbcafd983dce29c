"""Strategy tasks: backtests, optimisation chunks, strategy generation and the daily strategy update.

An optimisation fans out as a group of chunk tasks that any number of workers share. The project
keeps no Celery result backend (the database rows are the job state), so there is no chord: the
chunk that stores the last results enqueues ``strategies.optimize_finish``, which summarises once.
"""

from __future__ import annotations

from celery import group, shared_task
from django.db import transaction

from apps.strategies import generation, services


@shared_task(name="strategies.backtest_run")
def backtest_run(backtest_id: int) -> None:
    """Run a stored backtest; a redelivered message finds it claimed or finished and does nothing."""
    services.backtest_run(backtest_id=backtest_id)


@shared_task(name="strategies.optimize_chunk")
def optimize_chunk(run_id: int, chunk_index: int) -> None:
    """Evaluate one chunk of trials; the chunk that completes the run enqueues its summary."""
    if services.optimization_chunk_run(run_id=run_id, chunk_index=chunk_index):
        optimize_finish.delay(run_id)


@shared_task(name="strategies.optimize_finish")
def optimize_finish(run_id: int) -> None:
    """Summarise a run whose chunks are all done; it claims the run first, so it summarises once."""
    services.optimization_finish(run_id=run_id)


@shared_task(name="strategies.generate_run")
def generate_run(run_id: int) -> None:
    """Generate, validate and backtest strategy candidates (the llm queue); runs once per row."""
    generation.generation_run(run_id=run_id)


@shared_task(name="strategies.daily_update")
def daily_update() -> None:
    """Beat-driven at 02:00 UTC; one run per date, so a repeated message changes nothing."""
    services.strategies_daily_update()


def optimization_enqueue(run_id: int, chunks: int) -> None:
    """Send every chunk of a stored run as one group, once the surrounding transaction commits."""
    transaction.on_commit(
        lambda: group(optimize_chunk.s(run_id, index) for index in range(chunks)).apply_async()
    )
