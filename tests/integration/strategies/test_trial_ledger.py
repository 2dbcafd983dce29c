"""The trial ledger: every backtest, optimisation trial and generation candidate is counted once in
its research family, in the database, and listed per strategy through the API."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from apps.core.models import JobStatus
from apps.strategies import selectors
from apps.strategies.models import Backtest, OptimizationRun, Trial, TrialSource
from apps.strategies.services.backtests import backtest_create, backtest_run
from apps.strategies.services.generation import generation_create, generation_run
from apps.strategies.services.optimizations import (
    optimization_cancel,
    optimization_chunk_run,
    optimization_create,
    optimization_finish,
)
from tests.integration.strategies.conftest import SMA_RULES, make_strategy
from tests.integration.worker import running_worker

START, END = datetime(2019, 1, 1, tzinfo=UTC), datetime(2019, 3, 1, tzinfo=UTC)
SPACE = {"fast_period": [10, 20, 30], "slow_period": [40, 60]}  # six trials


@pytest.fixture
def sma_strategy(btc_hourly):
    return make_strategy(
        btc_hourly,
        name="SMA Crossover",
        type="trend_following",
        parameters={"fast_period": 20, "slow_period": 50},
        rules=SMA_RULES,
    )


def _count(strategy) -> int:
    """The family's count as a fresh process would read it: from the database, not from memory."""
    return selectors.family_totals(family=selectors.strategy_family(strategy=strategy)).trials


def _backtest(strategy, owner=None) -> Backtest:
    backtest = backtest_create(strategy=strategy, start=START, end=END, owner=owner)
    return backtest_run(backtest_id=backtest.pk)


def _optimise(strategy) -> OptimizationRun:
    run = optimization_create(strategy=strategy, space=SPACE, folds=2, start=START, end=END)
    for index in range(run.chunks_total):
        optimization_chunk_run(run_id=run.pk, chunk_index=index)
    return optimization_finish(run_id=run.pk)


def test_the_family_count_rises_with_every_backtest_and_every_optimisation_trial(sma_strategy):
    first = _backtest(sma_strategy)
    assert (first.status, first.robustness["trials"], _count(sma_strategy)) == (JobStatus.COMPLETED, 1, 1)
    second = _backtest(sma_strategy)
    assert (second.robustness["trials"], _count(sma_strategy)) == (2, 2)
    run = _optimise(sma_strategy)
    assert run.status == JobStatus.COMPLETED, run.error
    assert _count(sma_strategy) == 2 + 6
    assert run.robustness["best"]["trials"] == 8  # the best trial is deflated by the whole family
    third = _backtest(sma_strategy)
    assert third.robustness["trials"] == 9
    sources = Trial.objects.filter(strategy=sma_strategy).values_list("source", flat=True)
    assert sorted(sources) == sorted([TrialSource.BACKTEST] * 3 + [TrialSource.OPTIMIZATION] * 6)


def test_a_chunk_records_its_trials_when_it_is_stored_and_a_cancelled_search_keeps_them(
    sma_strategy, settings
):
    # Every configuration evaluated counts, concluded or not: the next search is deflated by them.
    settings.STRATEGY_OPTIMIZE_CHUNK_TRIALS = 4  # six trials: chunks of 4 and 2
    run = optimization_create(strategy=sma_strategy, space=SPACE, folds=2, start=START, end=END)
    assert optimization_chunk_run(run_id=run.pk, chunk_index=0) is False
    assert _count(sma_strategy) == 4
    keys = Trial.objects.filter(strategy=sma_strategy).values_list("key", flat=True)
    assert sorted(keys) == [f"optimization:{run.pk}:{index}" for index in range(4)]
    optimization_chunk_run(run_id=run.pk, chunk_index=0)  # delivered again: already done
    optimization_cancel(run=OptimizationRun.objects.get(pk=run.pk), by=None)
    assert optimization_chunk_run(run_id=run.pk, chunk_index=1) is False
    assert _count(sma_strategy) == 4
    assert OptimizationRun.objects.get(pk=run.pk).status == JobStatus.FAILED


def test_a_trial_keeps_what_the_deflated_sharpe_ratio_needs(sma_strategy):
    backtest = _backtest(sma_strategy)
    trial = Trial.objects.get(key=f"backtest:{backtest.pk}")
    robustness = backtest.robustness
    assert trial.observations == robustness["observations"] == backtest.bars - 1
    assert trial.sharpe == pytest.approx(robustness["sharpe_per_bar"])
    assert (trial.skewness, trial.kurtosis) == pytest.approx((robustness["skewness"], robustness["kurtosis"]))
    assert trial.parameters == sma_strategy.current_version.parameters
    assert trial.lineage == f"strategy:{sma_strategy.strategy_id}"


def test_a_backtest_run_again_after_a_lost_claim_records_its_trial_once(sma_strategy):
    backtest = _backtest(sma_strategy)
    # As if the worker died after writing the trial: the sweeper hands the row out again.
    Backtest.objects.filter(pk=backtest.pk).update(status=JobStatus.PENDING)
    again = backtest_run(backtest_id=backtest.pk)
    assert again.status == JobStatus.COMPLETED
    assert _count(sma_strategy) == 1
    assert again.robustness["trials"] == 1


def test_an_optimisation_concluded_again_records_each_trial_once(sma_strategy):
    run = _optimise(sma_strategy)
    # A finishing step whose worker died after recording: its claim expires and another concludes.
    OptimizationRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, finish_claimed_at=None)
    again = optimization_finish(run_id=run.pk)
    assert again.status == JobStatus.COMPLETED
    assert _count(sma_strategy) == 6
    assert Trial.objects.filter(key__startswith=f"optimization:{run.pk}:").count() == 6


def test_an_optimisation_reports_pbo_the_best_trials_deflated_sharpe_and_the_stitched_curve(sma_strategy):
    run = _optimise(sma_strategy)
    robustness = run.robustness
    assert robustness["best_index"] == run.summary["best_index"]
    assert 0.0 <= robustness["pbo"]["pbo"] <= 1.0
    assert sum(robustness["pbo"]["logit_histogram"]["counts"]) == robustness["pbo"]["combinations"]
    assert robustness["deflated_sharpe"] == robustness["best"]["deflated_sharpe"]
    stitched = robustness["walk_forward"]
    assert [fold["fold"] for fold in stitched["folds"]] == [0, 1]
    assert len(stitched["equity_curve"]["equity"]) > 0


def test_every_candidate_backtested_is_counted_in_the_market_generation_family(settings, btc_hourly):
    settings.LLM_PROVIDERS = ["offline"]
    family = selectors.generation_family(instrument=btc_hourly, timeframe="1h")
    first = generation_run(run_id=generation_create(instrument=btc_hourly, timeframe="1h", count=3).pk)
    counted = Trial.objects.filter(key__startswith=f"candidate:{first.pk}:").count()
    evaluated = first.candidates.exclude(reason__startswith="duplicate").exclude(
        reason__startswith="the backtest failed"
    )
    assert counted == evaluated.count() > 0  # rejected ones included
    assert selectors.family_totals(family=family).trials == counted
    for candidate in evaluated:
        assert candidate.robustness["trials"] == counted  # each judged against every one of the run
    second = generation_run(run_id=generation_create(instrument=btc_hourly, timeframe="1h", count=3).pk)
    assert (
        selectors.family_totals(family=family).trials
        == counted + Trial.objects.filter(key__startswith=f"candidate:{second.pk}:").count()
    )
    generation_run(run_id=first.pk)  # a redelivered message: nothing recorded twice
    assert Trial.objects.filter(key__startswith=f"candidate:{first.pk}:").count() == counted


def test_the_api_lists_a_strategys_family_with_its_backtests(api_client, user, sma_strategy):
    backtest = _backtest(sma_strategy, owner=user)
    body = api_client.get(f"/api/strategies/{sma_strategy.strategy_id}/trials").json()
    assert body["count"] == 1
    (row,) = body["results"]
    assert (row["key"], row["source"], row["owner"]) == (f"backtest:{backtest.pk}", "backtest", "trader")
    assert row["observations"] == backtest.bars - 1
    detail = api_client.get(f"/api/strategies/backtests/{backtest.pk}").json()
    assert detail["robustness"]["trials"] == 1
    assert {"psr", "deflated_sharpe", "min_track_record_bars", "monte_carlo", "break_even", "delay"} <= set(
        detail["robustness"]
    )


def test_another_users_trials_count_but_are_not_listed_to_a_third(api_client, sma_strategy):
    other = get_user_model().objects.create_user(username="other", password="x" * 20)
    _backtest(sma_strategy, owner=other)
    _backtest(sma_strategy)  # the system's
    body = api_client.get(f"/api/strategies/{sma_strategy.strategy_id}/trials").json()
    assert body["count"] == 1
    assert _count(sma_strategy) == 2
    other_client = APIClient()
    other_client.force_authenticate(other)
    assert other_client.get(f"/api/strategies/{sma_strategy.strategy_id}/trials").json()["count"] == 2


def test_the_trials_of_a_strategy_nobody_may_see_are_a_404(api_client, btc_hourly):
    other = get_user_model().objects.create_user(username="other", password="x" * 20)
    hidden = make_strategy(btc_hourly, owner=other)
    response = api_client.get(f"/api/strategies/{hidden.strategy_id}/trials")
    assert response.status_code == 404


def test_the_trials_list_filters_by_source_and_refuses_an_unknown_parameter(api_client, sma_strategy):
    _backtest(sma_strategy)
    url = f"/api/strategies/{sma_strategy.strategy_id}/trials"
    assert api_client.get(url, {"source": "optimization"}).json()["count"] == 0
    assert api_client.get(url, {"source": "backtest"}).json()["count"] == 1
    response = api_client.get(url, {"lineage": "x"})
    assert response.status_code == 400
    assert "lineage" in str(response.json()["error"])


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_family_count_survives_its_worker_killed_and_replaced(api_client, sma_strategy, tmp_path):
    # The count is the database's: a worker killed with SIGKILL and a new one started carry it on.
    request = {"strategy_id": sma_strategy.strategy_id, "start_date": "2019-01-01", "end_date": "2019-02-01"}

    def backtest() -> dict:
        accepted = api_client.post("/api/strategies/backtest", request, format="json")
        assert accepted.status_code == 202, accepted.content
        deadline = time.monotonic() + 60
        while (body := api_client.get(accepted.json()["url"]).json())["status"] not in (
            "completed",
            "failed",
        ):
            assert time.monotonic() < deadline, body
            time.sleep(0.1)
        assert body["status"] == "completed", body["error"]
        return body

    with running_worker(tmp_path / "first.log") as worker:
        first = backtest()
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    with running_worker(tmp_path / "second.log"):
        second = backtest()

    assert (first["robustness"]["trials"], second["robustness"]["trials"], _count(sma_strategy)) == (1, 2, 2)
