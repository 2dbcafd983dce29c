"""Fitting: early stopping, fixed seeds, and a byte format that loads back to the same predictions."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from apps.training.domain.fitting import FittedModel, Hyperparams, deserialize, fit, predict, serialize

NAMES = [f"f{i}" for i in range(6)]


def _data(seed: int, rows: int = 3_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(NAMES)))
    x[rng.random(x.shape) < 0.02] = np.nan
    y = (np.nan_to_num(x[:, 0]) + 0.5 * rng.normal(size=rows) > 0).astype(np.float64)
    return x, y


def _fit(hyperparams: Hyperparams | None = None) -> FittedModel:
    x, y = _data(0)
    return fit(
        x[:2_400],
        y[:2_400],
        x[2_400:],
        y[2_400:],
        classifier=True,
        feature_names=NAMES,
        hyperparams=hyperparams,
    )


def test_a_learnable_signal_is_learned() -> None:
    x, y = _data(1)
    accuracy = np.mean((predict(_fit().booster, x) >= 0.5) == y)
    assert accuracy > 0.8


def test_early_stopping_keeps_only_the_best_trees() -> None:
    fitted = _fit(Hyperparams(n_estimators=400, learning_rate=0.3, early_stopping_rounds=10))
    assert fitted.best_iteration < 390
    assert fitted.booster.num_boosted_rounds() == fitted.best_iteration + 1


def test_without_early_stopping_every_tree_is_kept() -> None:
    fitted = _fit(Hyperparams(n_estimators=30, early_stopping_rounds=None))
    assert fitted.booster.num_boosted_rounds() == 30
    assert fitted.best_iteration == 29


def test_loading_the_saved_bytes_gives_identical_predictions() -> None:
    fitted = _fit()
    raw, digest = serialize(fitted.booster)
    assert digest == hashlib.sha256(raw).hexdigest()
    loaded = deserialize(raw, sha256=digest)
    x, _ = _data(5)
    np.testing.assert_array_equal(predict(loaded, x), predict(fitted.booster, x))
    assert loaded.feature_names == NAMES


def test_loading_refuses_bytes_that_do_not_match_their_sha256() -> None:
    raw, digest = serialize(_fit().booster)
    with pytest.raises(ValueError, match="sha256"):
        deserialize(raw[:-1] + b"\x00", sha256=digest)


def test_the_same_seed_gives_the_same_model_bytes() -> None:
    assert serialize(_fit().booster) == serialize(_fit().booster)


def test_the_seed_matters() -> None:
    assert serialize(_fit(Hyperparams(seed=1)).booster)[1] != serialize(_fit(Hyperparams(seed=2)).booster)[1]


def test_a_regressor_predicts_values_not_probabilities() -> None:
    x, _ = _data(2)
    y = 3.0 * np.nan_to_num(x[:, 1])
    fitted = fit(x[:2_400], y[:2_400], x[2_400:], y[2_400:], classifier=False, feature_names=NAMES)
    assert predict(fitted.booster, x).max() > 1.5


def test_the_defaults_are_the_documented_ones() -> None:
    assert Hyperparams().to_dict() == {
        "n_estimators": 400,
        "max_depth": 4,
        "learning_rate": 0.05,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 5.0,
        "reg_lambda": 1.0,
        "max_bin": 256,
        "early_stopping_rounds": 50,
        "seed": 42,
    }


def test_hyperparams_override_defaults_from_a_dict() -> None:
    assert Hyperparams.from_dict({"max_depth": 6}).max_depth == 6


def test_it_rejects_an_unknown_hyperparameter_naming_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) depth; valid: colsample_bytree"):
        Hyperparams.from_dict({"depth": 6})


def test_it_rejects_an_out_of_range_hyperparameter() -> None:
    with pytest.raises(ValueError, match="learning_rate=0"):
        Hyperparams(learning_rate=0)
