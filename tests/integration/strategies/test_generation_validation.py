"""The strict check of an LLM's strategy candidates, the offline templates and the holdout verdict."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from apps.strategies.generation.schema import (
    MAX_CANDIDATES,
    answer_schema,
    candidate_document,
    document_key,
    validate_answer,
)
from apps.strategies.generation.templates import offline_candidates
from apps.strategies.services.generation import holdout_verdict

SMA_CANDIDATE: dict[str, Any] = {
    "name": "SMA Cross 10/40",
    "type": "trend_following",
    "rationale": "The trend is up.",
    "parameters": [
        {"name": "fast_period", "value": 10},
        {"name": "slow_period", "value": 40},
        {"name": "stop_loss_pct", "value": 0.03},
    ],
    "indicators": ["SMA"],
    "rules": [
        {"condition": "SMA(fast_period) crosses_above SMA(slow_period)", "action": "buy", "priority": 1},
        {"condition": "SMA(fast_period) crosses_below SMA(slow_period)", "action": "sell", "priority": 1},
    ],
}


def answer(*candidates: dict[str, Any]) -> dict[str, Any]:
    return {"strategies": [copy.deepcopy(c) for c in candidates or (SMA_CANDIDATE,)]}


def with_condition(condition: str) -> dict[str, Any]:
    candidate = copy.deepcopy(SMA_CANDIDATE)
    candidate["rules"][0]["condition"] = condition
    return answer(candidate)


def test_it_accepts_a_valid_candidate_and_converts_its_parameters_to_a_document():
    validate_answer(answer(), count=1)
    document = candidate_document(SMA_CANDIDATE)
    assert document["parameters"] == {"fast_period": 10, "slow_period": 40, "stop_loss_pct": 0.03}


@pytest.mark.parametrize(
    ("condition", "says"),
    [
        ("FOO(14) < 30", "FOO"),
        ("__import__('os').system('touch /tmp/pwned') == 0", "rules.0.condition"),
        ("close.__class__ > 1", "rules.0.condition"),
        ("RSI(undefined_period) < 30", "undefined_period"),
        ("RSI < 30; import os", "rules.0.condition"),
    ],
)
def test_it_rejects_conditions_the_parser_refuses(condition, says):
    with pytest.raises(ValueError, match=says):
        validate_answer(with_condition(condition), count=1)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda c: c.update(extra="x"), "Additional properties are not allowed"),
        (lambda c: c.update(type="ml_signal"), "type: 'ml_signal' is not one of"),
        (lambda c: c.update(name="rm -rf /\n"), "name: .* does not match"),
        (lambda c: c["parameters"].append({"name": "stop_loss_pct", "value": 0.5}), "used more than once"),
        (lambda c: c["parameters"].__setitem__(2, {"name": "stop_loss_pct", "value": 3}), "stop_loss_pct"),
        (
            lambda c: c["parameters"].__setitem__(0, {"name": "fast_period", "value": True}),
            "is not of type 'number'",
        ),
        (lambda c: c["rules"][0].update(action="short"), r"is not one of \['buy', 'sell'\]"),
        (lambda c: c["rules"][0].update(note="x"), "Additional properties are not allowed"),
        (lambda c: c.update(indicators=["NOPE(3)"]), "indicators"),
        (lambda c: c["rules"][0].update(condition="ML_PROBA > 0.6"), "model series"),
        (
            lambda c: c["parameters"][0].update(value=10**400),
            r"parameters\[0\]\.value: must be at most 1e\+09",
        ),
        (lambda c: c["rules"][0].update(priority=-1), "must be at least 0"),
    ],
)
def test_it_rejects_anything_but_a_sane_long_only_document(change, says):
    candidate = copy.deepcopy(SMA_CANDIDATE)
    change(candidate)
    with pytest.raises(ValueError, match=says):
        validate_answer(answer(candidate), count=1)


def test_it_rejects_more_candidates_than_asked_for_and_extra_top_level_keys():
    with pytest.raises(ValueError, match="must have at most 1 items, has 2"):
        validate_answer(answer(SMA_CANDIDATE, SMA_CANDIDATE), count=1)
    with pytest.raises(ValueError, match=r"the answer: Additional properties are not allowed \('comment'"):
        validate_answer({**answer(), "comment": "hi"}, count=1)


@pytest.mark.parametrize("trend", ["up", "down", "range"])
@pytest.mark.parametrize("volatility", ["low", "normal", "high"])
def test_every_offline_answer_passes_the_same_validation(trend, volatility):
    context = {"regime": {"trend": trend, "volatility": volatility}, "count": MAX_CANDIDATES}
    offline = offline_candidates(context)
    validate_answer(offline, count=MAX_CANDIDATES)
    assert len(offline["strategies"]) == MAX_CANDIDATES


def test_the_offline_templates_follow_the_regime():
    def first_type(trend: str, volatility: str = "normal") -> str:
        context = {"regime": {"trend": trend, "volatility": volatility}, "count": 1}
        return offline_candidates(context)["strategies"][0]["type"]

    assert first_type("up") == "trend_following"
    assert first_type("down") == "mean_reversion"
    assert first_type("range") == "mean_reversion"
    assert first_type("up", "high") == "breakout"


def test_the_schema_is_strict_for_structured_output():
    schema = answer_schema(3)
    item = schema["properties"]["strategies"]["items"]
    for obj in (
        schema,
        item,
        item["properties"]["parameters"]["items"],
        item["properties"]["rules"]["items"],
    ):
        assert obj["additionalProperties"] is False
        assert sorted(obj["required"]) == sorted(obj["properties"])
    assert schema["properties"]["strategies"]["maxItems"] == 3


def test_the_holdout_verdict_needs_both_buy_and_hold_and_the_sharpe():
    metrics = {"total_return_pct": 5.0, "buy_and_hold_return_pct": -3.0, "sharpe_ratio": 1.2}
    assert holdout_verdict(metrics, 0.5) is None
    assert "Sharpe below" in holdout_verdict({**metrics, "sharpe_ratio": 0.3}, 0.5)
    assert "Sharpe below" in holdout_verdict({**metrics, "sharpe_ratio": None}, 0.5)
    assert "buy-and-hold" in holdout_verdict({**metrics, "buy_and_hold_return_pct": 6.0}, 0.5)


def test_duplicates_are_recognised_through_whitespace_and_action_case():
    rules = [{"condition": "RSI  <  a", "action": "BUY", "priority": 1}]
    same = [{"condition": "RSI < a", "action": "buy", "priority": 1}]
    assert document_key(parameters={"a": 1}, rules=rules) == document_key(parameters={"a": 1}, rules=same)
    assert document_key(parameters={"a": 2}, rules=rules) != document_key(parameters={"a": 1}, rules=same)


def test_a_parameter_no_rule_reads_does_not_make_a_candidate_new():
    rules = [{"condition": "RSI < 30", "action": "buy", "priority": 1}]
    bare = document_key(parameters={"rsi_period": 14}, rules=rules)

    assert document_key(parameters={"rsi_period": 14, "rsi_oversold": 25}, rules=rules) == bare
    assert document_key(parameters={"rsi_period": 10, "rsi_oversold": 25}, rules=rules) != bare
