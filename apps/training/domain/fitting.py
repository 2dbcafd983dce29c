"""xgboost fitting with early stopping, and the model's byte format (UBJSON) with its sha256.

A fitted booster is cut to its best iteration before it is returned, so the saved model predicts
with exactly the trees early stopping chose and loading it needs no extra state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import xgboost as xgb
from numpy.typing import NDArray

DEFAULT_NTHREAD = 2
MODEL_FORMAT = "ubj"


@dataclass(frozen=True)
class Hyperparams:
    """The tunable knobs; ``early_stopping_rounds=None`` fits all ``n_estimators`` trees."""

    n_estimators: int = 400
    max_depth: int = 4
    learning_rate: float = 0.05
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 5.0
    reg_lambda: float = 1.0
    max_bin: int = 256
    early_stopping_rounds: int | None = 50
    seed: int = 42

    def __post_init__(self) -> None:
        checks = {
            "n_estimators": self.n_estimators >= 1,
            "max_depth": 1 <= self.max_depth <= 16,
            "learning_rate": 0 < self.learning_rate <= 1,
            "subsample": 0 < self.subsample <= 1,
            "colsample_bytree": 0 < self.colsample_bytree <= 1,
            "min_child_weight": self.min_child_weight >= 0,
            "reg_lambda": self.reg_lambda >= 0,
            "max_bin": 2 <= self.max_bin <= 4096,
            "early_stopping_rounds": self.early_stopping_rounds is None or self.early_stopping_rounds >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            values = ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            raise ValueError(f"invalid hyperparameter(s): {values}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Hyperparams:
        """Defaults overridden by ``data``; an unknown key is an error naming the valid ones."""
        data = dict(data or {})
        valid = {f.name for f in fields(cls)}
        unknown = set(data) - valid
        if unknown:
            raise ValueError(
                f"unknown hyperparameter(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(valid))}"
            )
        return cls(**data)

    def booster_params(self, *, classifier: bool, nthread: int) -> dict[str, Any]:
        return {
            "objective": "binary:logistic" if classifier else "reg:squarederror",
            "eval_metric": "logloss" if classifier else "rmse",
            "tree_method": "hist",
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "lambda": self.reg_lambda,
            "max_bin": self.max_bin,
            "seed": self.seed,
            "nthread": nthread,
        }


@dataclass(frozen=True)
class FittedModel:
    """A booster holding only its best trees; ``best_iteration`` counts from 0."""

    booster: xgb.Booster
    best_iteration: int


def fit(
    x_train: NDArray[np.float64],
    y_train: NDArray[np.float64],
    x_validation: NDArray[np.float64],
    y_validation: NDArray[np.float64],
    *,
    classifier: bool,
    feature_names: Sequence[str],
    hyperparams: Hyperparams | None = None,
    nthread: int = DEFAULT_NTHREAD,
) -> FittedModel:
    """Fit on the training rows, stopping early on the (later, purged) validation rows. NaN is missing."""
    hyperparams = hyperparams or Hyperparams()
    names = list(feature_names)
    train = xgb.DMatrix(x_train, label=y_train, feature_names=names, nthread=nthread)
    validation = xgb.DMatrix(x_validation, label=y_validation, feature_names=names, nthread=nthread)
    booster = xgb.train(
        hyperparams.booster_params(classifier=classifier, nthread=nthread),
        train,
        num_boost_round=hyperparams.n_estimators,
        evals=[(validation, "validation")],
        early_stopping_rounds=hyperparams.early_stopping_rounds,
        verbose_eval=False,
    )
    if hyperparams.early_stopping_rounds is None:
        best = booster.num_boosted_rounds() - 1
    else:
        best = booster.best_iteration
    return FittedModel(booster[: best + 1], best)


def predict(booster: xgb.Booster, x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Probabilities of an up-move (classifier) or predicted values (regressor); NaN inputs are missing."""
    return booster.inplace_predict(np.asarray(x, dtype=np.float64))


def serialize(booster: xgb.Booster) -> tuple[bytes, str]:
    """The model in xgboost's UBJSON format and its sha256 hex digest."""
    raw = bytes(booster.save_raw(MODEL_FORMAT))
    return raw, hashlib.sha256(raw).hexdigest()


def deserialize(raw: bytes, *, nthread: int = 1, sha256: str | None = None) -> xgb.Booster:
    """Load a model saved by ``serialize``; when ``sha256`` is given, refuse bytes that do not match it."""
    if sha256 is not None and hashlib.sha256(raw).hexdigest() != sha256:
        raise ValueError("model bytes do not match their sha256: the artifact is corrupt or not this model")
    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    booster.set_param({"nthread": nthread})
    return booster
