"""Every indicator equals the `ta` library's to 1e-9 after its warm-up, on real and synthetic candles."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from apps.market.domain.indicators import REGISTRY, get_indicator
from tests.unit.market.synthetic import random_walk
from tests.unit.market.ta_reference import REFERENCES

# A second parameter set per indicator, so that no definition only works at its defaults.
OTHER_PARAMS: dict[str, tuple[float, ...]] = {
    "SMA": (50,),
    "EMA": (50,),
    "WMA": (30,),
    "RSI": (7,),
    "MACD": (5, 35, 5),
    "BB": (10, 1.5),
    "ATR": (5,),
    "STOCH": (5, 5),
    "ADX": (7,),
    "CCI": (10, 0.02),
    "OBV": (),
    "VWAP": (30,),
    "MFI": (7,),
    "WILLR": (21,),
    "ROC": (3,),
    "KC": (10, 20, 1.5),
    "DC": (55,),
    "ICHIMOKU": (7, 22, 44),
    "PSAR": (0.01, 0.1),
}

SYNTHETIC = {
    "walk-1": lambda: random_walk(1),
    "walk-2": lambda: random_walk(2, bars=800),
    "walk-3-with-halts": lambda: random_walk(3, halts=True),
}


def assert_matches_ta(frame: pd.DataFrame, name: str, args: tuple[float, ...] | None) -> None:
    indicator = get_indicator(name)
    params = indicator.resolve(args)
    warmup = indicator.warmup(params)
    ours = indicator.compute(frame, params)
    theirs = REFERENCES[name](frame, params)
    assert set(ours) == set(indicator.outputs)
    for output in indicator.outputs:
        mine, reference = ours[output][warmup:], theirs[output][warmup:]
        # Equal NaNs must not make the comparison vacuous.
        assert np.isfinite(reference).mean() > 0.9, f"{name}.{output}: the reference is mostly undefined"
        np.testing.assert_allclose(
            mine, reference, rtol=1e-9, atol=1e-9, err_msg=f"{indicator.key(params, output)}"
        )


@cache
def synthetic(key: str) -> pd.DataFrame:
    return SYNTHETIC[key]()


def test_there_is_a_reference_and_a_second_parameter_set_for_every_indicator():
    assert set(REFERENCES) == set(REGISTRY) == set(OTHER_PARAMS)


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("use_defaults", [True, False], ids=["defaults", "other-params"])
def test_it_matches_ta_on_real_btc_hourly_candles(btc_1h, name, use_defaults):
    assert_matches_ta(btc_1h, name, None if use_defaults else OTHER_PARAMS[name])


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("dataset", sorted(SYNTHETIC))
def test_it_matches_ta_on_seeded_random_walks(dataset, name):
    assert_matches_ta(synthetic(dataset), name, None)
    assert_matches_ta(synthetic(dataset), name, OTHER_PARAMS[name])


UNDEFINED_WHEN_FROZEN = [
    ("STOCH", "k"),
    ("WILLR", "value"),
    ("BB", "percent_b"),
    ("VWAP", "value"),
    ("MFI", "value"),
    ("CCI", "value"),
]


@pytest.mark.parametrize(("name", "output"), UNDEFINED_WHEN_FROZEN)
def test_the_halted_walk_reaches_the_undefined_values_that_ta_must_agree_on(name, output):
    """Inside a frozen stretch ranges and volumes are zero, so these are 0/0 on both sides."""
    values = get_indicator(name).compute(synthetic("walk-3-with-halts"))[output]
    assert np.isnan(values[530:540]).all()
    assert np.isfinite(values[100:500]).all()
