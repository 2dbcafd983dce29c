"""Which parameters a strategy reads: every place of the grammar, bare indicators, risk settings, and
the optimiser's refusal to search the others."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from apps.strategies.engine.backtest import RISK_PARAMETERS, run_backtest
from apps.strategies.engine.optimize import OptimizeError, UnusedParameterError, validate_space
from apps.strategies.engine.parameters import number_written_at, strategy_parameters_read, unused_parameters
from apps.strategies.engine.rules import evaluate, parameters_read, parse

from .candles import random_walk

# (condition, exactly the parameter names it reads): one case per place a parameter can stand.
PLACES = [
    ("close < level", {"level"}),  # right of a comparison
    ("level > close", {"level"}),  # left of a comparison
    ("close crosses_above trigger", {"trigger"}),  # a cross
    ("close > SMA(20) * band", {"band"}),  # arithmetic: * / + -
    ("close / divisor > 1", {"divisor"}),
    ("close + shift > 100", {"shift"}),
    ("close - offset > 100", {"offset"}),
    ("-drop < close", {"drop"}),  # negation
    ("level[2] < close", {"level"}),  # a lagged parameter
    ("(close - base)[1] > 0", {"base"}),  # inside a lagged expression
    ("not (close > ceiling)", {"ceiling"}),  # under not
    ("close > a and close < b or close == c", {"a", "b", "c"}),  # and / or chains
    ("close != Level", {"Level"}),  # names are case-sensitive
    ("SMA(fast) > close", {"fast"}),  # an indicator argument
    ("BB(20, width).upper > close", {"width"}),  # a later argument, with an output
    ("RSI(period)[2] < 30", {"period"}),  # an argument under a lag
    ("EMA(fast) crosses_above EMA(slow)", {"fast", "slow"}),
    ("RSI < 30", {"rsi_period"}),  # a bare indicator reads its <name>_<param> settings
    ("MACD.signal > 0", {"macd_fast", "macd_slow", "macd_signal"}),
    ("close > BB.upper", {"bb_period", "bb_std"}),
    ("RSI(14) < 30", set()),  # explicit arguments: no setting is read
    ("close > open and volume > 0", set()),
    ("OBV > OBV[1]", set()),  # an indicator without parameters
]


@pytest.mark.parametrize(("condition", "names"), PLACES)
def test_it_finds_a_parameter_wherever_the_grammar_allows_one(condition, names):
    assert parameters_read(parse(condition)) == names


class Recording(Mapping[str, object]):
    """Parameters that note every name the engine asks about (looked up or tested for)."""

    def __init__(self, values: Mapping[str, object]) -> None:
        self.values = dict(values)
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> object:
        self.asked.add(name)
        return self.values[name]

    def __contains__(self, name: object) -> bool:
        self.asked.add(str(name))
        return name in self.values

    def get(self, name: str, default: object = None) -> object:
        self.asked.add(name)
        return self.values.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


@pytest.mark.parametrize(("condition", "names"), PLACES)
def test_evaluation_asks_for_exactly_the_parameters_found(condition, names):
    # Valid values for every name the cases use: periods, thresholds and bands alike.
    values = dict.fromkeys(names, 10) | {"bb_std": 2.0, "width": 2.0, "macd_slow": 26, "macd_fast": 12}
    parameters = Recording(values)

    evaluate(parse(condition), random_walk(120, seed=1), parameters)

    assert parameters.asked == names


def test_a_backtest_reads_nothing_beyond_the_rules_and_the_risk_settings():
    rules = [
        {"condition": "RSI(rsi_period) < rsi_oversold", "action": "buy"},
        {"condition": "RSI > 70", "action": "sell"},
    ]
    parameters = Recording(
        {"rsi_period": 14, "rsi_oversold": 30, "rsi_overbought": 70, "stop_loss_pct": 0.02}
    )

    run_backtest(random_walk(300, seed=2), rules, parameters)

    assert parameters.asked <= strategy_parameters_read(rules)
    assert "rsi_overbought" not in parameters.asked


def test_a_strategy_reads_its_rules_parameters_and_every_risk_setting():
    rules = [{"condition": "SMA(fast) crosses_above SMA(slow)", "action": "buy"}]

    assert strategy_parameters_read(rules) == {"fast", "slow"} | RISK_PARAMETERS


def test_the_briefs_strategy_leaves_its_thresholds_unused():
    rules = [{"condition": "RSI < 30", "action": "buy"}, {"condition": "RSI > 70", "action": "sell"}]
    parameters = {
        "rsi_period": 14,
        "rsi_overbought": 70,
        "rsi_oversold": 30,
        "stop_loss_pct": 0.02,
        "take_profit_pct": 0.05,
    }

    assert unused_parameters(rules, parameters) == ["rsi_overbought", "rsi_oversold"]
    assert number_written_at(rules, parameters["rsi_oversold"]) == 0
    assert number_written_at(rules, parameters["rsi_overbought"]) == 1


def test_a_number_written_in_an_argument_or_negated_is_found_and_anything_else_is_not():
    rules = [{"condition": "RSI(21) < 30", "action": "buy"}, {"condition": "close > -5", "action": "sell"}]

    assert number_written_at(rules, 21) == 0
    assert number_written_at(rules, -5.0) == 1
    assert number_written_at(rules, 99) is None
    assert number_written_at(rules, True) is None


RULES = [{"condition": "RSI < 30", "action": "buy"}, {"condition": "close > SMA(slow)", "action": "sell"}]


def test_the_optimiser_refuses_a_space_over_parameters_no_rule_reads_naming_them_all():
    with pytest.raises(UnusedParameterError) as caught:
        validate_space({"rsi_oversold": [20, 25, 30], "slow": [20], "rsi_overbought": [70]}, RULES)

    assert sorted(caught.value.problems) == ["rsi_overbought", "rsi_oversold"]
    assert "parameters 'rsi_oversold', 'rsi_overbought' are not used by the strategy" in str(caught.value)
    assert "no rule reads it" in caught.value.problems["rsi_oversold"]


def test_the_optimiser_searches_a_bare_indicators_setting_and_the_risk_settings():
    validate_space({"rsi_period": [10, 14], "slow": [20, 50], "stop_loss_pct": [0.02]}, RULES)


def test_an_unused_parameter_is_an_optimise_error_before_any_value_is_checked():
    with pytest.raises(OptimizeError, match="'fast' is not used"):
        validate_space({"fast": [0]}, RULES)
