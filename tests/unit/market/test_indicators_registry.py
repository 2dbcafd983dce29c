"""The indicator registry: names, parameters, outputs, keys, warm-up and the errors for bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from apps.market.domain import kernels
from apps.market.domain.indicators import REGISTRY, IndicatorError, compute, get_indicator
from tests.unit.market.synthetic import random_walk

REQUIRED = {
    "RSI", "MACD", "SMA", "EMA", "WMA", "BB", "ATR", "STOCH", "ADX", "CCI", "OBV", "VWAP", "MFI", "WILLR",
    "ROC", "KC", "DC", "ICHIMOKU", "PSAR",
}  # fmt: skip

WALK = random_walk(11, bars=400)


def test_every_required_indicator_is_registered():
    assert set(REGISTRY) >= REQUIRED


@pytest.mark.parametrize(
    ("name", "outputs"),
    [
        ("MACD", ("macd", "signal", "histogram")),
        ("BB", ("middle", "upper", "lower", "width", "percent_b")),
        ("STOCH", ("k", "d")),
        ("ADX", ("adx", "plus_di", "minus_di")),
        ("KC", ("middle", "upper", "lower")),
        ("DC", ("middle", "upper", "lower")),
        ("ICHIMOKU", ("conversion", "base", "span_a", "span_b")),
        ("PSAR", ("value", "trend")),
        ("RSI", ("value",)),
    ],
)
def test_outputs_are_listed_with_the_default_first(name, outputs):
    indicator = get_indicator(name)
    assert indicator.outputs == outputs
    assert indicator.default_output == outputs[0]


@pytest.mark.parametrize(
    ("name", "defaults"),
    [
        ("RSI", {"period": 14}),
        ("MACD", {"fast": 12, "slow": 26, "signal": 9}),
        ("BB", {"period": 20, "std": 2.0}),
        ("STOCH", {"period": 14, "smooth": 3}),
        ("CCI", {"period": 20, "constant": 0.015}),
        ("KC", {"period": 20, "atr_period": 10, "multiplier": 2.0}),
        ("ICHIMOKU", {"conversion": 9, "base": 26, "span_b": 52}),
        ("PSAR", {"step": 0.02, "max_step": 0.2}),
        ("WMA", {"period": 9}),
        ("ROC", {"period": 12}),
        ("OBV", {}),
    ],
)
def test_defaults_are_ta_defaults(name, defaults):
    assert get_indicator(name).resolve() == defaults


def test_lookup_ignores_case_and_unknown_names_list_the_valid_ones():
    assert get_indicator("rsi") is get_indicator("RSI")
    with pytest.raises(IndicatorError, match=r"unknown indicator 'RSX'; valid: .*ADX.*RSI"):
        get_indicator("RSX")


def test_resolve_accepts_positional_named_and_partial_arguments():
    macd = get_indicator("MACD")
    assert macd.resolve((5, 35)) == {"fast": 5, "slow": 35, "signal": 9}
    assert macd.resolve({"signal": 4}) == {"fast": 12, "slow": 26, "signal": 4}
    assert macd.resolve([12.0, 26.0, 9.0]) == {"fast": 12, "slow": 26, "signal": 9}
    assert isinstance(macd.resolve([12.0])["fast"], int)


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("RSI", (0,), r"RSI: period must be a whole number from 1 to 10000, got 0; usage: RSI\(period=14\)"),
        ("RSI", (10_001,), r"period must be a whole number from 1 to 10000, got 10001"),
        ("RSI", (14.5,), r"period must be a whole number from 1 to 10000, got 14.5"),
        ("RSI", ("14",), r"period must be a whole number .* got '14'"),
        ("RSI", (None,), r"got None"),
        ("RSI", (True,), r"got True"),
        ("RSI", (float("nan"),), r"got nan"),
        ("BB", (20, float("inf")), r"std must be a number from 0.1 to 10, got inf"),
        ("BB", (20, 0), r"std must be a number from 0.1 to 10, got 0"),
        ("RSI", (14, 3), r"RSI takes at most 1 parameters \(period\), got 2; usage: RSI\(period=14\)"),
        ("OBV", (3,), r"OBV takes at most 0 parameters \(none\), got 1"),
        ("MACD", {"fats": 3}, r"MACD has no parameter fats; valid: fast, slow, signal"),
        (
            "MACD",
            (26, 12),
            r"fast \(26\) must be below slow \(12\); usage: MACD\(fast=12, slow=26, signal=9\)",
        ),
        ("PSAR", (0.3, 0.2), r"step \(0.3\) must not exceed max_step \(0.2\)"),
        ("RSI", "14", r"parameters must be a list or a mapping"),
    ],
)
def test_it_rejects_bad_parameters_saying_what_is_valid(name, args, message):
    with pytest.raises(IndicatorError, match=message):
        get_indicator(name).resolve(args)


def test_compute_validates_parameters_too():
    with pytest.raises(IndicatorError, match="period must be a whole number"):
        compute(WALK, "SMA", (0,))


def test_it_rejects_frames_missing_a_required_column():
    with pytest.raises(IndicatorError, match="ATR needs columns high, low, close; missing high"):
        compute(WALK.drop(columns=["high"]), "ATR")


def test_strategy_parameter_names_are_prefixed_with_the_indicator():
    macd = get_indicator("MACD")
    assert [macd.strategy_param_name(p) for p in macd.params] == ["macd_fast", "macd_slow", "macd_signal"]
    assert get_indicator("RSI").strategy_param_name(get_indicator("RSI").params[0]) == "rsi_period"


def test_keys_label_parameters_and_non_default_outputs():
    macd, bb, obv = get_indicator("MACD"), get_indicator("BB"), get_indicator("OBV")
    assert macd.key(macd.resolve(), "signal") == "MACD(12,26,9).signal"
    assert macd.key(macd.resolve(), "macd") == "MACD(12,26,9)"
    assert bb.key(bb.resolve((20, 2.5)), "upper") == "BB(20,2.5).upper"
    assert obv.key(obv.resolve()) == "OBV"
    with pytest.raises(IndicatorError, match="MACD has no output 'upper'; valid: macd, signal, histogram"):
        macd.key(macd.resolve(), "upper")


@pytest.mark.parametrize(
    ("name", "args", "warmup"),
    [
        ("SMA", None, 19),
        ("RSI", None, 13),
        ("MACD", None, 33),
        ("MACD", (3, 10, 4), 12),
        ("STOCH", None, 15),
        ("ADX", None, 27),
        ("ROC", None, 12),
        ("KC", (5, 30), 29),
        ("ICHIMOKU", None, 51),
        ("OBV", None, 0),
        ("PSAR", None, 2),
    ],
)
def test_warmup_counts_the_leading_bars_without_every_output(name, args, warmup):
    assert get_indicator(name).warmup(args) == warmup


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_exactly_the_warmup_bars_lack_an_output(name):
    indicator = get_indicator(name)
    outputs = indicator.compute(WALK)
    missing = np.isnan(np.vstack([outputs[o] for o in indicator.outputs])).any(axis=0)
    warmup = indicator.warmup()
    assert missing[:warmup].all()
    assert not missing[warmup:].any()


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("bars", [0, 1, 2, 3, 27, 52])
def test_short_frames_give_full_length_outputs_without_errors(name, bars):
    indicator = get_indicator(name)
    outputs = indicator.compute(WALK.iloc[:bars])
    for output in indicator.outputs:
        assert outputs[output].shape == (bars,)
        assert outputs[output].dtype == np.float64
    missing = np.isnan(np.vstack([outputs[o] for o in indicator.outputs])).any(axis=0)
    assert missing[: indicator.warmup()].all()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_it_reads_the_frame_without_changing_it_and_ignores_the_index(name):
    frame = WALK.copy()
    by_time = compute(frame, name)
    by_position = compute(frame.reset_index(drop=True), name)
    pd.testing.assert_frame_equal(frame, WALK)
    for output, values in by_time.items():
        np.testing.assert_array_equal(values, by_position[output])


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_indicator_documents_its_definition(name):
    description = get_indicator(name).description
    assert len(description) > 40
    assert description != get_indicator(name).title


def test_an_rsi_of_a_steady_rise_is_100_and_of_a_steady_fall_is_0():
    rising = WALK.assign(close=np.linspace(100.0, 200.0, len(WALK)))
    falling = WALK.assign(close=np.linspace(200.0, 100.0, len(WALK)))
    assert (compute(rising, "RSI")["value"][13:] == 100.0).all()
    np.testing.assert_allclose(compute(falling, "RSI")["value"][13:], 0.0, atol=1e-12)


def test_a_constant_series_has_its_own_value_as_every_moving_average():
    flat = WALK.assign(close=250.0)
    for name in ("SMA", "EMA", "WMA"):
        np.testing.assert_allclose(compute(flat, name)["value"][30:], 250.0, rtol=1e-14)


ICHIMOKU_PARAMS = [(9, 26, 52), (7, 22, 44), (9, 26, 30), (9, 26, 26), (1, 1, 2), (9, 26, 53)]


@pytest.mark.parametrize("params", ICHIMOKU_PARAMS)
@pytest.mark.parametrize("bars", [0, 3, 25, 51, 52, 53, 800])
def test_ichimoku_span_b_from_the_base_windows_is_its_own_window_to_the_bit(params, bars):
    """Where span B's window is at most twice the base's, its extremes come from two base windows;
    the answer is the midprice of its own window, exactly (53 > 2 x 26 takes the general path)."""
    frame = random_walk(5, bars=max(bars, 1)).iloc[:bars]
    high, low = frame["high"].to_numpy(), frame["low"].to_numpy()
    names = ("conversion", "base", "span_b")
    outputs = get_indicator("ICHIMOKU").compute(frame, dict(zip(names, params, strict=True)))
    for name, n in zip(names, params, strict=True):
        own = kernels.midprice_into(high, low, n, np.empty(bars), np.empty(bars))
        np.testing.assert_array_equal(outputs[name], own)
