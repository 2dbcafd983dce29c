"""Parsing conditions: the grammar, the tree it builds, and errors that say where and what."""

from __future__ import annotations

import pytest

from apps.strategies.engine.rules import MAX_CONDITION_LENGTH, MAX_DEPTH, RuleSyntaxError, parse
from apps.strategies.engine.rules.syntax import (
    Arithmetic,
    Comparison,
    External,
    Field,
    IndicatorCall,
    Lag,
    Logical,
    Negate,
    Not,
    Number,
    Parameter,
)


def expression(condition: str):
    return parse(condition).expression


def test_it_parses_a_comparison_of_an_indicator_with_a_number():
    tree = expression("SMA(50) < 30")
    assert tree == Comparison(0, "<", IndicatorCall(0, "SMA", (Number(4, 50.0),), "value"), Number(10, 30.0))


def test_it_reads_a_bare_indicator_as_a_call_without_arguments():
    assert expression("EMA > close").left == IndicatorCall(0, "EMA", None, "value")


def test_it_reads_indicator_names_case_insensitively_and_keeps_the_registry_spelling():
    assert expression("ema(5) > sma(10)").left.name == "EMA"


def test_it_reads_an_unknown_bare_name_as_a_strategy_parameter():
    assert expression("close > entry_level").right == Parameter(8, "entry_level")


def test_it_reads_parameter_names_as_indicator_arguments():
    assert expression("SMA(fast_period) > 1").left.args == (Parameter(4, "fast_period"),)


def test_it_reads_the_price_fields_in_any_case():
    tree = expression("Close > OPEN")
    assert (tree.left, tree.right) == (Field(0, "close"), Field(8, "open"))


def test_it_reads_previous_bar_values():
    assert expression("close[1] < close").left == Lag(0, Field(0, "close"), 1)
    assert expression("SMA(20)[2] > 0").left == Lag(
        0, IndicatorCall(0, "SMA", (Number(4, 20.0),), "value"), 2
    )


def test_it_gives_multiplication_precedence_over_addition():
    tree = expression("close > open + high * 2")
    assert tree.right == Arithmetic(
        8, "+", Field(8, "open"), Arithmetic(15, "*", Field(15, "high"), Number(22, 2.0))
    )


def test_it_groups_subtraction_from_the_left():
    tree = expression("close - open - 1 > 0")
    assert tree.left == Arithmetic(
        0, "-", Arithmetic(0, "-", Field(0, "close"), Field(8, "open")), Number(15, 1.0)
    )


def test_it_folds_a_negative_number_and_negates_anything_else():
    tree = expression("-close < -3.5")
    assert tree.left == Negate(0, Field(1, "close"))
    assert tree.right == Number(9, -3.5)


def test_it_binds_and_tighter_than_or_and_flattens_chains():
    tree = expression("close > 1 or close > 2 and close > 3 and close > 4")
    assert isinstance(tree, Logical) and tree.op == "or"
    assert tree.operands[1].op == "and" and len(tree.operands[1].operands) == 3


def test_it_applies_not_to_the_comparison_that_follows():
    tree = expression("not close > 1 and open > 1")
    assert tree.op == "and" and isinstance(tree.operands[0], Not)


def test_it_honours_parentheses():
    tree = expression("(close > 1 or open > 1) and high > 1")
    assert tree.op == "and" and tree.operands[0].op == "or"


def test_it_accepts_keywords_in_capitals():
    assert expression("close > 1 AND NOT open > 2").op == "and"


def test_it_parses_crosses_as_comparisons():
    tree = expression("EMA(12) crosses_above EMA(26)")
    assert isinstance(tree, Comparison) and tree.op == "crosses_above"


def test_it_reserves_the_external_ml_series():
    assert expression("ML_PROBA > 0.6").left == External(0, "ML_PROBA")
    assert expression("ml_return > 0").left == External(0, "ML_RETURN")


def test_the_tree_is_immutable():
    tree = expression("close > 1")
    with pytest.raises(AttributeError):
        tree.op = "<"


def test_equal_conditions_give_equal_trees():
    assert parse("SMA(10) > SMA(20)") == parse("SMA(10) > SMA(20)")


def error(condition: str) -> RuleSyntaxError:
    with pytest.raises(RuleSyntaxError) as caught:
        parse(condition)
    return caught.value


def test_it_reports_a_missing_operand_with_its_position_and_what_was_expected():
    caught = error("RSI < ")
    assert str(caught) == "RSI < : expected a number, field, indicator or parameter at position 6"
    assert (caught.condition, caught.position) == ("RSI < ", 6)
    assert caught.expected == "a number, field, indicator or parameter"


def test_it_reports_an_unexpected_token():
    caught = error("close > > 3")
    assert caught.position == 8
    assert "unexpected '>'" in str(caught)


def test_it_rejects_a_bare_value_because_a_condition_must_be_true_or_false():
    caught = error("RSI")
    assert caught.position == 3
    assert caught.expected.startswith("a comparison")


@pytest.mark.parametrize(
    ("condition", "position"),
    [("close > 1 and close", 14), ("(close > 1) + 2 > 3", 1), ("not close", 4), ("close > (open > 1)", 9)],
)
def test_it_rejects_mixing_values_and_conditions(condition, position):
    assert error(condition).position == position


def test_it_rejects_chained_comparisons():
    assert error("1 < close < 3").position == 10


def test_it_names_the_valid_indicators_for_an_unknown_one():
    caught = error("FOO(3) > 1")
    assert caught.position == 0
    assert "unknown indicator 'FOO'" in str(caught)
    assert "SMA" in caught.expected and "EMA" in caught.expected


def test_it_names_the_valid_outputs_for_an_unknown_one():
    caught = error("SMA(5).upper > 1")
    assert caught.position == 7
    assert caught.expected == "an output of SMA (value)"


def test_it_rejects_out_of_range_indicator_arguments_with_the_valid_range():
    caught = error("SMA(0) > close")
    assert caught.position == 0
    assert "period 1..10000" in caught.expected


def test_it_rejects_too_many_indicator_arguments():
    assert "at most 1 arguments" in error("SMA(5, 6) > 1").expected


def test_it_rejects_a_fractional_lag():
    assert error("close[1.5] > 1").position == 6


def test_it_rejects_a_single_equals_sign():
    caught = error("close = 3")
    assert caught.position == 6
    assert "unexpected character '='" in str(caught)


def test_it_rejects_python_code_instead_of_running_it():
    caught = error("__import__('os').system('true')")
    assert caught.position == 11


def test_it_rejects_an_empty_condition():
    assert error("   ").position == 0


def test_it_rejects_conditions_longer_than_the_limit():
    condition = " and ".join(["close > 1"] * 100)
    assert len(condition) > MAX_CONDITION_LENGTH
    assert error(condition).position == MAX_CONDITION_LENGTH


def test_it_rejects_nesting_deeper_than_the_limit():
    deep = "(" * (MAX_DEPTH + 1) + "close > 1" + ")" * (MAX_DEPTH + 1)
    assert "nesting" in error(deep).expected
    assert "nesting" in error("-" * (MAX_DEPTH + 1) + "close > 1").expected


def test_it_rejects_an_arithmetic_chain_deeper_than_the_limit():
    assert "nesting" in error("close" + " + 1" * (MAX_DEPTH + 5) + " > 0").expected


def test_it_accepts_nesting_within_the_limit():
    shallow = "(" * 10 + "close > 1" + ")" * 10
    tree = parse(shallow).expression
    assert (tree.op, tree.left, tree.right) == (">", Field(10, "close"), Number(18, 1.0))
