"""No indicator looks ahead: its values up to bar t are the same, to the bit, when the data stops at t."""

from __future__ import annotations

import numpy as np
import pytest

from apps.market.domain.indicators import REGISTRY, get_indicator
from tests.unit.market.synthetic import random_walk
from tests.unit.market.test_indicators_match_ta import OTHER_PARAMS

WALK = random_walk(21, bars=500)
CUTS = (3, 40, 61, 150, 333, 499)


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("use_defaults", [True, False], ids=["defaults", "other-params"])
def test_values_up_to_t_do_not_depend_on_later_bars(name, use_defaults):
    indicator = get_indicator(name)
    params = indicator.resolve(None if use_defaults else OTHER_PARAMS[name])
    full = indicator.compute(WALK, params)
    for t in CUTS:
        truncated = indicator.compute(WALK.iloc[: t + 1], params)
        for output in indicator.outputs:
            np.testing.assert_allclose(
                truncated[output],
                full[output][: t + 1],
                rtol=1e-12,
                atol=1e-12,
                err_msg=f"{name}.{output} at t={t}",
            )


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_rewriting_the_future_leaves_the_past_alone(name):
    """A stronger form: a crash after bar 250 changes nothing at or before it."""
    crashed = WALK.copy()
    crashed.iloc[251:, :4] *= 0.5
    before, after = get_indicator(name).compute(WALK), get_indicator(name).compute(crashed)
    for output in before:
        np.testing.assert_array_equal(after[output][:251], before[output][:251])
        assert not np.allclose(after[output][260:], before[output][260:], equal_nan=True)
