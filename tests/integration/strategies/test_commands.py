"""The strategy commands: backtest and optimise synchronously, refuse bad input without writing,
and load the demo strategies idempotently."""

from __future__ import annotations

import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from apps.strategies.models import (
    Backtest,
    DecisionKind,
    OptimizationRun,
    Strategy,
    StrategyDecision,
    StrategyStatus,
    StrategyVersion,
)
from tests.integration.worker import REPO_ROOT

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_the_backtest_command_prints_metrics_beside_buy_and_hold(rsi_strategy):
    output = _run("backtest", rsi_strategy.strategy_id, "--start", "2019-01-01", "--end", "2019-06-01")

    backtest = Backtest.objects.get()
    assert (backtest.status, backtest.trigger) == ("completed", "command")
    assert "2019-01-01T00:00:00Z .. 2019-06-01T00:00:00Z (3625 1h bars)" in output
    total_return = next(line for line in output.splitlines() if line.startswith("Total return %"))
    metrics = backtest.metrics
    assert total_return.split()[-2:] == [
        f"{metrics['total_return_pct']:,.2f}",
        f"{metrics['buy_and_hold_return_pct']:,.2f}",
    ]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("strategy_Nope_BTCUSD_20240101000000",), "unknown strategy"),
        (("{id}", "--start", "yesterday"), "--start 'yesterday' is not a date"),
        (("{id}", "--start", "2021-01-01", "--end", "2021-02-01"), "0 1h candle(s) of BTCUSD"),
        (("{id}", "--capital", "lots"), "--capital 'lots' is not a number"),
        (("{id}", "--commission", "2"), "commission: must be a fraction from 0 to below 1"),
    ],
)
def test_the_backtest_command_refuses_bad_input_and_writes_nothing(rsi_strategy, args, says):
    with pytest.raises(CommandError, match=says.replace("(", r"\(").replace(")", r"\)")):
        _run("backtest", *(a.format(id=rsi_strategy.strategy_id) for a in args))

    assert Backtest.objects.count() == 0


def test_the_optimize_command_prints_the_best_parameters_and_each_fold(rsi_strategy):
    output = _run(
        "optimize", rsi_strategy.strategy_id, "--param", "rsi_period=10:20:5",
        "--param", "stop_loss_pct=0.02,0.04", "--objective", "total_return_pct", "--folds", "2",
        "--start", "2018-06-01",
    )  # fmt: skip

    run = OptimizationRun.objects.get()
    assert (run.status, run.n_trials, run.trigger) == ("completed", 6, "command")
    assert f"Best parameters (mean in-sample): rsi_period={run.best_params['rsi_period']}" in output
    assert [line.split()[0] for line in output.splitlines() if line[:1].isdigit()][:2] == ["0", "1"]
    assert "Top 6 trials by mean in-sample total_return_pct" in output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "give at least one --param"),
        (("--param", "rsi_period"), "is not NAME=V1,V2"),
        (("--param", "rsi_period=a,b"), "'a' is not a number"),
        (("--param", "rsi_period=1:2:3:4"), "a range is MIN:MAX or MIN:MAX:STEP"),
        (("--param", "hold_days=1,2"), "parameter 'hold_days' is not used by the strategy"),
        (("--param", "rsi_period=10,14", "--start", "2019-10-16"), "34 bars are too few for 3 folds"),
    ],
)
def test_the_optimize_command_refuses_bad_input_and_writes_nothing(rsi_strategy, args, says):
    with pytest.raises(CommandError, match=says):
        _run("optimize", rsi_strategy.strategy_id, *args)

    assert OptimizationRun.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_command_given_bad_input_exits_with_a_non_zero_status(btc_hourly):
    database = connection.settings_dict
    env = {"DJANGO_SETTINGS_MODULE": "tests.settings", "PATH": "/usr/bin:/bin"}
    if connection.vendor == "postgresql":
        credentials = database["USER"] + (f":{database['PASSWORD']}" if database["PASSWORD"] else "")
        env["DATABASE_URL"] = (
            f"postgresql://{credentials}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
        )
    else:
        env["SQLITE_PATH"] = str(database["NAME"])

    result = subprocess.run(
        [sys.executable, "manage.py", "backtest", "strategy_Nope_BTCUSD_20240101000000"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "unknown strategy 'strategy_Nope_BTCUSD_20240101000000'" in result.stderr


def test_the_demo_strategies_load_twice_without_duplicates(btc_hourly):
    first = _run("load_demo_strategies", "--paused")
    second = _run("load_demo_strategies")

    names = sorted(Strategy.objects.values_list("name", flat=True))
    assert names == ["Bollinger Breakout", "MACD Trend Follower", "RSI Mean Reversion", "SMA Crossover"]
    assert StrategyVersion.objects.count() == 4
    assert first.count("created") == 4 and second.count("kept") == 4


def test_the_demo_strategies_start_paused_saying_what_activating_them_needs(btc_hourly, settings):
    settings.STRATEGY_MIN_DEFLATED_SHARPE = 0.9
    _run("load_demo_strategies", "--paused")

    assert set(Strategy.objects.values_list("status", "timeframe")) == {("paused", "1h")}
    decisions = StrategyDecision.objects.all()
    assert [(d.kind, d.actor) for d in decisions] == [("paused", "demo data")] * 4
    assert all("deflated Sharpe ratio reaches 0.9;" in d.reason for d in decisions)
    assert all(d.numbers == {"to": "paused", "min_deflated_sharpe": 0.9} for d in decisions)


def test_the_demo_strategies_whose_backtest_passes_the_gate_are_activated_through_it(btc_hourly, settings):
    # A fresh install's loop must have something to trade, and only what the gate lets through.
    settings.STRATEGY_MONTE_CARLO_PATHS = 20
    out = _run("load_demo_strategies")

    strategies = Strategy.objects.all()
    active = [s for s in strategies if s.status == StrategyStatus.ACTIVE]
    assert len(active) >= 1 and out.count("\nactive  ") == len(active)
    for strategy in strategies:
        backtest = strategy.backtests.get()
        assert backtest.status == "completed" and backtest.bars == 20111
        deflated = backtest.robustness["deflated_sharpe"]
        if strategy.status == StrategyStatus.ACTIVE:
            assert deflated >= settings.STRATEGY_MIN_DEFLATED_SHARPE
            assert strategy.decisions.filter(kind=DecisionKind.ACTIVATED).count() == 1
        else:
            assert (
                strategy.status == StrategyStatus.PAUSED and deflated < settings.STRATEGY_MIN_DEFLATED_SHARPE
            )
            refusal = strategy.decisions.get(kind=DecisionKind.REFUSED)
            assert refusal.numbers["deflated_sharpe"] == pytest.approx(deflated)
            assert f"paused  {strategy.name} ({strategy.strategy_id})" in out
    assert "RSI Mean Reversion" not in {s.name for s in active}  # -78 % over the history


def test_the_demo_strategies_need_the_market_data_first(db):
    with pytest.raises(CommandError, match="load the market data first"):
        _run("load_demo_strategies")

    assert Strategy.objects.count() == 0
