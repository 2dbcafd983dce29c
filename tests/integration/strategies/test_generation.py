"""Strategy generation on the real BTCUSD candles: the real OpenAI SDK against the fake LLM server, the
offline templates, the API, and the daily update's call for new strategies."""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from apps.core.models import JobStatus
from apps.llm.models import LLMCall, LLMCallStatus
from apps.strategies.models import (
    CandidateOutcome,
    DecisionKind,
    GenerationCandidate,
    GenerationRun,
    JobTrigger,
    Strategy,
    StrategySource,
    StrategyStatus,
)
from apps.strategies.services.daily_update import strategies_daily_update
from apps.strategies.services.generation import generation_create, generation_run, market_context
from tests.fakes.llm import Reply
from tests.integration.llm.conftest import only
from tests.integration.strategies.conftest import SMA_RULES, make_strategy
from tests.integration.strategies.test_generation_validation import SMA_CANDIDATE
from tests.integration.worker import running_worker
from workers.strategies import generate_run

pytestmark = pytest.mark.django_db

NOW = datetime(2019, 10, 17, 10, 5, tzinfo=UTC)  # just after the newest shipped candle closed


@pytest.fixture(autouse=True)
def generation_settings(settings):
    """The shipped defaults, spelled out so these tests do not drift with them."""
    settings.GENERATION_WINDOW_BARS = 4320
    settings.GENERATION_HOLDOUT_FRACTION = 0.3
    settings.GENERATION_MIN_SHARPE = 0.5
    settings.GENERATION_AUTO_DEPLOY = False
    settings.GENERATION_DAILY_COUNT = 3


def generate(instrument, count: int = 1, provider: str | None = None) -> GenerationRun:
    run = generation_create(instrument=instrument, timeframe="1h", count=count, provider=provider)
    return generation_run(run_id=run.pk)


def candidate_with(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(SMA_CANDIDATE), **changes}


def test_a_valid_llm_candidate_is_validated_backtested_and_judged_with_its_numbers(
    fake_llm, settings, btc_hourly
):
    only(settings, "openai")
    fake_llm.script("openai", Reply.json({"strategies": [SMA_CANDIDATE]}))

    run = generate(btc_hourly)

    assert run.status == JobStatus.COMPLETED, run.error
    assert (run.provider_used, run.model, run.llm_status) == ("openai", "gpt-4.1-mini", "ok")
    (candidate,) = run.candidates.all()
    train, holdout = candidate.train_metrics, candidate.holdout_metrics
    assert train["end"] < holdout["start"]
    assert train["bars"] + holdout["bars"] == 4320
    assert holdout["bars"] == 1296
    assert candidate.holdout_buy_and_hold_pct == holdout["buy_and_hold_return_pct"]
    beats = holdout["total_return_pct"] > holdout["buy_and_hold_return_pct"] and (
        holdout["sharpe_ratio"] is not None and holdout["sharpe_ratio"] >= 0.5
    )
    assert candidate.outcome == (CandidateOutcome.KEPT if beats else CandidateOutcome.REJECTED)
    assert f"{holdout['total_return_pct']:+.2f}%" in candidate.reason
    # The model was sent the market as data, delimited from the instructions.
    sent = fake_llm.requests("openai")[0].body["messages"][-1]["content"]
    assert "<data>" in sent and '"regime"' in sent and "RSI(14)" in sent


def test_a_candidate_that_never_trades_has_no_sharpe_and_is_not_kept(fake_llm, settings, btc_hourly):
    only(settings, "openai")
    settings.GENERATION_MIN_SHARPE = -100.0
    # Never in the market: 0% return beats the holdout's falling buy-and-hold (Aug..Oct 2019).
    idle = candidate_with(
        name="Never Buys",
        parameters=[],
        rules=[{"condition": "close < 0", "action": "buy", "priority": 1}],
    )
    fake_llm.script("openai", Reply.json({"strategies": [idle]}))

    run = generate(btc_hourly)

    (candidate,) = run.candidates.all()
    assert candidate.holdout_buy_and_hold_pct < 0
    assert candidate.outcome == CandidateOutcome.REJECTED  # no trades: no Sharpe, so never kept
    assert "Sharpe below" in candidate.reason


def _deep_rsi_dip() -> dict:
    """On the holdout (2019-08-24 .. 2019-10-17) buy-and-hold lost 19.6%; this made +3.5%, Sharpe 1.35,
    in 7 trades: a PSR (its deflated Sharpe ratio as the family's only trial) of 0.70."""
    return candidate_with(
        name="Deep RSI dip",
        type="mean_reversion",
        parameters=[{"name": "stop_loss_pct", "value": 0.02}, {"name": "take_profit_pct", "value": 0.03}],
        indicators=["RSI"],
        rules=[
            {"condition": "RSI(14) < 20", "action": "buy", "priority": 1},
            {"condition": "RSI(14) > 55", "action": "sell", "priority": 1},
        ],
    )


def test_a_candidate_that_passes_the_holdout_by_luck_is_rejected_with_its_deflated_numbers(
    fake_llm, settings, btc_hourly
):
    only(settings, "openai")
    fake_llm.script("openai", Reply.json({"strategies": [_deep_rsi_dip()]}))
    (candidate,) = generate(btc_hourly).candidates.all()
    assert candidate.outcome == CandidateOutcome.REJECTED
    assert candidate.reason == (
        "the holdout may be luck (1 trials in the family): deflated Sharpe ratio 0.700 is below the "
        "minimum of 0.95"
    )
    assert (
        candidate.holdout_metrics["total_return_pct"] > candidate.holdout_metrics["buy_and_hold_return_pct"]
    )
    assert candidate.robustness["deflated_sharpe"] == pytest.approx(0.70, abs=0.005)
    assert (candidate.robustness["trials"], candidate.robustness["min_deflated_sharpe"]) == (1, 0.95)
    assert not Strategy.objects.exists()


def test_a_kept_candidate_becomes_a_draft_llm_strategy_with_a_generated_decision(
    fake_llm, settings, btc_hourly
):
    only(settings, "openai")
    settings.STRATEGY_MIN_DEFLATED_SHARPE = 0.6  # the shipped data has no candidate with a real edge
    fake_llm.script("openai", Reply.json({"strategies": [_deep_rsi_dip()]}))
    run = generate(btc_hourly)
    (candidate,) = run.candidates.all()
    assert candidate.outcome == CandidateOutcome.KEPT, candidate.reason
    assert candidate.holdout_metrics["num_trades"] == 7
    strategy = candidate.strategy
    assert (strategy.status, strategy.source, strategy.name) == (
        StrategyStatus.DRAFT,
        StrategySource.LLM,
        "Deep RSI dip",
    )
    assert strategy.current_version.parameters == {"stop_loss_pct": 0.02, "take_profit_pct": 0.03}
    decision = strategy.decisions.get()
    assert decision.kind == DecisionKind.GENERATED
    assert decision.numbers["generation_run"] == run.pk
    assert decision.numbers["robustness"]["deflated_sharpe"] == candidate.robustness["deflated_sharpe"]
    assert "deflated Sharpe ratio 0.700 over 1 trials (minimum 0.6)" in candidate.reason
    assert run.summary["kept_strategy_ids"] == [strategy.strategy_id]


def test_auto_deploy_activates_a_kept_candidate_recording_the_gate_it_passed(fake_llm, settings, btc_hourly):
    only(settings, "openai")
    settings.GENERATION_AUTO_DEPLOY = True
    settings.STRATEGY_MIN_DEFLATED_SHARPE = 0.6  # the shipped data has no candidate with a real edge
    fake_llm.script("openai", Reply.json({"strategies": [_deep_rsi_dip()]}))

    (candidate,) = generate(btc_hourly).candidates.all()

    strategy = candidate.strategy
    generated, activated = strategy.decisions.order_by("pk")
    assert (strategy.status, generated.kind, activated.kind) == (
        StrategyStatus.ACTIVE,
        DecisionKind.GENERATED,
        DecisionKind.ACTIVATED,
    )
    assert (activated.numbers["from"], activated.numbers["to"]) == ("draft", "active")
    assert activated.numbers["deflated_sharpe"] == candidate.robustness["deflated_sharpe"] >= 0.6
    assert activated.actor == "strategy generation" and "GENERATION_AUTO_DEPLOY" in activated.reason


def test_auto_deploy_never_activates_a_rejected_candidate(fake_llm, settings, btc_hourly):
    only(settings, "openai")
    settings.GENERATION_AUTO_DEPLOY = True
    settings.GENERATION_MIN_SHARPE = -100.0
    # Buys and holds from the first holdout bar on: identical to buy-and-hold, so never "beats" it.
    hold = candidate_with(
        name="Always In", parameters=[], rules=[{"condition": "close > 0", "action": "buy", "priority": 1}]
    )
    fake_llm.script("openai", Reply.json({"strategies": [hold]}))

    (candidate,) = generate(btc_hourly).candidates.all()

    assert candidate.outcome == CandidateOutcome.REJECTED
    assert "does not beat buy-and-hold" in candidate.reason
    assert not Strategy.objects.exists()


def test_malformed_json_gets_one_repair_and_then_counts(fake_llm, settings, btc_hourly):
    only(settings, "openai")
    fake_llm.script("openai", Reply.malformed_json(), Reply.json({"strategies": [SMA_CANDIDATE]}))

    run = generate(btc_hourly)

    assert run.status == JobStatus.COMPLETED, run.error
    assert run.llm_status == LLMCallStatus.REPAIRED
    assert run.candidates.count() == 1
    repair = fake_llm.requests("openai")[1].body["messages"][-1]["content"]
    assert "not valid JSON" in repair


@pytest.mark.parametrize(
    "condition",
    ["FOO(14) < 30", "__import__('os').system('touch {marker}') == 0"],
    ids=["unknown-indicator", "smuggled-code"],
)
def test_a_candidate_the_parser_refuses_is_rejected_and_never_run(
    fake_llm, settings, btc_hourly, tmp_path, condition
):
    only(settings, "openai")
    marker = tmp_path / "executed"
    bad = candidate_with()
    bad["rules"][0]["condition"] = condition.format(marker=marker)
    fake_llm.script("openai", Reply.json({"strategies": [bad]}), Reply.json({"strategies": [bad]}))

    run = generate(btc_hourly)

    assert run.status == JobStatus.FAILED
    assert "invalid output, also after one repair attempt" in run.error
    assert "rules.0.condition" in run.error
    assert run.llm_failures and run.llm_failures[0].startswith("openai:")
    assert not GenerationCandidate.objects.exists()
    assert not Strategy.objects.exists()
    assert not marker.exists()
    calls = LLMCall.objects.filter(purpose="strategy_generation").order_by("pk")
    assert [c.status for c in calls] == [LLMCallStatus.INVALID_OUTPUT] * 2
    assert all("rules.0.condition" in c.error for c in calls)


def test_a_refused_candidate_repaired_by_the_model_is_judged(fake_llm, settings, btc_hourly):
    only(settings, "openai")
    bad = candidate_with()
    bad["rules"][0]["condition"] = "__import__('os').getcwd() == 0"
    fake_llm.script("openai", Reply.json({"strategies": [bad]}), Reply.json({"strategies": [SMA_CANDIDATE]}))

    run = generate(btc_hourly)

    assert run.llm_status == LLMCallStatus.REPAIRED
    assert [c.document["rules"] for c in run.candidates.all()] == [SMA_CANDIDATE["rules"]]
    assert (
        "Why it was rejected: strategies[0]" in fake_llm.requests("openai")[1].body["messages"][-1]["content"]
    )


def test_a_duplicate_of_an_existing_strategy_or_an_earlier_candidate_is_rejected(
    fake_llm, settings, btc_hourly
):
    only(settings, "openai")
    make_strategy(btc_hourly, name="SMA", rules=SMA_RULES, parameters={"fast_period": 20, "slow_period": 50})
    copy_of_existing = candidate_with(
        name="Same SMA",
        parameters=[{"name": "slow_period", "value": 50}, {"name": "fast_period", "value": 20}],
        rules=[{**rule, "condition": rule["condition"].replace(" ", "  ")} for rule in SMA_RULES],
    )
    fake_llm.script("openai", Reply.json({"strategies": [copy_of_existing, SMA_CANDIDATE, SMA_CANDIDATE]}))

    run = generate(btc_hourly, count=3)

    outcomes = [(c.outcome, c.reason.split(":")[0]) for c in run.candidates.order_by("index")]
    assert outcomes[0] == (CandidateOutcome.REJECTED, "duplicate")
    assert outcomes[1][1] != "duplicate"
    assert outcomes[2] == (CandidateOutcome.REJECTED, "duplicate")
    assert run.candidates.get(index=0).holdout_metrics is None


def test_offline_generation_without_a_key_produces_candidates_labelled_offline(settings, btc_hourly):
    settings.LLM_PROVIDERS = ["offline"]
    settings.OPENAI_API_KEY = ""

    run = generate(btc_hourly, count=10)

    assert run.status == JobStatus.COMPLETED, run.error
    assert (run.provider_used, run.model) == ("offline", "offline")
    assert run.context["regime"]["trend"] in ("up", "down", "range")
    candidates = list(run.candidates.order_by("index"))
    assert len(candidates) == 10
    for candidate in candidates:
        assert candidate.holdout_metrics is not None, candidate.reason
        assert candidate.reason
    kept = [c for c in candidates if c.outcome == CandidateOutcome.KEPT]
    assert {c.strategy.source for c in kept} <= {StrategySource.TEMPLATE}  # not presented as an LLM's
    assert all(c.strategy is None for c in candidates if c.outcome == CandidateOutcome.REJECTED)
    assert run.summary["kept"] == len(kept)
    assert LLMCall.objects.get(purpose="strategy_generation").provider == "offline"

    # Asked again, the same templates are duplicates of the kept ones.
    again = generate(btc_hourly, count=10)
    duplicates = again.candidates.filter(reason__startswith="duplicate").count()
    assert duplicates == len(kept)


def test_the_api_accepts_a_generation_and_reports_it_when_polled(
    researcher, api_client, settings, btc_hourly, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        accepted = api_client.post(
            "/api/strategies/generate",
            {"symbol": "BTC/USD", "timeframe": "1h", "count": 2, "provider": "offline"},
            format="json",
        )
    assert accepted.status_code == 202, accepted.json()
    body = accepted.json()
    assert body["status"] == "pending"
    assert body["url"] == f"/api/strategies/generations/{body['id']}"
    assert len(callbacks) == 1  # the task is enqueued on commit
    assert api_client.get(body["url"]).json()["candidates"] == []

    generation_run(run_id=body["id"])  # what the worker's task does

    polled = api_client.get(body["url"]).json()
    assert polled["status"] == "completed"
    assert (polled["provider_requested"], polled["provider_used"]) == ("offline", "offline")
    assert len(polled["candidates"]) == 2
    assert {c["outcome"] for c in polled["candidates"]} <= {"kept", "rejected"}
    kept = [c["strategy_id"] for c in polled["candidates"] if c["outcome"] == "kept"]
    assert polled["kept_strategy_ids"] == kept
    assert all(c["holdout_metrics"]["bars"] == 1296 for c in polled["candidates"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"symbol": "NOPE"}, "symbol"),
        ({"timeframe": "7m"}, "timeframe"),
        ({"timeframe": "4h"}, "timeframe"),
        ({"count": 0}, "count"),
        ({"count": 11}, "count"),
        ({"provider": "openai"}, "provider"),
        ({"provider": "skynet"}, "provider"),
    ],
)
def test_bad_generation_input_is_a_400_naming_the_field(researcher, api_client, btc_hourly, change, field):
    body = {"symbol": "BTCUSD", "timeframe": "1h", "count": 2, **change}
    response = api_client.post("/api/strategies/generate", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not GenerationRun.objects.exists()


def test_an_unknown_generation_is_a_404(api_client):
    assert api_client.get("/api/strategies/generations/999").status_code == 404


def test_the_daily_update_generates_for_a_market_with_too_few_active_strategies(settings, btc_hourly):
    settings.STRATEGY_MIN_ACTIVE = 2

    update = strategies_daily_update(now=NOW)

    run = GenerationRun.objects.get()
    assert (run.update_run, run.trigger, run.count, run.provider_used) == (
        update,
        JobTrigger.DAILY_UPDATE,
        3,
        "offline",
    )
    assert run.status == JobStatus.COMPLETED, run.error
    (line,) = update.summary["generation"]
    assert (line["symbol"], line["timeframe"], line["active"], line["generation_run"]) == (
        "BTCUSD",
        "1h",
        0,
        run.pk,
    )
    assert line["kept"] == run.candidates.filter(outcome=CandidateOutcome.KEPT).count()
    for candidate in run.candidates.filter(outcome=CandidateOutcome.KEPT):
        decision = candidate.strategy.decisions.get(kind=DecisionKind.GENERATED)
        assert (decision.update_run, decision.numbers["generation_run"]) == (update, run.pk)


def test_the_daily_update_does_not_generate_when_no_market_needs_strategies(settings, btc_hourly):
    settings.STRATEGY_MIN_ACTIVE = 0

    update = strategies_daily_update(now=NOW)

    assert not GenerationRun.objects.exists()
    assert update.summary["generation"] == []


def test_a_generation_run_twice_runs_once(settings, btc_hourly):
    run = generation_create(instrument=btc_hourly, timeframe="1h", count=1, provider="offline")
    assert generation_run(run_id=run.pk).status == JobStatus.COMPLETED
    assert generation_run(run_id=run.pk) is None
    assert GenerationCandidate.objects.count() == 1


def test_the_context_sent_is_json_data(settings, btc_hourly):
    context = market_context(instrument=btc_hourly, timeframe="1h", count=2, owner=None)
    assert json.loads(json.dumps(context)) == context
    assert set(context["regime"]) >= {"trend", "volatility"}
    assert "RSI(14)" in context["indicators"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_on_the_llm_queue_runs_a_generation_once(researcher, api_client, btc_hourly, tmp_path):
    def wait_for_generation() -> dict[str, Any]:
        accepted = api_client.post(
            "/api/strategies/generate",
            {"symbol": "BTCUSD", "timeframe": "1h", "count": 1, "provider": "offline"},
            format="json",
        )
        assert accepted.status_code == 202
        url, deadline = accepted.json()["url"], time.monotonic() + 120
        while (body := api_client.get(url).json())["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline, f"{url} still {body['status']}"
            time.sleep(0.1)
        return body

    with running_worker(tmp_path / "worker.log"):
        first = wait_for_generation()
        # The same message again, as a broker redelivers it; the later generation on the same solo
        # worker finishes only after the redelivered message was consumed.
        generate_run.delay(first["id"])
        second = wait_for_generation()

    assert (first["status"], first["provider_used"]) == ("completed", "offline"), first["error"]
    assert second["status"] == "completed"
    assert GenerationRun.objects.get(pk=first["id"]).attempts == 1
    assert GenerationCandidate.objects.filter(run_id=first["id"]).count() == 1
