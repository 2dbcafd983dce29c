"""Optimisations through the API: chunks shared by workers, counted once, summarised once, and the
same walk-forward result as the engine run directly on the real candles."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from apps.core.jobs import job_claim
from apps.core.models import JobStatus
from apps.market.domain.candle_files import read_candles
from apps.strategies.engine.optimize import Costs, Fold, Window, chunk, evaluate_chunk, grid, summarise
from apps.strategies.models import OptimizationChunk, OptimizationRun
from apps.strategies.services.optimizations import (
    _chunk_store,
    _run_inputs,
    optimization_chunk_run,
    optimization_create,
    optimization_finish,
    search_robustness,
)
from tests.integration.strategies.conftest import BTC_HOURLY, SMA_RULES, make_strategy
from tests.integration.worker import running_worker
from workers.strategies import optimize_chunk, optimize_finish

WARMUP_BARS = 500  # three times SMA(80)'s warm-up is less, so the minimum applies
SPACE = {"fast_period": [10, 20, 30], "slow_period": {"min": 40, "max": 80, "step": 20}}
GRID = [
    {"fast_period": fast, "slow_period": slow} for fast, slow in itertools.product((10, 20, 30), (40, 60, 80))
]
START, END = "2018-01-01T00:00:00Z", "2019-06-01T00:00:00Z"


@pytest.fixture
def sma_strategy(btc_hourly):
    return make_strategy(
        btc_hourly,
        name="SMA Crossover",
        type="trend_following",
        parameters={"fast_period": 20, "slow_period": 50},
        rules=SMA_RULES,
    )


@pytest.fixture
def small_chunks(settings):
    settings.STRATEGY_OPTIMIZE_CHUNK_TRIALS = 4  # nine trials: chunks of 4, 4 and 1


def _request(strategy, **changes) -> dict:
    return {
        "strategy_id": strategy.strategy_id,
        "space": SPACE,
        "objective": "sharpe_ratio",
        "folds": 3,
        "start_date": START,
        "end_date": END,
        **changes,
    }


def _wait_for(url: str, client, timeout: float = 120) -> dict:
    """Follow a run as a client of the API does: each GET waits up to 5 s for it to end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"{url}?wait=5").json()
        if body["status"] in (JobStatus.COMPLETED, JobStatus.FAILED):
            return body
    raise AssertionError(f"{url} still {body['status']} after {timeout}s")


def _engine_summary(run: OptimizationRun):
    """The engine run directly on the shipped CSV, with the run's folds, as one chunk."""
    frame = read_candles(BTC_HOURLY)
    first = frame.index.searchsorted(pd.Timestamp(START))
    last = frame.index.searchsorted(pd.Timestamp(END), side="right")
    warm = frame.iloc[first - WARMUP_BARS : last]
    folds = [
        Fold(
            f["index"],
            Window(f["train"]["start"] + WARMUP_BARS, f["train"]["stop"] + WARMUP_BARS),
            Window(f["test"]["start"] + WARMUP_BARS, f["test"]["stop"] + WARMUP_BARS),
        )
        for f in run.fold_layout
    ]
    version = run.version
    results = evaluate_chunk(
        warm, version.rules, version.parameters, chunk(grid(SPACE), 100)[0], folds, costs=Costs()
    )
    return summarise(results, "sharpe_ratio")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_optimises_in_chunks_and_lists_every_trial(
    api_client, sma_strategy, small_chunks, tmp_path
):
    with running_worker(tmp_path / "worker.log"):
        accepted = api_client.post("/api/strategies/optimize", _request(sma_strategy), format="json")
        assert accepted.status_code == 202
        body = _wait_for(accepted.json()["url"], api_client)
        finished_at = body["finished_at"]

        # Every message again, as after lost acknowledgements; a later optimisation on the same solo
        # worker finishes only after they were consumed.
        for index in range(3):
            optimize_chunk.delay(body["id"], index)
        optimize_finish.delay(body["id"])
        later = api_client.post("/api/strategies/optimize", _request(sma_strategy), format="json")
        _wait_for(later.json()["url"], api_client)

    run = OptimizationRun.objects.get(pk=body["id"])
    expected = _engine_summary(run)
    assert body["status"] == "completed", body["error"]
    assert (body["n_trials"], body["chunks_total"], body["chunks_done"]) == (9, 3, 3)
    assert [t["index"] for t in body["trials"]] == list(range(9))
    assert [t["params"] for t in body["trials"]] == GRID
    ranked = max(body["trials"], key=lambda t: (t["in_sample_objective"], -t["index"]))
    assert body["best_params"] == ranked["params"] == expected.best_params
    summary = body["summary"]
    assert summary["in_sample_objective"] == expected.in_sample_objective
    assert summary["out_of_sample_objective"] == expected.out_of_sample_objective
    assert [fold["fold"] for fold in summary["folds"]] == [0, 1, 2]
    for fold in summary["folds"]:
        assert fold["in_sample"]["end"] < fold["out_of_sample"]["start"]
        assert {"sharpe_ratio", "total_return_pct", "max_drawdown_pct"} <= set(fold["out_of_sample"])
    assert [c.attempts for c in run.chunks.order_by("index")] == [1, 1, 1]
    assert (run.chunks_done, run.finished_at.isoformat().replace("+00:00", "Z")) == (3, finished_at)


@pytest.mark.django_db
def test_a_redelivered_chunk_is_counted_once_and_the_last_chunk_triggers_one_summary(
    sma_strategy, small_chunks
):
    run = optimization_create(strategy=sma_strategy, space=SPACE, folds=2)

    assert optimization_chunk_run(run_id=run.pk, chunk_index=0) is False
    assert optimization_chunk_run(run_id=run.pk, chunk_index=0) is False
    assert OptimizationRun.objects.get(pk=run.pk).chunks_done == 1
    assert optimization_chunk_run(run_id=run.pk, chunk_index=2) is False
    assert optimization_finish(run_id=run.pk) is None  # a chunk is still outstanding
    assert optimization_chunk_run(run_id=run.pk, chunk_index=1) is True

    finished = optimization_finish(run_id=run.pk)

    assert finished.status == JobStatus.COMPLETED
    assert len(finished.trials) == 9
    assert optimization_finish(run_id=run.pk) is None
    assert optimization_chunk_run(run_id=run.pk, chunk_index=1) is False


@pytest.mark.django_db
def test_chunks_carry_their_trials_statistics_so_the_conclusion_backtests_no_trial_again(
    sma_strategy, small_chunks
):
    run = optimization_create(strategy=sma_strategy, space=SPACE, folds=2)
    for index in range(run.chunks_total):
        optimization_chunk_run(run_id=run.pk, chunk_index=index)
    stored = [result for c in run.chunks.order_by("index") for result in c.results]
    assert all(result["window"]["blocks"]["block"] * 16 <= run.bars for result in stored)
    assert {result["window"]["observations"] for result in stored} == {run.bars - 1}
    run = OptimizationRun.objects.select_related("strategy", "version").get(pk=run.pk)
    inputs = _run_inputs(run.pk, run.created_at)
    summary = summarise(stored, run.objective)
    search = {
        "window": inputs.window,
        "rules": run.version.rules,
        "base_parameters": run.version.parameters,
        "layout": run.fold_layout,
        "summary": summary,
        "costs": Costs(float(run.initial_capital), run.commission, run.slippage, "1h"),
        "external": inputs.external,
    }
    from_chunks = search_robustness(results=stored, bars=inputs.bars, **search).to_dict()
    # Results stored by a version before the chunks kept statistics: computed when concluding, the same.
    older = [{key: value for key, value in result.items() if key != "window"} for result in stored]
    assert search_robustness(results=older, **search).to_dict() == from_chunks
    assert from_chunks["pbo"]["trials"] == 9 and from_chunks["best"]["trials"] == 9

    finished = optimization_finish(run_id=run.pk)
    assert finished.robustness["pbo"] == from_chunks["pbo"]
    assert "window" not in str(finished.trials)  # the statistics are the workers', not the answer's


@pytest.mark.django_db
def test_a_chunk_whose_worker_died_is_taken_over_and_the_late_result_is_not_counted(
    sma_strategy, small_chunks
):
    run = optimization_create(strategy=sma_strategy, space=SPACE, folds=2)
    chunk_row = OptimizationChunk.objects.get(run=run, index=0)
    dead = job_claim(model=OptimizationChunk, pk=chunk_row.pk)
    OptimizationRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING)
    OptimizationChunk.objects.filter(pk=chunk_row.pk).update(
        lease_expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )

    optimization_chunk_run(run_id=run.pk, chunk_index=0)
    late = _chunk_store(dead, [{"index": 0, "params": {}, "error": "late"}], run)

    assert late is False
    chunk_row.refresh_from_db()
    assert (chunk_row.attempts, chunk_row.status, len(chunk_row.results)) == (2, "completed", 4)
    assert OptimizationRun.objects.get(pk=run.pk).chunks_done == 1


@pytest.mark.django_db
def test_trials_the_strategy_rejects_are_listed_with_their_error(btc_hourly):
    strategy = make_strategy(
        btc_hourly,
        name="MACD",
        parameters={"macd_fast": 12, "macd_slow": 26},
        rules=[{"condition": "MACD crosses_above MACD.signal", "action": "buy"}],
    )
    run = optimization_create(
        strategy=strategy, space={"macd_fast": [12, 30]}, folds=0, start=datetime(2019, 1, 1, tzinfo=UTC)
    )

    assert optimization_chunk_run(run_id=run.pk, chunk_index=0) is True
    run = optimization_finish(run_id=run.pk)

    assert run.summary["failed"] == 1
    assert "fast (30) must be below slow (26)" in run.trials[1]["error"]
    assert run.best_params == {"macd_fast": 12}
    assert run.summary["folds"][0]["out_of_sample"] is None  # folds=0: in-sample only


@pytest.mark.django_db
def test_random_search_draws_the_number_of_trials_asked_for(sma_strategy):
    run = optimization_create(
        strategy=sma_strategy,
        space={"fast_period": {"min": 5, "max": 30}, "slow_period": {"min": 40, "max": 120}},
        method="random",
        n_trials=7,
        seed=3,
        folds=1,
    )

    trials = [t["params"] for c in run.chunks.all() for t in c.trials]
    assert len(trials) == run.n_trials == 7
    assert all(5 <= t["fast_period"] <= 30 and 40 <= t["slow_period"] <= 120 for t in trials)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"space": {"fast_period": [0, 5]}}, "space", "period must be a whole number from 1"),
        ({"space": {"fast_period": {"min": 5, "max": 30}}}, "space", "a grid range needs a step"),
        (
            {"folds": 20, "start_date": "2019-06-01T00:00:00Z", "end_date": "2019-06-03T00:00:00Z"},
            "folds",
            "too few",
        ),
        ({"objective": "luck"}, "objective", "is not a valid choice"),
        (
            {"start_date": "2022-01-01T00:00:00Z", "end_date": "2022-02-01T00:00:00Z"},
            "start_date",
            "0 1h candle",
        ),
    ],
)
def test_a_bad_optimisation_request_is_a_400_and_no_job(api_client, sma_strategy, change, field, says):
    response = api_client.post("/api/strategies/optimize", _request(sma_strategy, **change), format="json")

    assert response.status_code == 400
    assert says in response.json()["error"]["fields"][field][0]
    assert OptimizationRun.objects.count() == 0
