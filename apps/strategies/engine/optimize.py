"""Parameter optimisation, pure parts: search spaces, walk-forward folds, trial evaluation, summaries.

A *space* maps parameter names to a list of values (``{"rsi_period": [7, 14, 21]}``) or a range:
``{"min": 10, "max": 50, "step": 5}`` for a grid, ``{"min": 0.01, "max": 0.05}`` for random
sampling (integers when min and max are integers, or with ``"type": "int"``/``"float"``).
:func:`grid` and :func:`random_sample` turn it into trials; :func:`chunk` cuts trials into
JSON-ready chunks that a caller (a Celery group) evaluates in parallel with :func:`evaluate_chunk`;
:func:`summarise` picks the winners.

Walk-forward (:func:`walk_forward_folds`): consecutive, non-overlapping test windows cover the end of
the data; each fold's training window ends where its test window starts (rolling: a fixed length;
anchored: from the first bar). Parameters are picked per fold on the training window only, then
judged on the test window. Signals are computed on the whole frame and sliced, which is the same as
computing them on data up to the window's end (indicators are causal) and lets a test window start
with its indicators already warmed up.

Overfitting warning: the *walk-forward efficiency* is the mean out-of-sample objective of the
per-fold picks over their mean in-sample objective. Below :data:`OVERFIT_RATIO` (0.5, the usual
walk-forward acceptance threshold) the summary carries a warning, as it does when in-sample is
positive and out-of-sample is undefined.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import NotRequired, TypedDict, TypeGuard, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from apps.market.domain.indicators import IndicatorError, Param

from .backtest import RISK_PARAMETERS, BacktestError, CheckedBars, RiskSettings, backtest_signals
from .parameters import strategy_parameters_read
from .rules import IndicatorCache, Rule, RuleError, as_rules, parameter_bounds, signals
from .rules import validate as validate_condition

OBJECTIVES = (
    "sharpe_ratio",
    "sortino_ratio",
    "calmar_ratio",
    "total_return_pct",
    "cagr_pct",
    "profit_factor",
    "win_rate_pct",
    "expectancy_pct",
    "avg_trade_pct",
    "final_equity",
)
OVERFIT_RATIO = 0.5
MAX_TRIALS = 10_000
MIN_WINDOW_BARS = 10

Value = int | float | bool
Range = Mapping[str, object]  # {"min", "max"[, "step"][, "type"]}
Space = Mapping[str, Sequence[Value] | Range]
Metrics = dict[str, object]  # a BacktestReport.metrics(): JSON-ready


# The JSON documents of an optimisation (typed dicts: plain dicts at run time).
class ChunkTrial(TypedDict):
    """One numbered trial of a chunk (see :func:`chunk`)."""

    index: int
    params: dict[str, Value]


class FoldResult(TypedDict):
    """A trial's metrics on one fold; ``out_of_sample`` is None for an in-sample-only fold."""

    fold: int
    in_sample: Metrics
    out_of_sample: Metrics | None


class TrialResult(TypedDict):
    """A trial evaluated by :func:`evaluate_chunk`: ``folds``, or the ``error`` that rejected it."""

    index: int
    params: dict[str, Value]
    folds: NotRequired[list[FoldResult]]
    error: NotRequired[str]
    window: NotRequired[dict[str, object]]


# What :func:`evaluate_chunk` keeps of a trial's signals over the whole window besides its folds.
WindowStatistics = Callable[[NDArray[np.int8], RiskSettings], dict[str, object]]


class TrialSummary(TypedDict):
    """A trial in :attr:`Summary.trials`: its mean objectives over the folds."""

    index: int
    params: dict[str, Value]
    in_sample_objective: float | None
    out_of_sample_objective: float | None
    folds: list[FoldResult]


class FoldPick(TypedDict):
    """The trial with the best in-sample objective on one fold, in :attr:`Summary.folds`."""

    fold: int
    best_index: int
    best_params: dict[str, Value]
    in_sample: Metrics
    out_of_sample: Metrics | None


class OptimizeError(ValueError):
    """An invalid search space, objective or fold layout."""


class UnusedParameterError(OptimizeError):
    """A search space over parameters the strategy never reads: its trials would all be the same.
    ``problems`` maps each such parameter to what is wrong with it."""

    def __init__(self, names: Sequence[str], read: Iterable[str]) -> None:
        valid = ", ".join(sorted(read))
        self.problems = {
            name: f"parameter {name!r} is not used by the strategy: no rule reads it, so every value "
            f"gives the same trial; valid: {valid}"
            for name in names
        }
        if len(names) == 1:
            super().__init__(self.problems[names[0]])
        else:
            quoted = ", ".join(repr(name) for name in names)
            super().__init__(
                f"parameters {quoted} are not used by the strategy: no rule reads them, so every value "
                f"gives the same trial; valid: {valid}"
            )


# --- spaces ------------------------------------------------------------------------------------------


def grid(space: Space) -> list[dict[str, Value]]:
    """Every combination of the space's values, the last parameter varying fastest."""
    axes = {name: _axis(name, spec) for name, spec in _checked_space(space).items()}
    size = math.prod(len(values) for values in axes.values())
    if size > MAX_TRIALS:
        raise OptimizeError(f"the grid has {size} combinations; at most {MAX_TRIALS} are allowed")
    return [dict(zip(axes, combination, strict=True)) for combination in itertools.product(*axes.values())]


def random_sample(space: Space, n: int, seed: int) -> list[dict[str, Value]]:
    """``n`` distinct random trials (fewer only if the space has fewer), reproducible by ``seed``.

    Lists and stepped ranges are drawn from their values; ranges without a step uniformly.
    """
    space = _checked_space(space)
    if not 1 <= n <= MAX_TRIALS:
        raise OptimizeError(f"the number of random trials must be from 1 to {MAX_TRIALS}, got {n}")
    discrete = {name: _axis(name, spec) for name, spec in space.items() if _is_discrete(spec)}
    if len(discrete) == len(space) and math.prod(len(v) for v in discrete.values()) <= n:
        return grid(space)
    rng = np.random.default_rng(seed)
    trials: dict[tuple[Value, ...], dict[str, Value]] = {}
    for _ in range(50 * n):
        trial = {
            name: discrete[name][rng.integers(len(discrete[name]))]
            if name in discrete
            else _draw(cast(Range, spec), rng)  # not discrete: a range without a step
            for name, spec in space.items()
        }
        trials.setdefault(tuple(trial.values()), trial)
        if len(trials) == n:
            break
    return list(trials.values())


def validate_space(space: Space, rules: Sequence[Rule | Mapping[str, object]]) -> None:
    """Raise :class:`OptimizeError` unless every parameter of ``space`` is read by the strategy (see
    :mod:`.parameters`; else :class:`UnusedParameterError` naming them all) and every value (or range
    end) is valid for it: indicator ranges, risk limits, numbers."""
    rules = as_rules(rules)
    checked = _checked_space(space)
    read = strategy_parameters_read(rules)
    if unused := [name for name in checked if name not in read]:
        raise UnusedParameterError(unused, read)
    bounds: dict[str, Param] = {}
    for rule in rules:
        bounds.update(parameter_bounds(rule.node))
    for name, spec in checked.items():
        # Not discrete: a range without a step, checked by its ends.
        for value in _axis(name, spec) if _is_discrete(spec) else _range_ends(name, cast(Range, spec)):
            _check_value(name, value, bounds)


def _checked_space(space: Space) -> dict[str, Sequence[Value] | Mapping[str, object]]:
    if not isinstance(space, Mapping) or not space:
        raise OptimizeError("the parameter space must map at least one parameter name to values or a range")
    for name, spec in space.items():
        if isinstance(spec, Mapping):
            _range_ends(name, spec)
        elif isinstance(spec, str) or not isinstance(spec, Sequence) or not spec:
            raise OptimizeError(f"{name}: give a non-empty list of values or a range with min and max")
    return dict(space)


def _is_discrete(spec: Sequence[Value] | Mapping[str, object]) -> bool:
    return not isinstance(spec, Mapping) or "step" in spec


def _is_integer_range(spec: Mapping[str, object]) -> bool:
    kind = spec.get("type")
    if kind is not None:
        return kind == "int"
    return all(isinstance(spec.get(k), numbers.Integral) for k in ("min", "max", "step") if k in spec)


def _range_ends(name: str, spec: Mapping[str, object]) -> tuple[float, float]:
    unknown = set(spec) - {"min", "max", "step", "type"}
    low, high = spec.get("min"), spec.get("max")
    if unknown or not (_is_number(low) and _is_number(high)) or low > high:
        raise OptimizeError(
            f"{name}: a range needs numbers min <= max (and optionally step, type); got {dict(spec)}"
        )
    step = spec.get("step")
    if "step" in spec and not (_is_number(step) and step > 0):
        raise OptimizeError(f"{name}: step must be a positive number, got {step!r}")
    if spec.get("type", "int") not in ("int", "float"):
        raise OptimizeError(f"{name}: type must be 'int' or 'float', got {spec['type']!r}")
    if _is_integer_range(spec):
        return math.ceil(low), math.floor(high)
    return float(low), float(high)


def _axis(name: str, spec: Sequence[Value] | Mapping[str, object]) -> list[Value]:
    if not isinstance(spec, Mapping):
        return list(spec)
    low, high = _range_ends(name, spec)
    if "step" not in spec:
        raise OptimizeError(f"{name}: a grid range needs a step")
    step = cast(float, spec["step"])  # a positive number: _range_ends checked it
    count = math.floor((high - low) / step + 1e-9) + 1
    if count > MAX_TRIALS:
        raise OptimizeError(f"{name}: the range has {count} values; at most {MAX_TRIALS} are allowed")
    if _is_integer_range(spec):
        return [int(low + i * int(step)) for i in range(count)]
    return [round(low + i * step, 12) for i in range(count)]


def _draw(spec: Mapping[str, object], rng: np.random.Generator) -> Value:
    low, high = _range_ends("", spec)
    if _is_integer_range(spec):
        return int(rng.integers(int(low), int(high) + 1))  # (already ints: _range_ends rounded them)
    return float(rng.uniform(low, high))


def _is_number(value: object) -> TypeGuard[float]:
    """A finite real number other than a bool (an int, a float or a numpy number: it compares and
    converts like a float)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_value(name: str, value: object, bounds: Mapping[str, Param]) -> None:
    try:
        if name in bounds:
            bounds[name].validate(cast(float, value))  # validate rejects what is not a number
        elif name in RISK_PARAMETERS:
            RiskSettings.from_parameters({name: value})
        elif not _is_number(value):
            raise OptimizeError(f"{name}: values must be numbers, got {value!r}")
    except (IndicatorError, BacktestError) as error:
        raise OptimizeError(f"{name}: {error}") from None


def chunk(trials: Sequence[Mapping[str, Value]], size: int) -> list[list[ChunkTrial]]:
    """Number the trials and cut them into chunks of at most ``size``: ``[[{"index", "params"}]]``."""
    if size < 1:
        raise OptimizeError(f"chunk size must be at least 1, got {size}")
    numbered: list[ChunkTrial] = [{"index": i, "params": dict(params)} for i, params in enumerate(trials)]
    return [numbered[start : start + size] for start in range(0, len(numbered), size)]


# --- folds -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Bars ``start`` (inclusive) to ``stop`` (exclusive) of the frame."""

    start: int
    stop: int

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Fold:
    """A training window and the test window right after it (None: in-sample only)."""

    index: int
    train: Window
    test: Window | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def walk_forward_folds(
    n_bars: int, folds: int, *, train_fraction: float = 0.7, anchored: bool = False
) -> list[Fold]:
    """Split ``n_bars`` into ``folds`` walk-forward folds.

    The test windows are equal, consecutive and cover the end of the data. A training window is
    ``train_fraction`` of its fold (train + test) when rolling; anchored windows start at bar 0 and
    grow, the first having the rolling length. No fold's training window overlaps its test window.
    """
    if not isinstance(folds, int) or folds < 1:
        raise OptimizeError(f"folds must be a whole number >= 1, got {folds!r}")
    if not 0 < train_fraction < 1:
        raise OptimizeError(f"train_fraction must be between 0 and 1, got {train_fraction!r}")
    test_bars = int(n_bars / (folds + train_fraction / (1 - train_fraction)))
    train_bars = n_bars - folds * test_bars
    if min(test_bars, train_bars) < MIN_WINDOW_BARS:
        raise OptimizeError(
            f"{n_bars} bars are too few for {folds} folds: windows would have {test_bars} test and "
            f"{train_bars} training bars; at least {MIN_WINDOW_BARS} each are needed"
        )
    layout = []
    for k in range(folds):
        test = Window(train_bars + k * test_bars, train_bars + (k + 1) * test_bars)
        layout.append(Fold(k, Window(0 if anchored else k * test_bars, test.start), test))
    return layout


def in_sample_only(n_bars: int) -> list[Fold]:
    """One fold that trains on all the data and has no test window (no walk-forward)."""
    if n_bars < MIN_WINDOW_BARS:
        raise OptimizeError(f"at least {MIN_WINDOW_BARS} bars are needed, got {n_bars}")
    return [Fold(0, Window(0, n_bars), None)]


# --- evaluation --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Costs:
    """What every trial of one optimisation shares besides the data."""

    initial_capital: float = 10000.0
    commission: float = 0.001
    slippage: float = 0.0
    timeframe: str = "1h"


def evaluate_trial(
    frame: pd.DataFrame,
    rules: Sequence[Rule | Mapping[str, object]],
    base_parameters: Mapping[str, object],
    trial_params: Mapping[str, Value],
    window: Window,
    *,
    costs: Costs = Costs(),
    external: Mapping[str, NDArray[np.floating] | pd.Series] | None = None,
    cache: IndicatorCache | None = None,
) -> Metrics:
    """Backtest the strategy with ``trial_params`` over ``base_parameters`` on one window: its metrics."""
    parameters = {**base_parameters, **trial_params}
    codes = signals(rules, frame, parameters, external, cache=cache)
    risk = RiskSettings.from_parameters(parameters)
    return _window_metrics(CheckedBars.of(frame), codes, risk, window, costs)


def evaluate_chunk(
    frame: pd.DataFrame,
    rules: Sequence[Rule | Mapping[str, object]],
    base_parameters: Mapping[str, object],
    trials: Sequence[ChunkTrial],
    folds: Sequence[Fold],
    *,
    costs: Costs = Costs(),
    external: Mapping[str, NDArray[np.floating] | pd.Series] | None = None,
    whole_window: WindowStatistics | None = None,
    bars: CheckedBars | None = None,
) -> list[TrialResult]:
    """Evaluate one chunk from :func:`chunk` on every fold; indicators are shared across its trials.
    ``bars``: the frame's :class:`CheckedBars` where the caller keeps them (a worker checks the frame
    of a search once, not once per chunk).

    Each result is ``{"index", "params", "folds": [{"fold", "in_sample", "out_of_sample"}]}``, or
    ``{"index", "params", "error"}`` for a combination the strategy rejects (e.g. MACD fast >= slow).
    With ``whole_window``, each successful result also holds ``"window"``: what that function makes of
    the trial's signals (the robustness statistics of the search, computed where the trial already is
    rather than by backtesting every trial again when the search is concluded).
    """
    rules = as_rules(rules)
    cache = IndicatorCache(frame)
    bars = bars if bars is not None else CheckedBars.of(frame)
    results: list[TrialResult] = []
    for trial in trials:
        parameters = {**base_parameters, **trial["params"]}
        try:
            for rule in rules:
                validate_condition(rule.condition, parameters)
            risk = RiskSettings.from_parameters(parameters)
        except (RuleError, BacktestError) as error:
            results.append({"index": trial["index"], "params": trial["params"], "error": str(error)})
            continue
        codes = signals(rules, frame, parameters, external, cache=cache)
        per_fold: list[FoldResult] = [
            {
                "fold": fold.index,
                "in_sample": _window_metrics(bars, codes, risk, fold.train, costs),
                "out_of_sample": None
                if fold.test is None
                else _window_metrics(bars, codes, risk, fold.test, costs),
            }
            for fold in folds
        ]
        result: TrialResult = {"index": trial["index"], "params": trial["params"], "folds": per_fold}
        if whole_window is not None:
            result["window"] = whole_window(codes, risk)
        results.append(result)
    return results


def _window_metrics(
    bars: CheckedBars, codes: NDArray[np.int8], risk: RiskSettings, window: Window, costs: Costs
) -> Metrics:
    report = backtest_signals(
        bars.window(window.slice),
        codes[window.slice],
        risk,
        initial_capital=costs.initial_capital,
        commission=costs.commission,
        slippage=costs.slippage,
        timeframe=costs.timeframe,
    )
    return report.metrics()


# --- summary -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """The outcome of an optimisation; ``to_dict()`` is JSON-ready.

    ``folds``: per fold, the trial with the best in-sample objective and its in- and out-of-sample
    metrics. ``best_index``/``best_params``: the trial with the best mean in-sample objective over all
    folds, the candidate to adopt; ``trials``: every trial with its mean objectives.
    """

    objective: str
    best_index: int | None
    best_params: dict[str, Value] | None
    in_sample_objective: float | None
    out_of_sample_objective: float | None
    walk_forward_efficiency: float | None
    warning: str | None
    folds: list[FoldPick]
    trials: list[TrialSummary]
    failed: int

    def to_dict(self) -> dict[str, object]:
        # Shallow: the fields are JSON values already, and asdict's deep copy of every trial's
        # metrics was half the time of concluding a 100-trial search.
        return {field.name: getattr(self, field.name) for field in fields(self)}


def summarise(results: Sequence[TrialResult], objective: str) -> Summary:
    """Pick the best trials by in-sample ``objective`` and report how they did out of sample."""
    if objective not in OBJECTIVES:
        raise OptimizeError(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")
    ok = sorted((r for r in results if "folds" in r), key=lambda r: r["index"])
    trials: list[TrialSummary] = [
        {
            "index": r["index"],
            "params": r["params"],
            "in_sample_objective": _mean(_value(f["in_sample"], objective) for f in r["folds"]),
            "out_of_sample_objective": _mean(
                _value(f["out_of_sample"], objective) for f in r["folds"] if f["out_of_sample"] is not None
            ),
            "folds": r["folds"],
        }
        for r in ok
    ]
    fold_picks = _fold_picks(ok, objective)
    in_sample = _mean(_value(p["in_sample"], objective) for p in fold_picks)
    out_of_sample = _mean(
        _value(p["out_of_sample"], objective) for p in fold_picks if p["out_of_sample"] is not None
    )
    best = max(trials, key=lambda t: (_rank(t["in_sample_objective"]), -t["index"]), default=None)
    efficiency = None
    if in_sample is not None and out_of_sample is not None and in_sample > 0:
        efficiency = out_of_sample / in_sample
    return Summary(
        objective=objective,
        best_index=None if best is None else best["index"],
        best_params=None if best is None else best["params"],
        in_sample_objective=in_sample,
        out_of_sample_objective=out_of_sample,
        walk_forward_efficiency=efficiency,
        warning=_overfit_warning(
            objective,
            in_sample,
            out_of_sample,
            has_tests=any(p["out_of_sample"] is not None for p in fold_picks),
        ),
        folds=fold_picks,
        trials=trials,
        failed=len(results) - len(ok),
    )


def _fold_picks(results: list[TrialResult], objective: str) -> list[FoldPick]:
    if not results:
        return []
    picks: list[FoldPick] = []
    for k in range(len(results[0]["folds"])):
        best = max(results, key=lambda r: (_rank(_value(r["folds"][k]["in_sample"], objective)), -r["index"]))
        fold = best["folds"][k]
        picks.append(
            {
                "fold": fold["fold"],
                "best_index": best["index"],
                "best_params": best["params"],
                "in_sample": fold["in_sample"],
                "out_of_sample": fold["out_of_sample"],
            }
        )
    return picks


def _overfit_warning(
    objective: str, in_sample: float | None, out_of_sample: float | None, *, has_tests: bool
) -> str | None:
    if not has_tests or in_sample is None or in_sample <= 0:
        return None
    if out_of_sample is None:
        return f"out-of-sample {objective} is undefined, in-sample it is {in_sample:.4g}: possibly overfitted"
    if out_of_sample < OVERFIT_RATIO * in_sample:
        return (
            f"out-of-sample {objective} ({out_of_sample:.4g}) is below {OVERFIT_RATIO:.0%} of in-sample "
            f"({in_sample:.4g}): the parameters are probably overfitted"
        )
    return None


def _rank(value: float | None) -> float:
    return -math.inf if value is None else value


def _value(metrics: Metrics, objective: str) -> float | None:
    """An objective's value in trial metrics: each of OBJECTIVES is a float, None where undefined."""
    return cast("float | None", metrics[objective])


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None
