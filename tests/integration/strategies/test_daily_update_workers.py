"""The scheduled daily update fans out over real workers: a task per strategy, then a generation per
market that needs one, and the run completes with every outcome once the last of them finishes."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from apps.core import clock
from apps.core.models import JobStatus
from apps.strategies.models import StrategyDecision, StrategyStatus, StrategyUpdateRun, UpdatePhase
from tests.integration.strategies.conftest import SMA_RULES, make_strategy
from tests.integration.strategies.test_daily_update import CHURN_RULES
from tests.integration.worker import running_worker
from workers.strategies import daily_update

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _finished_run(timeout: float = 180) -> StrategyUpdateRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = StrategyUpdateRun.objects.first()
        if run is not None and run.status in (JobStatus.COMPLETED, JobStatus.FAILED):
            return run
        time.sleep(0.2)
    raise AssertionError(f"the update is still {run and run.status} ({run and run.phase}) after {timeout}s")


def test_the_beat_driven_update_fans_out_and_completes_with_every_outcome(tmp_path, btc_hourly, settings):
    settings.STRATEGY_MIN_ACTIVE = 2
    churn = make_strategy(btc_hourly, name="Churn", type="custom", parameters={}, rules=CHURN_RULES)
    sma = make_strategy(
        btc_hourly,
        name="SMA Crossover",
        type="trend_following",
        parameters={"fast_period": 20, "slow_period": 50},
        rules=SMA_RULES,
    )

    with running_worker(tmp_path / "worker.log"):
        # What beat sends at 02:00 UTC, here in the test process at the end of the shipped history
        # (fresh data); the run keeps that moment, so the workers evaluate at it too.
        with clock.replaying(datetime(2019, 10, 17, 10, 5, tzinfo=UTC)):
            daily_update()
        run = _finished_run()

    churn.refresh_from_db()
    items = {item.strategy_id: item for item in run.items.all()}
    assert (run.status, run.phase) == (JobStatus.COMPLETED, UpdatePhase.DONE)
    assert {items[churn.pk].status, items[sma.pk].status} == {JobStatus.COMPLETED}
    assert items[churn.pk].outcome == "retired" and churn.status == StrategyStatus.RETIRED
    assert run.summary["strategies"] == 2
    assert sum(run.summary["outcomes"].values()) == 2
    (generated,) = run.generation_runs.all()  # BTCUSD 1h lost a strategy today: one generation
    assert generated.status == JobStatus.COMPLETED, generated.error
    assert run.summary["generation"][0]["generation_run"] == generated.pk
    assert StrategyDecision.objects.filter(update_run=run, strategy=churn, kind="retired").count() == 1
    worker_log = (tmp_path / "worker.log").read_text()
    assert worker_log.count("strategies.daily_update_strategy[") >= 2  # each strategy was its own task
