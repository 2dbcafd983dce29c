"""Walk-forward model series for the rule language (``ML_PROBA``, ``ML_RETURN``): computed here, on
the training side, and stored; selectors and the orchestrator only read them.

A series over a frame is predicted by models fitted on the ``lookback`` bars before each point and
refitted every ``TRAINING_WALK_FORWARD_STEP`` bars after a purge gap of ``horizon`` bars
(``apps.training.domain.pipeline.walk_forward``). A value at bar t depends only on bars up to t:
changing later bars never changes it. Bars no model could honestly predict yet (too little history
before them) are NaN. Each series is built the way its live champion was built (its feature set,
hyperparameters, horizon and lookback), or with the training defaults when there is no champion.
Results are stored in the cache under the keys ``selectors.ml_series_requests`` gives.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.cache import cache

from apps.market.models import Instrument
from apps.training.domain.pipeline import walk_forward
from apps.training.selectors import SeriesRequest, ml_series_requests


def ml_series_compute(
    *, instrument: Instrument, timeframe: str, frame: pd.DataFrame
) -> dict[str, np.ndarray]:
    """``ML_PROBA`` and ``ML_RETURN`` over ``frame``, aligned to its rows: the stored values, or
    computed now (one xgboost fit per step: seconds to minutes) and stored for every later reader."""
    if frame.empty:
        return {
            request.name: np.empty(0)
            for request in ml_series_requests(instrument=instrument, timeframe=timeframe, frame=frame)
        }
    return {
        request.name: _stored_or_computed(request)
        for request in ml_series_requests(instrument=instrument, timeframe=timeframe, frame=frame)
    }


def _stored_or_computed(request: SeriesRequest) -> np.ndarray:
    stored = cache.get(request.key)
    if stored is not None:
        return stored
    spec = request.settings
    result = walk_forward(
        request.history,
        request.model_type,
        spec.horizon,
        spec.feature_set,
        spec.hyperparameters,
        min_train=spec.lookback,
        max_train=spec.lookback,
        step=settings.TRAINING_WALK_FORWARD_STEP,
        nthread=settings.TRAINING_NTHREAD,
    )
    values = result.predictions[request.earlier :]
    cache.set(request.key, values, settings.TRAINING_WALK_FORWARD_CACHE_SECONDS)
    return values
