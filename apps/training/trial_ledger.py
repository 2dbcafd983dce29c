"""Where model retrains are counted: the research trial ledger, which an app above training registers here.

Every trained model is a trial of its model family (instrument, timeframe, model type), recorded
once with the moments of its holdout signal returns (``domain.signal_returns``), and a model's
deflated Sharpe ratio is deflated by every trial its family holds. The ledger (the ``Trial`` table)
and the statistics (``engine.robustness``) belong to ``apps.strategies``, which training sits below
and may not import, so the strategies app registers its implementation in its ``AppConfig.ready``,
as ``apps.trading`` registers its change guard with ``apps.core.ownership``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from django.core.exceptions import ImproperlyConfigured
from numpy.typing import NDArray

from apps.core import ownership
from apps.training.models import MLModel


@dataclass(frozen=True)
class ModelTrial:
    """A trained model's signal returns on bars it never saw, with what names its trial and family."""

    key: str  # model:<model_id>: a second record of the same model (a retried task) adds nothing
    instrument_id: int
    timeframe: str
    model_type: str
    owner: ownership.User | None
    parameters: dict[str, Any]
    returns: NDArray[np.float64] = field(repr=False)

    @classmethod
    def of(cls, model: MLModel, returns: NDArray[np.float64]) -> ModelTrial:
        return cls(
            key=f"model:{model.model_id}",
            instrument_id=model.instrument_id,
            timeframe=model.timeframe,
            model_type=model.model_type,
            owner=model.owner,
            parameters={
                "model_id": model.model_id,
                "horizon": model.horizon,
                "lookback_period": model.lookback_period,
                "hyperparameters": model.hyperparameters,
            },
            returns=returns,
        )


class ModelTrialLedger(Protocol):
    """What training needs of the ledger. Both answers are a robustness block: the returns'
    ``observations``, ``sharpe_per_bar``, ``skewness``, ``kurtosis``, ``psr``, the family's ``trials``
    and ``sharpe_variance``, ``expected_max_sharpe``, ``deflated_sharpe``, ``min_track_record_bars``
    and the family's ``lineage``."""

    def record(self, trial: ModelTrial) -> dict[str, Any]:
        """Record the trial in its family (once per key) and deflate it by the family, itself included."""
        ...

    def deflate(self, trial: ModelTrial) -> dict[str, Any]:
        """Deflate the trial's returns by its family as it is now, recording nothing."""
        ...


_ledgers: list[ModelTrialLedger] = []


def model_trial_ledger_register(*, ledger: ModelTrialLedger) -> None:
    """Install the ledger model trials are recorded in (the strategies app does, once)."""
    _ledgers[:] = [ledger]


def model_trial_ledger() -> ModelTrialLedger:
    """The registered ledger; ImproperlyConfigured when no app registered one."""
    if not _ledgers:
        raise ImproperlyConfigured(
            "no model trial ledger is registered: apps.strategies registers it when ready"
        )
    return _ledgers[0]
