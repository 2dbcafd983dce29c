"""A model's signal returns: what trading the direction it predicts earns bar by bar, with no look-ahead.

At the close of bar t a model's output takes a position: +1 when a price model's up-probability is
above 0.5 or a return model predicts a rise, -1 below 0.5 or for a predicted fall, 0 exactly on the
line (or where there is no output). The position earns the next bar's close-to-close return,
``close[t+1] / close[t] - 1``: the output at t reads features of bars up to t only, and the return
it earns starts at that close, so nothing of bar t+1 is known when it is taken. The return of bar t
is therefore known one bar later, and the last bar of a window earns nothing.

These returns are gross of fees and ignore the trading threshold chosen on validation: they measure
the forecast's skill, long and short, and have a positive mean only when the model is right about
the next bar's direction more often, or on bigger moves, than chance. (The tradable long-or-flat
rule with fees is :func:`.evaluation.trading_metrics`.) They are the series whose Sharpe ratio the
trial ledger deflates and which the paired promotion test compares.

A volatility model predicts no direction: it has no signal returns (its forecasts are compared by
their squared errors, :func:`squared_errors`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from apps.training.domain.labels import ModelType, parse_model_type


def takes_positions(model_type: ModelType | str) -> bool:
    """Whether the model type predicts a direction, and so has signal returns."""
    return parse_model_type(model_type) is not ModelType.VOLATILITY_PREDICTION


def positions(model_type: ModelType | str, outputs: NDArray[np.float64]) -> NDArray[np.float64]:
    """+1, -1 or 0 for each output (see the module docstring); NaN outputs hold no position."""
    model_type = parse_model_type(model_type)
    if not takes_positions(model_type):
        raise ValueError(f"a {model_type.value} model predicts no direction: it takes no positions")
    values = np.asarray(outputs, dtype=np.float64)
    centre = 0.5 if model_type.is_classifier else 0.0
    return np.nan_to_num(np.sign(values - centre), nan=0.0)


def signal_returns(
    model_type: ModelType | str, outputs: NDArray[np.float64], close: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The per-bar return of each output's position over the next bar: ``len(close) - 1`` values,
    the one of bar t being ``position[t] * (close[t+1] / close[t] - 1)``."""
    close = np.asarray(close, dtype=np.float64)
    held = positions(model_type, outputs)
    if held.shape != close.shape or close.ndim != 1:
        raise ValueError(
            f"outputs and closes must be two series of one length, got {held.shape}, {close.shape}"
        )
    return held[:-1] * (close[1:] / close[:-1] - 1.0)


def squared_errors(labels: NDArray[np.float64], outputs: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each row's squared forecast error: the loss a volatility model's forecasts are compared by."""
    return (np.asarray(outputs, dtype=np.float64) - np.asarray(labels, dtype=np.float64)) ** 2
