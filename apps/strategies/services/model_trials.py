"""Model retrains in the trial ledger: each trained model is one trial of its model family, deflated by it.

The family of a model is its market, timeframe and model type (lineage ``model:<model_type>``); the
trial's key is ``model:<model_id>``, so a retried training task records nothing twice. Training sits
below this app and reaches the ledger through :mod:`apps.training.trial_ledger`, where
:class:`LedgerForModels` is registered when the app is ready.
"""

from __future__ import annotations

from typing import Any

from apps.strategies.engine.robustness import return_moments
from apps.strategies.models import TrialSource
from apps.strategies.selectors import Family, model_family
from apps.strategies.services.trials import TrialRecord, deflated_tests, trials_record
from apps.training.trial_ledger import ModelTrial


def _family(trial: ModelTrial) -> Family:
    return model_family(
        instrument_id=trial.instrument_id, timeframe=trial.timeframe, model_type=trial.model_type
    )


def model_trial_record(*, trial: ModelTrial) -> dict[str, Any]:
    """Record the model's holdout signal returns once in its family; return its robustness block,
    deflated by every trial of the family, this one included."""
    family = _family(trial)
    record = TrialRecord(key=trial.key, parameters=trial.parameters, moments=return_moments(trial.returns))
    trials_record(family=family, source=TrialSource.MODEL, records=[record], owner=trial.owner)
    return model_trial_deflate(trial=trial)


def model_trial_deflate(*, trial: ModelTrial) -> dict[str, Any]:
    """The Sharpe tests of the trial's returns deflated by its family as it is now; records nothing."""
    family = _family(trial)
    tests = deflated_tests(family=family, moments=return_moments(trial.returns))
    return {**tests.to_dict(), "lineage": family.lineage}


class LedgerForModels:
    """The ledger as :class:`apps.training.trial_ledger.ModelTrialLedger` describes it."""

    def record(self, trial: ModelTrial) -> dict[str, Any]:
        return model_trial_record(trial=trial)

    def deflate(self, trial: ModelTrial) -> dict[str, Any]:
        return model_trial_deflate(trial=trial)
