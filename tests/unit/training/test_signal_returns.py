"""Signal returns: the position a model's output takes at a close earns the next bar, and nothing later."""

from __future__ import annotations

import numpy as np
import pytest

from apps.training.domain.signal_returns import positions, signal_returns, squared_errors

CLOSE = np.array([100.0, 110.0, 99.0, 99.0, 108.9])


def test_a_price_model_is_long_above_one_half_short_below_and_flat_on_it() -> None:
    outputs = np.array([0.7, 0.3, 0.5, 0.9, 0.2])

    assert positions("price_prediction", outputs).tolist() == [1.0, -1.0, 0.0, 1.0, -1.0]
    # +10 % long, -10 % short, flat, +10 % long; the newest bar has no next bar to earn.
    assert signal_returns("price_prediction", outputs, CLOSE) == pytest.approx([0.1, 0.1, 0.0, 0.1])


def test_a_return_model_takes_the_sign_of_its_prediction_and_no_position_without_one() -> None:
    outputs = np.array([-0.01, 0.002, np.nan, 0.0, 0.01])

    assert positions("return_prediction", outputs).tolist() == [-1.0, 1.0, 0.0, 0.0, 1.0]
    assert signal_returns("return_prediction", outputs, CLOSE) == pytest.approx([-0.1, -0.1, 0.0, 0.0])


def test_a_return_depends_on_nothing_after_the_bar_it_is_earned_over() -> None:
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 60)))
    outputs = rng.uniform(size=60)
    full = signal_returns("price_prediction", outputs, close)

    for cut in (2, 17, 59):
        # Truncating the history keeps every earlier return; rewriting the future changes none of them.
        assert signal_returns("price_prediction", outputs[:cut], close[:cut]) == pytest.approx(
            full[: cut - 1]
        )
        rewritten, reoutputs = close.copy(), outputs.copy()
        rewritten[cut:] *= 3.0
        reoutputs[cut:] = 1 - reoutputs[cut:]
        assert signal_returns("price_prediction", reoutputs, rewritten)[: cut - 1] == pytest.approx(
            full[: cut - 1]
        )


def test_a_volatility_model_takes_no_position() -> None:
    with pytest.raises(ValueError, match="predicts no direction"):
        signal_returns("volatility_prediction", np.ones(5), CLOSE)


def test_unequal_series_are_refused() -> None:
    with pytest.raises(ValueError, match="one length"):
        signal_returns("price_prediction", np.ones(4), CLOSE)


def test_squared_errors_are_per_row() -> None:
    assert squared_errors(np.array([0.01, 0.02]), np.array([0.03, 0.02])) == pytest.approx([0.0004, 0.0])
