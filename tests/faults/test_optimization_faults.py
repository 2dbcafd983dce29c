"""A worker process killed in the middle of an optimisation: the search still ends, completed, with every
trial evaluated, listed and counted in the ledger once."""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.utils import timezone

from apps.core.models import JobStatus
from apps.strategies.models import OptimizationChunk, OptimizationRun, Trial
from apps.strategies.services.optimizations import optimization_chunk_run, optimization_create
from tests.faults.conftest import report
from tests.faults.harness import pool_children, wait_for, wait_until

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]

# 50 RSI periods x 3 stops = 150 trials on 20,111 candles, 3 folds: chunks of 25 take a while each.
SPACE = {"rsi_period": {"min": 5, "max": 54, "step": 1}, "stop_loss_pct": [0.01, 0.02, 0.03]}


def _running_chunk_in(run: OptimizationRun, children: list[int]) -> OptimizationChunk | None:
    for chunk in OptimizationChunk.objects.filter(run=run, status=JobStatus.RUNNING):
        if int(chunk.claimed_by.rsplit(":", 1)[1]) in children:
            return chunk
    return None


def test_a_pool_child_killed_mid_chunk_leaves_a_completed_search_with_every_trial_once(
    stack, strategy, settings
):
    settings.STRATEGY_OPTIMIZE_CHUNK_TRIALS = 25
    run = optimization_create(strategy=strategy, space=SPACE, folds=3)
    for chunk in run.chunks.order_by("index"):
        stack.send("strategies.optimize_chunk", [run.pk, chunk.index])
    worker = stack.worker("worker", concurrency=2)
    stack.beat()

    for _ in range(5):  # a kill can land between two chunks; then try the next one
        victim = wait_for(lambda: _running_chunk_in(run, pool_children(worker.pid)), 60, "a running chunk")
        os.kill(int(victim.claimed_by.rsplit(":", 1)[1]), signal.SIGKILL)
        killed_at = time.monotonic()
        victim.refresh_from_db()
        if victim.status == JobStatus.RUNNING:
            break
    assert victim.status == JobStatus.RUNNING, "no kill landed mid-chunk"

    wait_until(
        lambda: OptimizationRun.objects.get(pk=run.pk).status not in (JobStatus.PENDING, JobStatus.RUNNING),
        300,
        "the optimisation to end",
        every=0.5,
    )
    recovered = time.monotonic() - killed_at

    run.refresh_from_db()
    victim.refresh_from_db()
    chunks = list(run.chunks.order_by("index"))
    ledger = Trial.objects.filter(key__startswith=f"optimization:{run.pk}:")
    report(
        "optimisation: pool child killed mid-chunk",
        {
            "chunks": len(chunks),
            "victim_chunk": victim.index,
            "victim_attempts": victim.attempts,
            "recovered_after_seconds": round(recovered, 1),
            "trials_listed": len(run.trials),
            "trials_in_ledger": ledger.count(),
        },
    )
    assert run.status == JobStatus.COMPLETED, run.error
    assert (victim.status, victim.attempts) == (JobStatus.COMPLETED, 2)
    assert all(chunk.status == JobStatus.COMPLETED for chunk in chunks)
    assert (run.chunks_done, run.chunks_total) == (len(chunks), len(chunks)) == (6, 6)
    assert [trial["index"] for trial in run.trials] == list(range(150))
    counted = sorted(int(key.rsplit(":", 1)[1]) for key in ledger.values_list("key", flat=True))
    assert counted == list(range(150))
    assert run.robustness["pbo"]["trials"] == 150 and run.robustness["best"]["trials"] == 150


def test_a_conclusion_whose_worker_died_after_claiming_it_is_concluded_by_another(stack, strategy, settings):
    # What a kill during the conclusion leaves: every chunk stored, the run RUNNING, its conclusion
    # claimed by a process that is gone. The sweeper sends the conclusion again once the claim's
    # lease has run out, and a live worker concludes it.
    settings.STRATEGY_OPTIMIZE_CHUNK_TRIALS = 10
    run = optimization_create(strategy=strategy, space={"rsi_period": [7, 14, 21]}, folds=2)
    for chunk in run.chunks.order_by("index"):
        optimization_chunk_run(run_id=run.pk, chunk_index=chunk.index)
    claimed_at = timezone.now()
    OptimizationRun.objects.filter(pk=run.pk).update(finish_claimed_at=claimed_at)
    stack.worker("worker", concurrency=1)
    stack.beat()

    waited = wait_until(
        lambda: OptimizationRun.objects.get(pk=run.pk).status == JobStatus.COMPLETED, 120, "the conclusion"
    )

    run.refresh_from_db()
    report("optimisation: conclusion claimed by a dead worker", {"concluded_after_seconds": round(waited, 1)})
    assert run.finish_claimed_at > claimed_at  # claimed again, after the first claim's lease
    assert [trial["index"] for trial in run.trials] == [0, 1, 2]
    assert Trial.objects.filter(key__startswith=f"optimization:{run.pk}:").count() == 3
