"""The daily strategy update on the real candles: evaluate, retire on broken limits, adopt parameters
only when they are better out of sample, record every decision, once per day."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.strategies import selectors
from apps.strategies.errors import StrategyInputError
from apps.strategies.models import (
    Backtest,
    DecisionKind,
    OptimizationRun,
    Strategy,
    StrategyDecision,
    StrategySource,
    StrategyStatus,
    StrategyUpdateRun,
)
from apps.strategies.services.backtests import backtest_create, backtest_run
from apps.strategies.services.daily_update import strategies_daily_update
from apps.strategies.services.strategies import strategy_update
from tests.integration.strategies.conftest import SMA_RULES, make_strategy

pytestmark = pytest.mark.django_db

NOW = datetime(2019, 10, 17, 10, 5, tzinfo=UTC)  # just after the newest shipped candle closed: fresh data
# Buys every up-close and sells every down-close: 0.1% commission on each fill bleeds it dry.
CHURN_RULES = [
    {"condition": "close > close[1]", "action": "buy", "priority": 1},
    {"condition": "close < close[1]", "action": "sell", "priority": 1},
]


@pytest.fixture(autouse=True)
def limits(settings):
    """The shipped defaults, spelled out so these tests do not drift with them."""
    settings.STRATEGY_UPDATE_WINDOW_BARS = 2160
    settings.STRATEGY_RETIRE_MAX_DRAWDOWN_PCT = 25.0
    settings.STRATEGY_RETIRE_MIN_SHARPE = -1.0
    settings.STRATEGY_RETIRE_MAX_UNDERPERFORMANCE_PCT = 30.0
    settings.STRATEGY_REOPTIMIZE_MULTIPLIERS = [0.8, 1.25]
    settings.STRATEGY_REOPTIMIZE_FOLDS = 3
    settings.STRATEGY_REOPTIMIZE_OBJECTIVE = "sharpe_ratio"
    settings.STRATEGY_REOPTIMIZE_MARGIN = 0.2
    settings.STRATEGY_MIN_ACTIVE = 2
    settings.STRATEGY_MIN_DEFLATED_SHARPE = 0.95
    settings.STRATEGY_MAX_PBO = 0.5
    return settings


@pytest.fixture
def churn(btc_hourly):
    return make_strategy(btc_hourly, name="Churn", type="custom", parameters={}, rules=CHURN_RULES)


@pytest.fixture
def sma(btc_hourly):
    return make_strategy(
        btc_hourly,
        name="SMA Crossover",
        type="trend_following",
        parameters={"fast_period": 20, "slow_period": 50},
        rules=SMA_RULES,
    )


def _decisions(strategy) -> list[StrategyDecision]:
    return list(StrategyDecision.objects.filter(strategy=strategy).order_by("id"))


def test_a_losing_strategy_is_retired_with_its_numbers_and_the_limits_it_broke(churn):
    run = strategies_daily_update(now=NOW)

    churn.refresh_from_db()
    assert churn.status == StrategyStatus.RETIRED
    evaluated, retired = _decisions(churn)
    assert (evaluated.kind, retired.kind) == (DecisionKind.EVALUATED, DecisionKind.RETIRED)
    numbers = retired.numbers
    assert numbers["bars"] == 2160
    assert (numbers["start"], numbers["end"]) == ("2019-07-19T10:00:00Z", "2019-10-17T09:00:00Z")
    assert numbers["max_drawdown_pct"] > 25.0
    assert f"max drawdown {numbers['max_drawdown_pct']:.1f}% exceeds the 25% limit" in retired.reason
    assert numbers["limits"] == {
        "max_drawdown_pct": 25.0,
        "min_sharpe": -1.0,
        "max_underperformance_pct": 30.0,
    }
    assert retired.backtest == evaluated.backtest
    assert retired.backtest.metrics["total_return_pct"] == numbers["total_return_pct"] < 0
    assert retired.update_run == run
    assert run.status == "completed"
    assert run.summary["outcomes"] == {"retired": 1}


def test_an_update_is_readable_through_the_api_with_its_items_and_decisions(churn, sma, api_client):
    run = strategies_daily_update(now=NOW)

    listed = api_client.get("/api/strategies/updates").json()["results"]
    assert [(row["id"], row["date"], row["status"]) for row in listed] == [
        (run.pk, "2019-10-17", "completed")
    ]
    detail = api_client.get(f"/api/strategies/updates/{run.pk}").json()
    assert sorted(item["strategy_id"] for item in detail["items"]) == sorted(
        [churn.strategy_id, sma.strategy_id]
    )
    outcomes = {item["strategy_id"]: item["outcome"] for item in detail["items"]}
    assert outcomes[churn.strategy_id] == DecisionKind.RETIRED
    decided = {(d["strategy_id"], d["kind"]) for d in detail["decisions"]}
    assert (churn.strategy_id, DecisionKind.RETIRED) in decided
    assert len(detail["decisions"]) == StrategyDecision.objects.filter(update_run=run).count()
    assert api_client.get("/api/strategies/updates/999999").status_code == 404


def test_retirements_today_are_listed_for_strategy_generation(churn, sma):
    strategies_daily_update(now=NOW)

    needs = [need.to_dict() for need in selectors.strategies_needing_generation(day=NOW.date())]

    assert needs == [
        {"symbol": "BTCUSD", "exchange": "coinbase", "timeframe": "1h", "active": 1, "retired_today": 1}
    ]
    assert selectors.strategies_needing_generation(day=datetime(2019, 10, 19).date())[0].retired_today == 0


def test_the_update_runs_once_per_day(churn, sma):
    first = strategies_daily_update(now=NOW)
    decisions = StrategyDecision.objects.count()

    again = strategies_daily_update(now=NOW.replace(hour=14))

    assert first is not None and again is None
    assert StrategyDecision.objects.count() == decisions
    assert StrategyUpdateRun.objects.get().date == NOW.date()
    tomorrow = strategies_daily_update(now=datetime(2019, 10, 19, 2, 0, tzinfo=UTC))
    assert tomorrow.summary["strategies"] == 1  # the retired one is no longer active


def test_better_parameters_are_rejected_when_they_are_not_better_out_of_sample(sma, limits):
    limits.STRATEGY_REOPTIMIZE_MARGIN = 1e9

    strategies_daily_update(now=NOW)

    evaluated, verdict = _decisions(sma)
    numbers = verdict.numbers
    assert evaluated.kind == DecisionKind.EVALUATED
    assert verdict.kind == DecisionKind.PARAMS_REJECTED
    assert numbers["current_params"] == {"fast_period": 20, "slow_period": 50}
    assert numbers["candidate_params"] != numbers["current_params"]
    assert "not better by the margin of 1e+09" in verdict.reason
    assert numbers["trials"] == 9  # 16, 20, 25 x 40, 50, 62
    optimization = verdict.optimization
    assert (optimization.status, optimization.n_trials, len(optimization.summary["folds"])) == (
        "completed",
        9,
        3,
    )
    sma.refresh_from_db()
    assert (sma.current_version.number, sma.status) == (1, StrategyStatus.ACTIVE)


def test_candidate_parameters_that_beat_the_margin_may_still_be_luck_and_are_refused(sma, limits):
    limits.STRATEGY_REOPTIMIZE_MARGIN = -1e9  # any candidate other than the current values beats it

    strategies_daily_update(now=NOW)

    verdict = _decisions(sma)[-1]
    assert verdict.kind == DecisionKind.PARAMS_REJECTED
    robustness = verdict.numbers["robustness"]
    assert robustness["trials"] == 9  # the family holds only this search's trials
    assert robustness["deflated_sharpe"] < 0.95  # the shipped data has no edge that survives 9 tries
    assert verdict.reason.startswith("the best trial may be luck (9 trials in the family): deflated Sharpe")
    assert verdict.optimization.robustness["best"]["deflated_sharpe"] == robustness["deflated_sharpe"]
    sma.refresh_from_db()
    assert sma.current_version.number == 1


def test_candidate_parameters_that_beat_the_margin_out_of_sample_become_a_new_version(sma, limits):
    limits.STRATEGY_REOPTIMIZE_MARGIN = -1e9  # any candidate other than the current values wins
    limits.STRATEGY_MIN_DEFLATED_SHARPE = 0.0  # and is no luck, whatever its numbers
    limits.STRATEGY_MAX_PBO = 1.0

    strategies_daily_update(now=NOW)

    verdict = _decisions(sma)[-1]
    assert verdict.kind == DecisionKind.PARAMS_ADOPTED
    sma.refresh_from_db()
    version = sma.current_version
    assert (version.number, version.source) == (2, StrategySource.OPTIMIZER)
    assert {k: version.parameters[k] for k in ("fast_period", "slow_period")} == verdict.numbers[
        "candidate_params"
    ]
    assert version.rules == SMA_RULES
    assert (
        f"version 2: out-of-sample sharpe_ratio {verdict.numbers['candidate_out_of_sample']:.3g}"
        in verdict.reason
    )


def test_with_the_shipped_margin_parameters_are_adopted_exactly_when_they_win_out_of_sample(sma, btc_hourly):
    rsi = make_strategy(btc_hourly, parameters={"rsi_period": 14, "rsi_oversold": 30, "rsi_overbought": 70},
                        rules=[{"condition": "RSI < rsi_oversold", "action": "buy"},
                               {"condition": "RSI > rsi_overbought", "action": "sell"}])  # fmt: skip

    strategies_daily_update(now=NOW)

    for strategy in (sma, rsi):
        verdict = _decisions(strategy)[-1]
        numbers = verdict.numbers
        if verdict.kind == DecisionKind.RETIRED:
            continue
        won = (
            numbers["candidate_params"] != numbers["current_params"]
            and numbers["candidate_out_of_sample"] is not None
            and numbers["current_out_of_sample"] is not None
            and numbers["candidate_out_of_sample"] - numbers["current_out_of_sample"] >= 0.2
        )
        assert verdict.kind == (DecisionKind.PARAMS_ADOPTED if won else DecisionKind.PARAMS_REJECTED)
        strategy.refresh_from_db()
        assert strategy.current_version.number == (2 if won else 1)


def test_every_evaluation_stores_its_backtest(churn, sma):
    strategies_daily_update(now=NOW)

    backtests = Backtest.objects.filter(trigger="daily_update")
    assert backtests.count() == 2
    assert all(
        b.status == "completed" and b.bars == 2160 and len(b.equity_curve["times"]) == 500 for b in backtests
    )
    assert (
        OptimizationRun.objects.filter(trigger="daily_update").count() == 1
    )  # the retired one is not searched


def test_a_strategy_with_too_few_candles_is_skipped_with_a_reason(churn, limits):
    limits.STRATEGY_UPDATE_WINDOW_BARS = 50

    strategies_daily_update(now=NOW)

    decision = _decisions(churn)[0]
    assert decision.kind == DecisionKind.SKIPPED
    assert decision.reason == "the window has 50 1h candles; 100 are needed"


def test_stale_data_is_neither_retired_on_nor_reoptimised_the_skip_says_why(churn):
    two_days_later = datetime(2019, 10, 19, 2, 0, tzinfo=UTC)

    run = strategies_daily_update(now=two_days_later)

    churn.refresh_from_db()
    (decision,) = _decisions(churn)
    assert churn.status == StrategyStatus.ACTIVE  # the losing strategy is kept until data says otherwise
    assert decision.kind == DecisionKind.SKIPPED
    assert decision.reason.startswith("not evaluated on stale data: the newest 1h candle closed 2019-10-17")
    assert run.summary["outcomes"] == {"skipped": 1}
    assert not Backtest.objects.exists() and not OptimizationRun.objects.exists()


def test_parameters_an_optimisation_chose_are_activated_only_with_its_pbo_under_the_maximum(sma, limits):
    limits.STRATEGY_REOPTIMIZE_MARGIN = -1e9
    limits.STRATEGY_MIN_DEFLATED_SHARPE = 0.0
    limits.STRATEGY_MAX_PBO = 1.0
    limits.STRATEGY_MONTE_CARLO_PATHS = 0
    strategies_daily_update(now=NOW)
    adopted = _decisions(sma)[-1]
    assert adopted.kind == DecisionKind.PARAMS_ADOPTED
    sma = strategy_update(strategy=Strategy.objects.get(pk=sma.pk), by=None, status=StrategyStatus.PAUSED)
    evidence = backtest_create(strategy=sma, start=datetime(2019, 6, 1, tzinfo=UTC), end=NOW)
    backtest_run(backtest_id=evidence.pk)
    pbo = adopted.optimization.robustness["pbo"]["pbo"]
    limits.STRATEGY_MAX_PBO = pbo / 2  # as if the maximum had been stricter

    with pytest.raises(StrategyInputError, match="probability of backtest overfitting"):
        strategy_update(strategy=sma, by=None, status=StrategyStatus.ACTIVE)

    refusal = sma.decisions.filter(kind=DecisionKind.REFUSED).get()
    assert (refusal.numbers["pbo"], refusal.numbers["optimization"]) == (pbo, adopted.optimization.pk)
    limits.STRATEGY_MAX_PBO = 1.0
    assert (
        strategy_update(strategy=sma, by=None, status=StrategyStatus.ACTIVE).status == StrategyStatus.ACTIVE
    )
