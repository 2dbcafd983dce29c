"""Backtests through the API: validated before they are stored, run once by a real worker, and the
same numbers as the engine run directly on the real candles."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pandas as pd
import pytest

from apps.core.models import JobStatus
from apps.market.domain.candle_files import read_candles
from apps.strategies.engine import RiskSettings, backtest_signals, signals
from apps.strategies.models import Backtest
from apps.strategies.services.backtests import backtest_create
from apps.strategies.services.backtests import backtest_run as backtest_service
from apps.strategies.services.strategies import strategy_create
from tests.integration.enqueued import enqueued
from tests.integration.strategies.conftest import BTC_HOURLY
from tests.integration.worker import running_worker
from workers.strategies import backtest_run as backtest_task

# Indicators are warmed up on the 500 candles before a window (three times RSI(14)'s warm-up is less).
WARMUP_BARS = 500


def _wait_for(url: str, client, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if body["status"] in (JobStatus.COMPLETED, JobStatus.FAILED):
            return body
        time.sleep(0.1)
    raise AssertionError(f"{url} still {body['status']} after {timeout}s")


def _engine_report(strategy, start: str, end: str):
    """The engine run directly on the shipped CSV: signals with warm-up, trades inside the window."""
    frame = read_candles(BTC_HOURLY)
    first = frame.index.searchsorted(pd.Timestamp(start, tz="UTC"))
    last = frame.index.searchsorted(pd.Timestamp(end, tz="UTC"), side="right")
    warm = frame.iloc[first - WARMUP_BARS : last]
    version = strategy.current_version
    codes = signals(version.rules, warm, version.parameters)
    return backtest_signals(
        warm.iloc[WARMUP_BARS:],
        codes[WARMUP_BARS:],
        RiskSettings.from_parameters(version.parameters),
        initial_capital=10000.0,
        commission=0.001,
        slippage=0.0,
        timeframe="1h",
    )


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_a_backtest_once_with_the_engines_numbers(api_client, rsi_strategy, tmp_path):
    body = {
        "strategy_id": rsi_strategy.strategy_id,
        "start_date": "2019-01-01T00:00:00Z",
        "end_date": "2019-06-01T00:00:00Z",
        "initial_capital": 10000,
    }
    with running_worker(tmp_path / "worker.log"):
        accepted = api_client.post("/api/strategies/backtest", body, format="json")
        assert accepted.status_code == 202
        assert accepted.json()["status"] == "pending"
        first = _wait_for(accepted.json()["url"], api_client)

        # The same message again, as a broker redelivers it after a lost acknowledgement; a later
        # backtest on the same solo worker finishes only after the redelivered one was consumed.
        backtest_task.delay(first["id"])
        second = _wait_for(
            api_client.post("/api/strategies/backtest", body, format="json").json()["url"], api_client
        )

    expected = _engine_report(rsi_strategy, "2019-01-01", "2019-06-01")
    assert first["status"] == "completed", first["error"]
    assert first["metrics"] == expected.metrics()
    assert first["metrics"]["num_trades"] > 10
    assert len(first["trades"]) == len(expected.trades)
    assert first["trades"][0] == expected.trades.records()[0]
    assert first["equity_curve"]["equity"][-1] == expected.final_equity
    assert len(first["equity_curve"]["times"]) == 500
    assert first["benchmark"]["return_pct"] == expected.buy_and_hold_return_pct
    assert first["benchmark"]["equity_curve"]["equity"][0] == 10000.0
    assert (first["version"], first["bars"], first["progress"]) == (1, 3625, 1.0)
    again = Backtest.objects.get(pk=first["id"])
    assert (again.attempts, again.finished_at.isoformat().replace("+00:00", "Z")) == (1, first["finished_at"])
    assert second["metrics"] == first["metrics"]


@pytest.mark.django_db
def test_a_pending_backtest_shows_no_results_yet(
    api_client, rsi_strategy, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        accepted = api_client.post(
            "/api/strategies/backtest",
            {"strategy_id": rsi_strategy.strategy_id, "start_date": "2019-01-01", "end_date": "2019-02-01"},
            format="json",
        )

    body = api_client.get(accepted.json()["url"]).json()
    assert (body["status"], body["progress"], body["initial_capital"]) == ("pending", 0.0, "10000.00")
    assert "metrics" not in body and "trades" not in body
    assert enqueued(callbacks) == [("strategies.backtest_run", (body["id"],))]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"start_date": "2021-01-01", "end_date": "2021-06-01"}, "start_date", "0 1h candle(s) of BTCUSD"),
        ({"start_date": "2019-06-01", "end_date": "2019-01-01"}, "end_date", "must be after start_date"),
        ({"start_date": "first of May"}, "start_date", "Datetime has wrong format"),
        ({"strategy_id": "strategy_Nope_BTCUSD_20240101000000"}, "strategy_id", "unknown strategy"),
        ({"initial_capital": 0}, "initial_capital", "greater than or equal to 0.01"),
        ({"commission": 0.9}, "commission", "less than or equal to 0.5"),
    ],
)
def test_a_bad_backtest_request_is_a_400_and_no_job(api_client, rsi_strategy, change, field, says):
    body = {"strategy_id": rsi_strategy.strategy_id, "start_date": "2019-01-01", "end_date": "2019-06-01"}

    response = api_client.post("/api/strategies/backtest", {**body, **change}, format="json")

    assert response.status_code == 400
    assert says in response.json()["error"]["fields"][field][0]
    assert Backtest.objects.count() == 0


@pytest.mark.django_db
def test_the_no_data_message_says_what_is_stored(api_client, rsi_strategy):
    body = {"strategy_id": rsi_strategy.strategy_id, "start_date": "2021-01-01", "end_date": "2021-06-01"}

    problem = api_client.post("/api/strategies/backtest", body, format="json").json()["error"]["fields"][
        "start_date"
    ]

    assert "Stored: 2017-07-01 11:00 .. 2019-10-17 09:00 UTC" in problem[0]


@pytest.mark.django_db
def test_an_unknown_backtest_is_a_404(api_client):
    assert api_client.get("/api/strategies/backtests/999999").status_code == 404


@pytest.mark.django_db
def test_a_backtest_run_twice_in_process_runs_once(rsi_strategy):
    backtest = backtest_create(
        strategy=rsi_strategy, start=datetime(2019, 3, 1, tzinfo=UTC), end=datetime(2019, 4, 1, tzinfo=UTC)
    )

    first = backtest_service(backtest_id=backtest.pk)
    second = backtest_service(backtest_id=backtest.pk)

    assert first.status == JobStatus.COMPLETED
    assert second is None
    assert Backtest.objects.get(pk=backtest.pk).attempts == 1


@pytest.mark.django_db
def test_a_strategy_reading_ml_proba_is_backtested_on_the_training_apps_walk_forward_series(
    btc_hourly, settings
):
    settings.TRAINING_LOOKBACK_BARS = 1000  # small walk-forward models keep the test quick
    strategy = strategy_create(
        name="ML Signal",
        type="ml_signal",
        instrument=btc_hourly,
        timeframe="1h",
        parameters={"enter": 0.55, "leave": 0.45},
        indicators=[],
        rules=[
            {"condition": "ML_PROBA > enter", "action": "buy"},
            {"condition": "ML_PROBA < leave", "action": "sell"},
        ],
    )
    backtest = backtest_create(
        strategy=strategy, start=datetime(2019, 3, 1, tzinfo=UTC), end=datetime(2019, 4, 1, tzinfo=UTC)
    )

    backtest = backtest_service(backtest_id=backtest.pk)

    assert backtest.status == JobStatus.COMPLETED, backtest.error
    assert backtest.metrics["num_trades"] > 0
