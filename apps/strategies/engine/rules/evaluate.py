"""Evaluating parsed conditions over candle arrays, and checking them against strategy parameters.

Values are float64 arrays (or scalars for numbers and parameters). Logic is three-valued: a
comparison that touches NaN (an indicator warming up, ``close[1]`` on the first bar, a division by
zero) is *unknown*, ``not unknown`` stays unknown, ``unknown and false`` is false, ``unknown or true``
is true, and an unknown result never fires. So warm-up bars never fire, even under ``not``.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Mapping
from typing import TypeVar, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from apps.market.domain.indicators import REGISTRY, IndicatorError, Param, get_indicator
from apps.market.domain.indicators import Indicator as IndicatorSpec

from .syntax import (
    Arithmetic,
    Comparison,
    Condition,
    External,
    Field,
    IndicatorCall,
    Lag,
    Logical,
    Negate,
    Node,
    Not,
    Number,
    Parameter,
    RuleError,
    RuleSyntaxError,
    parse,
)

Values = NDArray[np.float64] | np.float64
Mask = NDArray[np.bool_] | np.bool_
Truth = tuple[Mask, Mask | None]  # (true, known); true implies known
_Scalar = TypeVar("_Scalar", np.float64, np.bool_)

_COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal}


class MissingSeriesError(RuleError):
    """A condition uses an external series (``ML_PROBA``) the caller did not supply."""


class IndicatorCache:
    """The columns and indicator outputs of one frame, each computed once however many rules use it.

    Pass one cache to several :func:`evaluate` calls on the same frame (the optimiser does, across
    trials) to share the work. Cached arrays are read-only.
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.length = len(frame)
        self.computed = 0
        self._columns: dict[str, NDArray[np.float64]] = {}
        self._outputs: dict[tuple[str, tuple[tuple[str, float], ...]], dict[str, NDArray[np.float64]]] = {}

    def column(self, name: str) -> NDArray[np.float64]:
        if name not in self._columns:
            self._columns[name] = _read_only(self.frame[name].to_numpy(dtype=np.float64))
        return self._columns[name]

    def outputs(self, spec: IndicatorSpec, params: dict[str, float]) -> dict[str, NDArray[np.float64]]:
        key = (spec.name, tuple(sorted(params.items())))
        if key not in self._outputs:
            self._outputs[key] = {k: _read_only(v) for k, v in spec.compute(self.frame, params).items()}
            self.computed += 1
        return self._outputs[key]


def evaluate(
    condition: Condition,
    frame: pd.DataFrame,
    parameters: Mapping[str, object],
    external: Mapping[str, NDArray[np.floating] | pd.Series] | None = None,
    *,
    cache: IndicatorCache | None = None,
) -> NDArray[np.bool_]:
    """Evaluate a parsed condition on every bar of ``frame``: a bool array, True where it fires.

    ``parameters`` are the strategy's; ``external`` supplies series such as ``ML_PROBA`` (arrays
    as long as the frame). Raises :class:`RuleSyntaxError` for unknown or invalid parameters and
    :class:`MissingSeriesError` for an external series that was not supplied.
    """
    if cache is None:
        cache = IndicatorCache(frame)
    elif cache.frame is not frame:
        raise ValueError("the indicator cache belongs to a different frame")
    true, _known = _Evaluator(condition.text, cache, parameters, external or {}).truth(condition.expression)
    return np.broadcast_to(true, (cache.length,)).copy()


def validate(condition: str, parameters: Mapping[str, object]) -> None:
    """Raise :class:`RuleSyntaxError` unless ``condition`` parses and every name and value in it
    resolves against ``parameters`` and the indicator registry."""
    parsed = parse(condition)
    for node in walk(parsed):
        if isinstance(node, Parameter):
            parameter_value(parsed.text, node, parameters)
        elif isinstance(node, IndicatorCall):
            indicator_parameters(parsed.text, node, parameters)


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, parents before children."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children()))


def referenced_indicators(node: Node) -> frozenset[str]:
    """Registry names of the indicators a condition uses, e.g. ``{"RSI", "SMA"}``."""
    return frozenset(n.name for n in walk(node) if isinstance(n, IndicatorCall))


def referenced_parameters(node: Node) -> frozenset[str]:
    """Strategy parameters a condition names explicitly (``rsi_oversold``, ``SMA(fast_period)``).

    Bare indicators also read optional parameters such as ``rsi_period``: see :func:`parameter_bounds`.
    """
    return frozenset(n.name for n in walk(node) if isinstance(n, Parameter))


def parameters_read(node: Node) -> frozenset[str]:
    """Every strategy parameter a condition reads: those it names (``rsi_oversold``,
    ``SMA(fast_period)``) and the ``<indicator>_<param>`` settings of its bare indicators (``RSI``
    reads ``rsi_period`` when the strategy defines it)."""
    return referenced_parameters(node) | frozenset(parameter_bounds(node))


def parameter_bounds(node: Node) -> dict[str, Param]:
    """Strategy parameters that feed indicator arguments, with the registry's range for each.

    ``SMA(fast_period)`` gives ``{"fast_period": SMA's period}``; a bare ``RSI`` gives
    ``{"rsi_period": RSI's period}``. Used to check optimiser values before running anything.
    """
    bounds: dict[str, Param] = {}
    for call in (n for n in walk(node) if isinstance(n, IndicatorCall)):
        spec = get_indicator(call.name)
        if call.args is None:
            bounds.update({spec.strategy_param_name(p): p for p in spec.params})
        else:
            bounds.update(
                {a.name: p for a, p in zip(call.args, spec.params, strict=False) if isinstance(a, Parameter)}
            )
    return bounds


def parameter_value(condition: str, node: Parameter, parameters: Mapping[str, object]) -> float:
    """The numeric value of a named strategy parameter, or a :class:`RuleSyntaxError`."""
    if node.name not in parameters:
        choices = ", ".join(sorted(parameters)) or "none defined"
        raise RuleSyntaxError(
            condition,
            node.position,
            f"a price field, indicator ({', '.join(sorted(REGISTRY))}) or parameter ({choices})",
            f"unknown name {node.name!r}",
        )
    return _number(condition, node.position, node.name, parameters[node.name])


def indicator_parameters(
    condition: str, node: IndicatorCall, parameters: Mapping[str, object]
) -> dict[str, float]:
    """The validated parameters of an indicator call: its arguments, else the strategy's
    ``<name>_<param>`` values, else the registry defaults."""
    spec = get_indicator(node.name)
    if node.args is None:
        named = {spec.strategy_param_name(p): p for p in spec.params}
        values = {
            p.name: _number(condition, node.position, key, parameters[key])
            for key, p in named.items()
            if key in parameters
        }
    else:
        values = {
            p.name: a.value if isinstance(a, Number) else parameter_value(condition, a, parameters)
            for a, p in zip(node.args, spec.params, strict=False)
        }
    try:
        return spec.resolve(values)
    except IndicatorError as error:
        ranges = ", ".join(f"{p.name} {p.minimum:g}..{p.maximum:g}" for p in spec.params)
        raise RuleSyntaxError(
            condition, node.position, f"{spec.name} parameters {ranges}", str(error)
        ) from None


def _number(condition: str, position: int, name: str, value: object) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(float(value)):
        return float(value)
    raise RuleSyntaxError(condition, position, f"a finite number for {name}", f"{name} is {value!r}")


def _read_only(array: NDArray[np.float64]) -> NDArray[np.float64]:
    array.setflags(write=False)
    return array


def _shift(values: NDArray[_Scalar] | _Scalar, bars: int, fill: float | bool) -> NDArray[_Scalar] | _Scalar:
    """``values`` delayed by ``bars``; scalars are constant, so they are their own past."""
    if isinstance(values, np.generic) or values.ndim == 0 or bars == 0:
        return values
    out = np.full(len(values), fill, dtype=values.dtype)
    if bars < len(values):
        out[bars:] = values[: len(values) - bars]
    return out


class _Evaluator:
    def __init__(
        self,
        condition: str,
        cache: IndicatorCache,
        parameters: Mapping[str, object],
        external: Mapping[str, NDArray[np.floating] | pd.Series],
    ) -> None:
        self.condition = condition
        self.cache = cache
        self.parameters = parameters
        self.external = {name.upper(): series for name, series in external.items()}

    def values(self, node: Node) -> Values:
        match node:
            case Number(value=value):
                return np.float64(value)
            case Parameter():
                return np.float64(parameter_value(self.condition, node, self.parameters))
            case Field(name=name):
                return self._column(node, name)
            case External():
                return self._external(node)
            case IndicatorCall():
                return self._indicator(node)
            case Lag(operand=operand, bars=bars):
                return _shift(self.values(operand), bars, np.nan)
            case Negate(operand=operand):
                return -self.values(operand)
            case Arithmetic(op=op, left=left, right=right):
                return _arithmetic(op, self.values(left), self.values(right))
        raise TypeError(f"not a value node: {node!r}")

    def truth(self, node: Node, with_known: bool = False) -> Truth:
        """(true, known) of a condition; ``known`` is only computed when ``with_known`` (else None)."""
        match node:
            case Comparison(op=op, left=left, right=right):
                return _compare(op, self.values(left), self.values(right), with_known)
            case Logical(op="and", operands=operands):
                parts = [self.truth(o, with_known) for o in operands]
                true = np.logical_and.reduce([t for t, _ in parts])
                if not with_known:
                    return true, None
                known_parts = cast(list[tuple[Mask, Mask]], parts)  # every known was computed
                known_false = np.logical_or.reduce([k & ~t for t, k in known_parts])
                return true, np.logical_and.reduce([k for _, k in known_parts]) | known_false
            case Logical(op="or", operands=operands):
                parts = [self.truth(o, with_known) for o in operands]
                true = np.logical_or.reduce([t for t, _ in parts])
                if not with_known:
                    return true, None
                known_parts = cast(list[tuple[Mask, Mask]], parts)  # every known was computed
                return true, np.logical_and.reduce([k for _, k in known_parts]) | true
            case Not(operand=operand):
                true, known = self.truth(operand, with_known=True)
                known = cast(Mask, known)  # asked for, so computed
                return ~true & known, known if with_known else None
            case Lag(operand=operand, bars=bars):
                true, known = self.truth(operand, with_known)
                lagged = _shift(np.asarray(true), bars, False)
                return lagged, _shift(np.asarray(known), bars, False) if with_known else None
        raise TypeError(f"not a condition node: {node!r}")

    def _indicator(self, node: IndicatorCall) -> NDArray[np.float64]:
        params = indicator_parameters(self.condition, node, self.parameters)
        spec = get_indicator(node.name)
        try:
            return self.cache.outputs(spec, params)[node.output]
        except IndicatorError as error:  # e.g. candles without the volume an indicator needs
            raise RuleError(
                self.condition, node.position, f"candles with {', '.join(spec.inputs)}", str(error)
            ) from None

    def _column(self, node: Field, name: str) -> NDArray[np.float64]:
        if name not in self.cache.frame.columns:
            raise RuleError(
                self.condition, node.position, f"candles with a {name!r} column", f"no {name!r} column"
            )
        return self.cache.column(name)

    def _external(self, node: External) -> NDArray[np.float64]:
        if node.name not in self.external:
            raise MissingSeriesError(
                self.condition,
                node.position,
                f"the caller to supply {node.name} (supplied: {', '.join(sorted(self.external)) or 'none'})",
                f"external series {node.name} was not supplied",
            )
        series = np.asarray(self.external[node.name], dtype=np.float64)
        if series.shape != (self.cache.length,):
            raise RuleError(
                self.condition,
                node.position,
                f"{node.name} with {self.cache.length} values, one per bar",
                f"{node.name} has shape {series.shape}",
            )
        return series


def _arithmetic(op: str, left: Values, right: Values) -> Values:
    with np.errstate(all="ignore"):
        if op == "+":
            return left + right
        if op == "-":
            return left - right
        if op == "*":
            return left * right
        quotient = np.divide(left, right)
    # A division by zero is undefined, not infinite: comparisons on it must not fire.
    return np.where(np.isfinite(quotient), quotient, np.nan)


def _compare(op: str, left: Values, right: Values, with_known: bool) -> Truth:
    if op in _COMPARE:
        true = _COMPARE[op](left, right)
    elif op == "!=":
        true = np.not_equal(left, right) & ~(np.isnan(left) | np.isnan(right))
    else:
        return _cross(op, left, right, with_known)
    return true, ~(np.isnan(left) | np.isnan(right)) if with_known else None


def _cross(op: str, left: Values, right: Values, with_known: bool) -> Truth:
    # With IEEE gradual underflow, a - b > 0 exactly when a > b: one subtraction serves both bars.
    with np.errstate(invalid="ignore"):
        gap = np.asarray(left - right)
    sign = 1.0 if op == "crosses_above" else -1.0
    previous = _shift(gap, 1, np.nan)
    true = (sign * gap > 0) & (sign * previous <= 0)
    return true, ~(np.isnan(gap) | np.isnan(previous)) if with_known else None
