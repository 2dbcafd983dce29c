"""Strategy tasks: backtests, optimisation chunks, strategy generation and the daily strategy update.

An optimisation fans out as one task per chunk that any number of workers share. The project keeps
no Celery result backend (the database rows are the job state), so there is no chord: the chunk
that finishes last concludes the run in the same task, and the run's claim makes it conclude once
(``strategies.optimize_finish`` is the sweeper's resend when that worker died before concluding).
The daily update fans out the same way (``apps.strategies.daily_update``): a task per strategy on
the backtests queue, then a generation run per market on the llm queue, each finishing one
advancing the run. If the message asking for a conclusion or an advance is lost, or its worker
dies, the job sweeper sends it again.
"""

from __future__ import annotations

from celery import shared_task

from apps.core.dispatch import job_dispatch, job_dispatch_on_commit
from apps.strategies.models import OptimizationRun
from apps.strategies.services import backtests, generation, optimizations
from apps.strategies.services import daily_update as updates
from workers.periodic import once_per_slot


@shared_task(name="strategies.backtest_run")
def backtest_run(backtest_id: int) -> None:
    """Run a stored backtest; a redelivered message finds it claimed or finished and does nothing."""
    backtests.backtest_run(backtest_id=backtest_id)


@shared_task(name="strategies.optimize_chunk")
def optimize_chunk(run_id: int, chunk_index: int) -> None:
    """Evaluate one chunk of trials; the chunk that finishes the run concludes it at once, in the
    worker that already holds the run's candles (a message would cost a round trip through the
    broker, and on a busy queue a wait behind other chunks, before anyone sees the result)."""
    if optimizations.optimization_chunk_run(run_id=run_id, chunk_index=chunk_index):
        optimizations.optimization_finish(run_id=run_id)


@shared_task(name="strategies.optimize_finish")
def optimize_finish(run_id: int) -> None:
    """Conclude a run whose chunks are all finished (the sweeper's resend when the chunk that
    finished last died before concluding); it claims the run first, so it concludes once."""
    optimizations.optimization_finish(run_id=run_id)


def optimization_enqueue(run: OptimizationRun) -> None:
    """Send every chunk of a stored run once the surrounding transaction commits."""
    for chunk in run.chunks.order_by("index"):
        job_dispatch_on_commit(optimize_chunk, chunk, [run.pk, chunk.index])


@shared_task(name="strategies.generate_run")
def generate_run(run_id: int) -> None:
    """Generate, validate and backtest strategy candidates (the llm queue); runs once per row. A
    generation of the daily update asks the update to advance when it is done."""
    run = generation.generation_run(run_id=run_id)
    if run is not None and run.update_run_id is not None:
        daily_update_advance.delay(run.update_run_id)


@shared_task(name="strategies.daily_update")
@once_per_slot
def daily_update() -> None:
    """Beat-driven at 02:00 UTC: start the date's update (one per date; a repeat does nothing)."""
    run, created = updates.daily_update_request()
    if created:
        daily_update_advance(run.pk)


@shared_task(name="strategies.daily_update_advance")
def daily_update_advance(run_id: int) -> None:
    """Move the update to its next phase if the current one is done, and send its new jobs."""
    step = updates.daily_update_advance(run_id=run_id)
    for item in step.items:
        job_dispatch(daily_update_strategy, item)
    for run in step.generations:
        job_dispatch(generate_run, run)


@shared_task(name="strategies.daily_update_strategy")
def daily_update_strategy(item_id: int) -> None:
    """Update one strategy of the daily update (the backtests queue); the last one advances the run."""
    if updates.daily_update_strategy(item_id=item_id):
        run_id = updates.item_run_id(item_id=item_id)
        daily_update_advance.delay(run_id)


@shared_task(name="strategies.ml_series_prepare")
def ml_series_prepare(strategy_id: int) -> None:
    """Compute the model series a strategy's newest bar reads (on the training queue, asked for by the
    orchestrator, which only reads them); stored, so a repeated message costs a cache lookup."""
    backtests.external_series_prepare(strategy_id=strategy_id)
