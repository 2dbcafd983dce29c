"""Targets: each label at bar t reads closes t..t+h only, and the last h bars have none."""

from __future__ import annotations

import numpy as np
import pytest

from apps.training.domain.labels import ModelType, make_labels, parse_model_type

CLOSE = np.array([100.0, 101.0, 99.0, 99.0, 103.0, 102.0, 104.0])


def test_price_labels_say_whether_the_close_h_bars_ahead_is_higher() -> None:
    labels = make_labels(CLOSE, "price_prediction", 2)
    np.testing.assert_array_equal(labels[:-2], [0.0, 0.0, 1.0, 1.0, 1.0])


def test_a_flat_close_is_not_an_up_move() -> None:
    assert make_labels(CLOSE, ModelType.PRICE_PREDICTION, 1)[2] == 0.0


def test_return_labels_are_the_h_bar_log_return() -> None:
    labels = make_labels(CLOSE, "return_prediction", 3)
    np.testing.assert_allclose(labels[:-3], np.log(CLOSE[3:] / CLOSE[:-3]))


def test_volatility_labels_are_the_realised_volatility_of_the_next_h_bars() -> None:
    labels = make_labels(CLOSE, "volatility_prediction", 3)
    returns = np.diff(np.log(CLOSE))
    expected = [np.sqrt(np.sum(returns[t : t + 3] ** 2)) for t in range(len(CLOSE) - 3)]
    np.testing.assert_allclose(labels[:-3], expected)


@pytest.mark.parametrize("model_type", list(ModelType))
@pytest.mark.parametrize("horizon", [1, 3])
def test_the_last_h_bars_have_no_label(model_type: ModelType, horizon: int) -> None:
    labels = make_labels(CLOSE, model_type, horizon)
    assert np.isnan(labels[-horizon:]).all()
    assert not np.isnan(labels[:-horizon]).any()


@pytest.mark.parametrize("model_type", list(ModelType))
def test_a_label_reads_no_bar_beyond_t_plus_h_and_none_before_t(model_type: ModelType) -> None:
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 200)))
    t, h = 100, 4
    changed = close.copy()
    changed[: t - 1] *= 1.7
    changed[t + h + 1 :] *= 0.4
    original = make_labels(close, model_type, h)[t]
    assert make_labels(changed, model_type, h)[t] == original
    changed[t + h] = close[t] * (0.5 if close[t + h] > close[t] else 2.0)
    assert make_labels(changed, model_type, h)[t] != original


def test_a_history_shorter_than_the_horizon_has_no_labels() -> None:
    assert np.isnan(make_labels(CLOSE[:2], "return_prediction", 5)).all()


def test_it_rejects_an_unknown_model_type_naming_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="price_prediction, return_prediction, volatility_prediction"):
        parse_model_type("sentiment")


def test_it_rejects_a_horizon_below_one_bar() -> None:
    with pytest.raises(ValueError, match="horizon"):
        make_labels(CLOSE, "price_prediction", 0)
