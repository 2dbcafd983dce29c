"""Evaluating conditions over candles, checking them against parameters, and combining rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from apps.market.domain.indicators import get_indicator
from apps.strategies.engine.rules import (
    Action,
    IndicatorCache,
    MissingSeriesError,
    Rule,
    RuleError,
    RuleSyntaxError,
    evaluate,
    parameter_bounds,
    parse,
    referenced_indicators,
    referenced_parameters,
    signals,
    validate,
)

from .candles import flat, random_walk

CLOSES = [10.0, 11.0, 12.0, 11.0, 10.0, 9.0, 10.0, 12.0]


def fired(condition: str, frame: pd.DataFrame | None = None, parameters=None, external=None) -> list[bool]:
    frame = flat(CLOSES) if frame is None else frame
    return evaluate(parse(condition), frame, parameters or {}, external).tolist()


def test_it_compares_a_price_field_with_a_number():
    assert fired("close > 10.5") == [c > 10.5 for c in CLOSES]


def test_it_computes_indicators_from_the_registry():
    # SMA(2) of the closes: nan, 10.5, 11.5, 11.5, 10.5, 9.5, 9.5, 11
    assert fired("SMA(2) > 11") == [False, False, True, True, False, False, False, False]


def test_it_does_arithmetic_with_the_usual_precedence():
    assert fired("close - 2 * 5 == 0") == [c == 10 for c in CLOSES]


def test_it_reads_previous_bars_and_never_fires_before_they_exist():
    assert fired("close > close[1]") == [False, True, True, False, False, False, True, True]
    assert fired("close[3] == 10") == [False, False, False, True, False, False, False, True]


def test_it_detects_crosses_only_on_the_bar_of_the_cross():
    # close vs 10.5: below, above, above, above, below, below, below, above
    assert fired("close crosses_above 10.5") == [False, True, False, False, False, False, False, True]
    assert fired("close crosses_below 10.5") == [False, False, False, False, True, False, False, False]


def test_a_cross_starting_from_equality_counts():
    assert fired("close crosses_above 10") == [False, True, False, False, False, False, False, True]


def test_it_never_fires_while_an_indicator_warms_up_even_under_not():
    frame = flat(CLOSES)
    assert fired("not SMA(4) > 100", frame) == [False, False, False, True, True, True, True, True]
    assert fired("SMA(4) != 0", frame)[:3] == [False, False, False]


def test_unknown_values_follow_three_valued_logic():
    # On the first three bars SMA(4) is unknown: "unknown or true" is true, "unknown and false" is false.
    assert fired("SMA(4) > 0 or close > 0")[:3] == [True, True, True]
    assert fired("not (SMA(4) > 0 and close < 0)")[:3] == [True, True, True]
    assert fired("not (SMA(4) > 0 and close > 0)")[:3] == [False, False, False]


def test_a_division_by_zero_never_fires():
    assert fired("close / (close - 10) > 0") == [
        False,
        *[c > 10 for c in CLOSES[1:4]],
        False,
        False,
        False,
        True,
    ]
    assert not any(fired("not close / 0 > 1"))


def test_parameters_supply_values_and_indicator_arguments():
    parameters = {"level": 11, "fast": 2}
    assert fired("close >= level", parameters=parameters) == [c >= 11 for c in CLOSES]
    assert fired("SMA(fast) > 11", parameters=parameters) == fired("SMA(2) > 11")


def test_a_bare_indicator_reads_its_strategy_parameter_or_the_registry_default():
    frame = random_walk(300, seed=1)
    default = get_indicator("SMA").params[0].default
    assert fired("SMA > close", frame) == fired(f"SMA({default:g}) > close", frame)
    assert fired("SMA > close", frame, {"sma_period": 7}) == fired("SMA(7) > close", frame)


def test_it_reads_named_outputs_of_multi_output_indicators():
    frame = random_walk(400, seed=2)
    macd = get_indicator("MACD").compute(frame, (12, 26, 9))
    assert fired("MACD(12,26,9).signal > 0", frame) == (macd["signal"] > 0).tolist()
    assert fired("MACD.histogram > 0", frame) == (macd["histogram"] > 0).tolist()


def test_it_reads_external_series_supplied_by_the_caller():
    proba = np.linspace(0, 1, len(CLOSES))
    assert fired("ML_PROBA > 0.5", external={"ML_PROBA": proba}) == (proba > 0.5).tolist()


def test_it_explains_a_missing_external_series():
    with pytest.raises(MissingSeriesError, match="external series ML_RETURN was not supplied"):
        fired("ML_RETURN > 0", external={"ML_PROBA": np.zeros(len(CLOSES))})


def test_it_rejects_an_external_series_of_the_wrong_length():
    with pytest.raises(RuleError, match="ML_PROBA with 8 values"):
        fired("ML_PROBA > 0", external={"ML_PROBA": np.zeros(3)})


def test_it_explains_missing_candle_columns():
    frame = flat(CLOSES).drop(columns="volume")
    with pytest.raises(RuleError, match="no 'volume' column"):
        fired("volume > 0", frame)
    with pytest.raises(RuleError, match="candles with high, low, close, volume"):
        fired("MFI(14) > 50", frame)


def test_it_rejects_an_unknown_parameter_listing_the_valid_ones():
    with pytest.raises(RuleSyntaxError) as caught:
        fired("close < rsi_oversld", parameters={"rsi_oversold": 30, "rsi_period": 14})
    assert caught.value.position == 8
    assert "rsi_oversold, rsi_period" in caught.value.expected


def test_it_rejects_a_parameter_that_is_not_a_number():
    with pytest.raises(RuleSyntaxError, match="level is 'high'"):
        fired("close < level", parameters={"level": "high"})


def test_it_rejects_parameter_values_outside_the_indicator_range():
    with pytest.raises(RuleSyntaxError, match="period"):
        fired("SMA(fast) > 1", parameters={"fast": 0})
    with pytest.raises(RuleSyntaxError, match="period"):
        fired("SMA > 1", parameters={"sma_period": 2.5})


def test_it_returns_a_bool_array_as_long_as_the_frame_even_for_constant_conditions():
    result = evaluate(parse("2 > 1"), flat(CLOSES), {})
    assert result.dtype == np.bool_ and result.tolist() == [True] * len(CLOSES)


def test_it_computes_an_indicator_used_by_several_rules_once():
    frame = random_walk(200, seed=3)
    cache = IndicatorCache(frame)
    for condition in ("SMA(14) < 30", "SMA(14) > 70", "close > SMA(14) and SMA(10) > 0"):
        evaluate(parse(condition), frame, {}, cache=cache)
    assert cache.computed == 2


def test_it_refuses_a_cache_built_for_another_frame():
    with pytest.raises(ValueError, match="different frame"):
        evaluate(parse("close > 1"), flat(CLOSES), {}, cache=IndicatorCache(flat(CLOSES)))


def test_validate_accepts_a_condition_whose_names_all_resolve():
    validate("RSI < rsi_oversold and SMA(fast) > close", {"rsi_oversold": 30, "fast": 10})


def test_validate_rejects_what_evaluation_would_reject():
    with pytest.raises(RuleSyntaxError, match="unknown name 'rsi_oversold'"):
        validate("RSI < rsi_oversold", {})
    with pytest.raises(RuleSyntaxError, match="expected a number"):
        validate("RSI < ", {})


def test_it_lists_what_a_condition_refers_to():
    tree = parse("RSI < rsi_oversold and SMA(fast) crosses_above EMA(20) and MACD.signal > 0")
    assert referenced_indicators(tree) == {"RSI", "SMA", "EMA", "MACD"}
    assert referenced_parameters(tree) == {"rsi_oversold", "fast"}


def test_it_maps_parameters_that_feed_indicators_to_their_ranges():
    bounds = parameter_bounds(parse("RSI < oversold and SMA(fast) > close"))
    assert set(bounds) == {"rsi_period", "fast"}
    assert (bounds["fast"].minimum, bounds["fast"].maximum) == (1, 10_000)


def test_a_rule_is_parsed_when_created():
    with pytest.raises(RuleSyntaxError):
        Rule("close >", "buy")


def test_a_rule_rejects_an_unknown_action_and_a_non_integer_priority():
    with pytest.raises(RuleError, match="action 'hold'"):
        Rule("close > 1", "hold")
    with pytest.raises(RuleError, match="priority"):
        Rule("close > 1", "buy", priority=1.5)


def test_a_rule_reads_and_writes_the_strategy_document_shape():
    rule = Rule.from_dict({"condition": "RSI < 30", "action": "BUY", "priority": 2})
    assert (rule.action, rule.priority, rule.code) == ("buy", 2, Action.BUY)
    assert rule.to_dict() == {"condition": "RSI < 30", "action": "buy", "priority": 2}
    with pytest.raises(RuleError, match="condition"):
        Rule.from_dict({"action": "buy"})


def test_signals_give_each_bar_the_action_of_its_firing_rule():
    codes = signals([Rule("close > 11", "sell"), Rule("close < 10", "buy")], flat(CLOSES), {})
    assert codes.dtype == np.int8
    assert codes.tolist() == [0, 0, 2, 0, 0, 1, 0, 2]


def test_the_lowest_priority_number_wins_a_bar_where_two_rules_fire():
    rules = [Rule("close > 10", "sell", priority=2), Rule("close > 11", "buy", priority=1)]
    assert signals(rules, flat(CLOSES), {}).tolist() == [0, 2, 1, 2, 0, 0, 0, 1]


def test_list_order_breaks_a_priority_tie():
    rules = [Rule("close > 11", "short"), Rule("close > 10", "buy")]
    assert signals(rules, flat(CLOSES), {}).tolist() == [0, 1, 3, 1, 0, 0, 0, 3]


def test_signals_accept_strategy_document_rules():
    rules = [{"condition": "close > 11", "action": "sell"}]
    assert signals(rules, flat(CLOSES), {}).tolist() == [0, 0, 2, 0, 0, 0, 0, 2]
