"""Training targets by model type: what the model at bar t is asked about bars t+1..t+h.

Every target at bar t reads closes t..t+h and nothing else, so the last ``h`` bars of a history
have no target (NaN) and can never be trained on. Bars are assumed contiguous (no missing candles).
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
from numpy.typing import NDArray


class ModelType(StrEnum):
    """The three model types of the training API."""

    PRICE_PREDICTION = "price_prediction"
    RETURN_PREDICTION = "return_prediction"
    VOLATILITY_PREDICTION = "volatility_prediction"

    @property
    def is_classifier(self) -> bool:
        return self is ModelType.PRICE_PREDICTION


def parse_model_type(value: str) -> ModelType:
    """Return the ``ModelType`` named ``value`` or raise ``ValueError`` listing the valid names."""
    try:
        return ModelType(value)
    except ValueError:
        valid = ", ".join(m.value for m in ModelType)
        raise ValueError(f"unknown model_type {value!r}; valid: {valid}") from None


def make_labels(close: NDArray[np.float64], model_type: ModelType | str, horizon: int) -> NDArray[np.float64]:
    """The target of every bar as float64, NaN for the last ``horizon`` bars.

    - ``price_prediction``: 1.0 when ``close[t+h] > close[t]``, else 0.0 (a flat close is "not up").
    - ``return_prediction``: ``log(close[t+h] / close[t])``.
    - ``volatility_prediction``: realised volatility of the bar log returns over t+1..t+h,
      ``sqrt(sum(r**2))`` (not annualised; for h=1 it is ``|r[t+1]|``).
    """
    model_type = parse_model_type(model_type)
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1 bar, got {horizon}")
    log_close = np.log(np.asarray(close, dtype=np.float64))
    labels = np.full(log_close.shape, np.nan)
    if len(log_close) <= horizon:
        return labels
    ahead = log_close[horizon:] - log_close[:-horizon]
    if model_type is ModelType.PRICE_PREDICTION:
        labels[:-horizon] = (ahead > 0).astype(np.float64)
    elif model_type is ModelType.RETURN_PREDICTION:
        labels[:-horizon] = ahead
    else:
        # bar_returns[k] is the return of bar k+1, so window t holds the returns of bars t+1..t+h.
        bar_returns = np.diff(log_close)
        windows = np.lib.stride_tricks.sliding_window_view(bar_returns, horizon)
        labels[:-horizon] = np.sqrt(np.sum(windows**2, axis=1))
    return labels
