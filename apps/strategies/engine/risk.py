"""A strategy's risk settings (stop, target, trailing stop, size, holding limit, shorting), checked
when they are made, and the error every invalid backtest input raises."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, cast


class BacktestError(ValueError):
    """Invalid candles, risk parameters or costs."""


@dataclass(frozen=True)
class RiskSettings:
    """The risk parameters of a strategy; a stop, target or limit that is None (or 0) is off."""

    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    trailing_stop_pct: float | None = None
    position_size_pct: float = 1.0
    max_holding_bars: int | None = None
    allow_short: bool = False

    def __post_init__(self) -> None:
        for name in ("stop_loss_pct", "trailing_stop_pct"):
            _check_fraction(name, getattr(self, name), upper=1.0, optional=True)
        _check_fraction("take_profit_pct", self.take_profit_pct, upper=None, optional=True)
        _check_fraction("position_size_pct", self.position_size_pct, upper=1.0, optional=False, closed=True)
        bars = self.max_holding_bars
        if bars is not None and (
            isinstance(bars, bool) or not isinstance(bars, numbers.Integral) or bars < 1
        ):
            raise BacktestError(f"max_holding_bars must be a whole number of bars >= 1, got {bars!r}")
        if not isinstance(self.allow_short, bool):
            raise BacktestError(f"allow_short must be true or false, got {self.allow_short!r}")

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, object]) -> RiskSettings:
        """Read the risk parameters out of a strategy's ``parameters``; 0 or None disables a limit."""
        # Any: values as the strategy gave them, checked by __post_init__.
        values: dict[str, Any] = {
            f.name: parameters[f.name] for f in fields(cls) if parameters.get(f.name) is not None
        }
        for name in ("stop_loss_pct", "take_profit_pct", "trailing_stop_pct", "max_holding_bars"):
            if values.get(name) == 0 and not isinstance(values.get(name), bool):
                del values[name]
        if isinstance(values.get("max_holding_bars"), float) and values["max_holding_bars"].is_integer():
            values["max_holding_bars"] = int(values["max_holding_bars"])
        return cls(**values)


RISK_PARAMETERS = frozenset(f.name for f in fields(RiskSettings))


def _check_fraction(
    name: str, value: object, *, upper: float | None, optional: bool, closed: bool = False
) -> None:
    if value is None and optional:
        return
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    number = cast(float, value)  # compared only when it is a real number, which compares like a float
    valid = real and number > 0
    if valid and upper is not None:
        valid = number <= upper if closed else number < upper
    if not valid:
        bound = "" if upper is None else f" and {'at most' if closed else 'below'} {upper:g}"
        raise BacktestError(f"{name} must be a fraction above 0{bound} (0.02 = 2%), got {value!r}")
