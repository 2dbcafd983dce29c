"""The strategies admin: lists load, actions change status with a decision or enqueue backtests, a
backtest's page shows its metrics, equity chart and trades, and the robustness panel of a backtest or
an optimisation renders whatever block a row holds (none, a failure, an older or a mangled one)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from apps.core.models import JobStatus
from apps.strategies.models import Backtest, DecisionKind, OptimizationRun, StrategyStatus
from apps.strategies.services.backtests import backtest_create, backtest_run
from apps.strategies.services.daily_update import strategies_daily_update
from apps.strategies.services.optimizations import (
    optimization_chunk_run,
    optimization_create,
    optimization_finish,
)
from tests.integration.enqueued import enqueued
from tests.integration.strategies.conftest import make_strategy

pytestmark = pytest.mark.django_db

MODELS = ("strategy", "backtest", "optimizationrun", "strategydecision", "strategyupdaterun")


@pytest.fixture
def finished_backtest(rsi_strategy) -> Backtest:
    backtest = backtest_create(
        strategy=rsi_strategy, start=datetime(2019, 1, 1, tzinfo=UTC), end=datetime(2019, 6, 1, tzinfo=UTC)
    )
    return backtest_run(backtest_id=backtest.pk)


@pytest.mark.parametrize("model", MODELS)
def test_every_strategies_list_loads(admin_client, finished_backtest, model):
    optimization_create(strategy=finished_backtest.strategy, space={"rsi_period": [10, 14]})
    strategies_daily_update(now=datetime(2019, 10, 17, 10, 5, tzinfo=UTC))

    response = admin_client.get(reverse(f"admin:strategies_{model}_changelist"))

    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1


def test_a_backtest_page_shows_metrics_the_equity_chart_and_the_trades(admin_client, finished_backtest):
    response = admin_client.get(reverse("admin:strategies_backtest_change", args=[finished_backtest.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert "lightweight-charts.standalone.production.js" in page
    charts = json.loads(
        page.split('id="backtest-charts-data" type="application/json">')[1].split("</script>")[0]
    )
    assert len(charts["equity"]) == len(charts["buyAndHold"]) == len(charts["drawdown"]) == 500
    assert charts["equity"][0] == {"time": 1546300800, "value": 10000.0}
    assert charts["equity"][-1]["value"] == finished_backtest.metrics["final_equity"]
    markers = charts["price"]["markers"]
    assert len(markers) == 2 * len(finished_backtest.trades)  # an entry and an exit per trade
    trades = finished_backtest.trades
    assert f"{len(trades)} trades" in page
    assert trades[0]["entry_time"] in page and trades[0]["exit_reason"] in page
    assert f"{finished_backtest.metrics['total_return_pct']:,.2f}" in page


def test_an_optimisation_page_shows_its_folds_and_trials(admin_client, rsi_strategy):
    run = optimization_create(
        strategy=rsi_strategy, space={"rsi_period": [10, 14]}, folds=2, start=datetime(2019, 1, 1, tzinfo=UTC)
    )
    optimization_chunk_run(run_id=run.pk, chunk_index=0)
    optimization_finish(run_id=run.pk)

    page = admin_client.get(
        reverse("admin:strategies_optimizationrun_change", args=[run.pk])
    ).content.decode()

    assert "OOS sharpe_ratio" in page
    assert page.count("{&#x27;rsi_period&#x27;: 14}") >= 1
    assert "walk-forward efficiency" in page


def _panel(client, url: str) -> tuple[str, list[dict]]:
    """The page (which must open) and the chart specs its robustness panel embeds."""
    response = client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    marker = 'id="robustness-charts-data" type="application/json">'
    charts = json.loads(page.split(marker)[1].split("</script>")[0]) if marker in page else []
    return page, charts


def _without(block: dict, *keys: str) -> dict:
    """A Monte Carlo result as stored before ``keys`` were kept."""
    return {key: value for key, value in block.items() if key not in keys}


def test_a_backtest_robustness_panel_renders_any_stored_block_and_says_what_it_lacks(
    admin_client, finished_backtest
):
    url = reverse("admin:strategies_backtest_change", args=[finished_backtest.pk])
    current = finished_backtest.robustness
    carlo = current["monte_carlo"]
    older = {
        **current,
        "monte_carlo": {
            "trade_reshuffle": _without(carlo["trade_reshuffle"], "fan", "max_drawdown_histogram"),
            "block_bootstrap": None,
        },
    }

    page, charts = _panel(admin_client, url)
    assert [chart["id"] for chart in charts] == [
        "robustness-fan-trade_reshuffle",
        "robustness-drawdowns-trade_reshuffle",
        "robustness-fan-block_bootstrap",
        "robustness-drawdowns-block_bootstrap",
    ]
    assert charts[0]["bands"]["p50"] == carlo["trade_reshuffle"]["fan"]["p50"]
    assert charts[3]["counts"] == carlo["block_bootstrap"]["max_drawdown_histogram"]["counts"]
    assert "robustness-missing" not in page and "Monte Carlo percentiles over the paths" in page
    assert f"{current['psr']:.3g}" in page and "Break-even costs" in page and "Delay test" in page
    assert "Monte Carlo, costs, delay" not in page  # the raw field (its help text) gave way to the panel

    expected = {
        "no block": ({}, "This backtest has no robustness block"),
        "a failed block": (
            {"error": "ValueError: boom"},
            "The robustness of this backtest failed: ValueError: boom",
        ),
        "an older block": (older, "The fan of trades reshuffled was not stored with this backtest"),
        "mangled": (
            {
                "psr": "high",
                "monte_carlo": {"trade_reshuffle": {"fan": {"steps": [0, 1], "p5": [0]}}},
                "delay": 3,
            },
            "The fan of trades reshuffled was not stored",
        ),
    }
    for what, (block, sentence) in expected.items():
        Backtest.objects.filter(pk=finished_backtest.pk).update(robustness=block)
        page, charts = _panel(admin_client, url)
        assert sentence in page, what
        assert not any(chart["kind"] == "fan" for chart in charts), what
    # The older block still shows its percentiles, and why the bootstrap is missing.
    Backtest.objects.filter(pk=finished_backtest.pk).update(robustness=older)
    page, charts = _panel(admin_client, url)
    assert "Monte Carlo percentiles over the paths" in page and charts == []
    assert "No Monte Carlo of bar returns block-bootstrapped: it was off" in page


def test_an_optimisation_robustness_panel_renders_any_stored_block_and_says_what_it_lacks(
    admin_client, rsi_strategy
):
    run = optimization_create(
        strategy=rsi_strategy, space={"rsi_period": [10, 14]}, folds=2, start=datetime(2019, 1, 1, tzinfo=UTC)
    )
    optimization_chunk_run(run_id=run.pk, chunk_index=0)
    run = optimization_finish(run_id=run.pk)
    url = reverse("admin:strategies_optimizationrun_change", args=[run.pk])
    current = run.robustness

    page, charts = _panel(admin_client, url)
    assert [chart["id"] for chart in charts] == ["robustness-logits", "robustness-walk-forward"]
    assert sum(charts[0]["counts"]) == current["pbo"]["combinations"]
    assert [p["value"] for p in charts[1]["points"]] == current["walk_forward"]["equity_curve"]["equity"]
    assert "robustness-missing" not in page and "Probability of backtest overfitting" in page

    older_pbo = {**current["pbo"], "logit_histogram": {"edges": [-0.9, -0.3, 0.3, 0.9], "counts": [5, 60, 5]}}
    expected = {
        "no block": ({}, "This search has no robustness block"),
        "a failed block": (
            {"error": "KeyError: 'x'"},
            "The robustness of this search failed: KeyError: &#x27;x&#x27;",
        ),
        "no PBO": ({**current, "pbo": None, "pbo_error": "too few bars"}, "No PBO: too few bars."),
        "no histogram": (
            {**current, "pbo": _without(current["pbo"], "logit_histogram")},
            "PBO&#x27;s logit histogram was not stored",
        ),
        "bins not cut at 0": ({**current, "pbo": older_pbo}, "Bins stored before they were cut at 0"),
        "no curve": ({**current, "walk_forward": None}, "a fold had no test window or no pick"),
        "mangled": ({"pbo": [1], "best": "x", "walk_forward": {"equity_curve": {"times": [1]}}}, "No PBO"),
    }
    for what, (block, sentence) in expected.items():
        OptimizationRun.objects.filter(pk=run.pk).update(robustness=block)
        page, _ = _panel(admin_client, url)
        assert sentence in page, what
    OptimizationRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, robustness={})
    assert "The search has not completed" in _panel(admin_client, url)[0]


@pytest.mark.parametrize(
    ("action", "status", "kind"),
    [("pause", "paused", DecisionKind.PAUSED), ("retire", "retired", DecisionKind.RETIRED)],
)
def test_status_actions_change_the_status_and_record_who_did_it(
    admin_client, rsi_strategy, action, status, kind
):
    url = reverse("admin:strategies_strategy_changelist")

    admin_client.post(url, {"action": action, "_selected_action": [rsi_strategy.pk]})

    rsi_strategy.refresh_from_db()
    decision = rsi_strategy.decisions.get()
    assert (rsi_strategy.status, decision.kind) == (status, kind)
    assert decision.reason == f"set to {status} in the admin by admin"


def test_activate_brings_a_paused_strategy_back(admin_client, btc_hourly, settings):
    paused = make_strategy(btc_hourly, status=StrategyStatus.PAUSED)
    # Activation needs a backtest whose deflated Sharpe ratio passes; no demo strategy has a real
    # edge on the shipped data, so the gate is opened here: this test is about the admin action.
    settings.STRATEGY_MIN_DEFLATED_SHARPE = 0.0
    settings.STRATEGY_MONTE_CARLO_PATHS = 0
    evidence = backtest_create(
        strategy=paused, start=datetime(2019, 1, 1, tzinfo=UTC), end=datetime(2019, 6, 1, tzinfo=UTC)
    )
    backtest_run(backtest_id=evidence.pk)

    admin_client.post(
        reverse("admin:strategies_strategy_changelist"),
        {"action": "activate", "_selected_action": [paused.pk]},
    )

    paused.refresh_from_db()
    assert paused.status == StrategyStatus.ACTIVE


def test_an_activation_the_gate_refuses_is_a_warning_on_the_page_not_an_error(admin_client, btc_hourly):
    paused = make_strategy(btc_hourly, status=StrategyStatus.PAUSED)  # no backtest: nothing to judge

    response = admin_client.post(
        reverse("admin:strategies_strategy_changelist"),
        {"action": "activate", "_selected_action": [paused.pk]},
        follow=True,
    )

    assert response.status_code == 200
    shown = [str(message) for message in response.context["messages"]]
    assert any(text.startswith(f"{paused.strategy_id}: ") for text in shown), shown
    assert "0 strateg(y/ies) set to active." in shown
    paused.refresh_from_db()
    assert paused.status == StrategyStatus.PAUSED


def test_the_backtest_action_enqueues_a_backtest_over_the_stored_history(
    admin_client, rsi_strategy, django_capture_on_commit_callbacks
):
    url = reverse("admin:strategies_strategy_changelist")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        admin_client.post(url, {"action": "backtest_now", "_selected_action": [rsi_strategy.pk]})

    backtest = Backtest.objects.get()
    assert (backtest.trigger, backtest.status) == ("admin", "pending")
    assert (f"{backtest.start:%Y-%m-%d %H}", f"{backtest.end:%Y-%m-%d %H}") == (
        "2017-07-01 11",
        "2019-10-17 09",
    )
    assert enqueued(callbacks) == [("strategies.backtest_run", (backtest.pk,))]


def test_strategies_are_not_added_by_hand_in_the_admin(admin_client, btc_hourly):
    assert admin_client.get(reverse("admin:strategies_strategy_add")).status_code == 403
