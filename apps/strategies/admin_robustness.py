"""The admin's robustness panel: a backtest's or an optimisation's robustness block as tables and charts.

A backtest shows its Sharpe tests (PSR, deflated Sharpe, trials, minimum track record), the Monte
Carlo percentiles, break-even costs and the delay test, and draws each Monte Carlo method's fan of
equity paths and the distribution of their maximum drawdowns. An optimisation shows its PBO and the
best trial's Sharpe tests, and draws PBO's logit histogram and the stitched out-of-sample curve.

Blocks are read as stored, whatever their age: a row computed before a figure was kept (or whose
block failed) renders what it has and says what is missing, never a server error. Chart data is
JSON for ``strategies/robustness_charts.js`` (TradingView Lightweight Charts, vendored by the market
app), one spec per chart, drawn into the element named by its ``id``.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeGuard

from django.conf import settings

from apps.core.models import JobStatus
from apps.strategies.models import Backtest, OptimizationRun

METHODS = (
    ("trade_reshuffle", "trades reshuffled", "trade"),
    ("block_bootstrap", "bar returns block-bootstrapped", "bar"),
)
PERCENTILES = ("p5", "p25", "p50", "p75", "p95")
DRAWDOWN_RED, RUIN_RED = "#ef5350", "#b71c1c"
OVERFIT_RED, SKILL_GREEN = "#c62828", "#2e7d32"


@dataclass(frozen=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: Sequence[Sequence[str]]
    note: str = ""


@dataclass
class Panel:
    """What the panel template renders: tables, chart specs (JSON for the script) and sentences
    saying what the stored block lacks."""

    tables: list[Table] = field(default_factory=list)
    charts: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


# --- backtests --------------------------------------------------------------------------------


def backtest_panel(backtest: Backtest) -> Panel:
    """The robustness panel of a completed backtest (see the module docstring)."""
    panel = Panel()
    block = _stored_block(panel, backtest.robustness, "backtest", "Backtest the strategy again to see it.")
    if block is None:
        return panel
    panel.tables.append(
        _sharpe_table(
            "Sharpe ratio, deflated by the family's trials",
            block,
            "Deflated by the trials the family held when the backtest ran; activation judges the newest "
            "backtest again by the family as it is then.",
        )
    )
    carlo = block.get("monte_carlo")
    if not isinstance(carlo, Mapping):
        panel.missing.append("This block has no Monte Carlo (it was computed before Monte Carlo was kept).")
        carlo = {}
    rows: list[tuple[str, ...]] = []
    runs: list[tuple[str, ...]] = []
    for method, label, unit in METHODS:
        result = carlo.get(method)
        if not isinstance(result, Mapping):
            if method in carlo:
                panel.missing.append(_no_monte_carlo(method, label, backtest))
            continue
        rows += _monte_carlo_rows(label, result)
        runs.append(_monte_carlo_run(label, result))
        _monte_carlo_charts(panel, method, label, unit, result)
    if rows:
        panel.tables.append(
            Table(
                "Monte Carlo percentiles over the paths",
                ("figure", "method", *PERCENTILES),
                rows,
                "Returns and drawdowns in %; the longest drawdown in trades (reshuffle) or bars (bootstrap).",
            )
        )
        panel.tables.append(
            Table(
                "Monte Carlo paths and ruin",
                ("method", "paths", "seed", "mean block, bars", "ruin: a drawdown of", "share of paths"),
                runs,
            )
        )
    panel.tables.append(_break_even_table(block.get("break_even")))
    panel.tables.append(_delay_table(block.get("delay")))
    return panel


def _no_monte_carlo(method: str, label: str, backtest: Backtest) -> str:
    if method == "trade_reshuffle" and not backtest.trades:
        return "No Monte Carlo of reshuffled trades: the backtest made no trades."
    return f"No Monte Carlo of {label}: it was off when the backtest ran (STRATEGY_MONTE_CARLO_PATHS = 0)."


def _monte_carlo_rows(label: str, result: Mapping[str, Any]) -> list[tuple[str, ...]]:
    unit = result.get("duration_unit") or "steps"
    return [
        (name, label, *(_fmt(_get(result, key, q), 4) for q in PERCENTILES))
        for name, key in (
            ("final return %", "final_return_pct"),
            ("max drawdown %", "max_drawdown_pct"),
            (f"longest drawdown ({unit})", "max_drawdown_duration"),
        )
    ]


def _monte_carlo_run(label: str, result: Mapping[str, Any]) -> tuple[str, ...]:
    block = result.get("mean_block_length")
    return (
        label,
        _fmt(result.get("paths")),
        _fmt(result.get("seed")),
        "-" if block is None else _fmt(block, 4),
        f"{_fmt(result.get('ruin_drawdown_pct'), 3)}% or more",
        _share(result.get("probability_of_ruin")),
    )


def _monte_carlo_charts(panel: Panel, method: str, label: str, unit: str, result: Mapping[str, Any]) -> None:
    paths = result.get("paths")
    fan = _fan(result.get("fan"))
    if fan is None:
        panel.missing.append(
            f"The fan of {label} was not stored with this backtest (it ran before the fan was kept): "
            "its percentiles are in the table."
        )
    else:
        panel.charts.append(
            {
                "id": f"robustness-fan-{method}",
                "kind": "fan",
                "title": f"Monte Carlo fan: {label}, {_fmt(paths)} paths",
                "caption": (
                    f"Return after each {unit}, % of the starting equity. The dark band holds the middle "
                    "half of the paths (25th to 75th percentile), the light bands reach the 5th and 95th, "
                    "the dark line is the median path and orange the backtest itself."
                    + (
                        " Every order of the same trades ends at the same return: what the order changes is "
                        "the path, and so the drawdowns."
                        if method == "trade_reshuffle"
                        else ""
                    )
                ),
                "unit": unit,
                **fan,
            }
        )
    histogram = _histogram(result.get("max_drawdown_histogram"))
    if histogram is None:
        panel.missing.append(
            f"The drawdown distribution of {label} was not stored with this backtest (it ran before the "
            "distribution was kept)."
        )
        return
    ruin = _number(result.get("ruin_drawdown_pct"))
    edges = histogram["edges"]
    panel.charts.append(
        {
            "id": f"robustness-drawdowns-{method}",
            "kind": "histogram",
            "title": f"Maximum drawdown of each path: {label}",
            "caption": (
                f"How many of the {_fmt(paths)} paths fell this far from a high (%), darker from the ruin "
                f"level of {_fmt(ruin, 3)}%, which {_share(result.get('probability_of_ruin'))} of the paths "
                "reached."
            ),
            "unit": "%",
            **histogram,
            "colours": [
                RUIN_RED if ruin is not None and edges[i] >= ruin else DRAWDOWN_RED
                for i in range(len(histogram["counts"]))
            ],
        }
    )


def _break_even_table(costs: object) -> Table:
    rows = []
    costs = costs if isinstance(costs, Mapping) else {}
    for label, key in (
        ("commission for a zero return", "commission_for_zero_return"),
        ("commission for buy-and-hold's return", "commission_for_buy_and_hold"),
        ("slippage for a zero return", "slippage_for_zero_return"),
        ("slippage for buy-and-hold's return", "slippage_for_buy_and_hold"),
    ):
        found = costs.get(key)
        if not isinstance(found, Mapping):
            rows.append((label, "not stored", ""))
            continue
        cost = _number(found.get("cost"))
        value = "none" if cost is None else f"{100 * cost:.4g}% of each fill"
        rows.append((label, value, found.get("reason") or f"found by {found.get('method') or '?'}"))
    return Table("Break-even costs", ("cost", "break-even", "how"), rows)


def _delay_table(delay: object) -> Table:
    if not isinstance(delay, Mapping):
        return Table("Delay test: every fill one bar later", (), [("not stored",)])
    fragile = delay.get("fragile")
    verdict = "undefined" if fragile is None else "fragile" if fragile else "not fragile"
    rows = [
        ("Sharpe ratio as traded", _fmt(delay.get("sharpe"), 4)),
        ("Sharpe ratio one bar later", _fmt(delay.get("delayed_sharpe"), 4)),
        ("verdict", verdict),
    ]
    return Table("Delay test: every fill one bar later", (), rows, str(delay.get("rule") or ""))


# --- optimisations ----------------------------------------------------------------------------


def optimisation_panel(run: OptimizationRun) -> Panel:
    """The robustness panel of an optimisation run (see the module docstring)."""
    panel = Panel()
    if run.status != JobStatus.COMPLETED:
        panel.missing.append("The search has not completed: its robustness is judged when it does.")
        return panel
    block = _stored_block(panel, run.robustness, "search", "Run the search again to see it.")
    if block is None:
        return panel
    pbo = block.get("pbo")
    if isinstance(pbo, Mapping):
        panel.tables.append(_pbo_table(pbo))
        _logit_chart(panel, pbo)
    else:
        panel.missing.append(f"No PBO: {block.get('pbo_error') or 'it was not computed for this search'}.")
    best = block.get("best")
    if isinstance(best, Mapping):
        panel.tables.append(_sharpe_table("The adopted trial's Sharpe ratio, deflated by the family", best))
    else:
        panel.missing.append("No Sharpe tests of the adopted trial: no trial succeeded.")
    walk = block.get("walk_forward")
    if isinstance(walk, Mapping):
        _walk_forward(panel, walk, float(run.initial_capital))
    elif not run.folds:
        panel.missing.append("No stitched out-of-sample curve: the search ran without walk-forward folds.")
    else:
        panel.missing.append("No stitched out-of-sample curve: a fold had no test window or no pick.")
    return panel


def _pbo_table(pbo: Mapping[str, Any]) -> Table:
    value, ceiling = _number(pbo.get("pbo")), settings.STRATEGY_MAX_PBO
    verdict = (
        "undefined"
        if value is None
        else f"at most {ceiling:g}: passes the gate"
        if value <= ceiling
        else f"above {ceiling:g}: the gates refuse parameters it chose"
    )
    rows = [
        ("probability of backtest overfitting (PBO)", _fmt(value, 3)),
        ("against STRATEGY_MAX_PBO", verdict),
        ("probability of a loss out of sample", _fmt(pbo.get("probability_of_loss"), 3)),
        ("degradation slope (out-of-sample on in-sample Sharpe)", _fmt(pbo.get("degradation_slope"), 3)),
        ("partitions / combinations", f"{_fmt(pbo.get('partitions'))} / {_fmt(pbo.get('combinations'))}"),
        ("trials x bars", f"{_fmt(pbo.get('trials'))} x {_fmt(pbo.get('observations'))}"),
    ]
    return Table("Probability of backtest overfitting (CSCV)", (), rows)


def _logit_chart(panel: Panel, pbo: Mapping[str, Any]) -> None:
    histogram = _histogram(pbo.get("logit_histogram"))
    if histogram is None:
        panel.missing.append("PBO's logit histogram was not stored with this search.")
        return
    edges = histogram["edges"]
    panel.charts.append(
        {
            "id": "robustness-logits",
            "kind": "histogram",
            "title": f"PBO's logits over {_fmt(pbo.get('combinations'))} combinations",
            "caption": (
                "Each combination's in-sample winner, by the logit of its rank out of sample. Red (at or "
                "left of 0): no better than the median trial out of sample; their share is the PBO, "
                f"{_fmt(pbo.get('pbo'), 3)}. Green: better than the median."
                + (
                    ""
                    if 0 in edges
                    else " (Bins stored before they were cut at 0: a bar is coloured by its centre.)"
                )
            ),
            "unit": "",
            **histogram,
            # Left of 0 when its centre is: a bin ends at 0 (older rows' bins may straddle it).
            "colours": [
                OVERFIT_RED if edges[i] + edges[i + 1] < 0 else SKILL_GREEN
                for i in range(len(histogram["counts"]))
            ],
        }
    )


def _walk_forward(panel: Panel, walk: Mapping[str, Any], capital: float) -> None:
    curve = walk.get("equity_curve")
    points = _time_points(curve) if isinstance(curve, Mapping) else []
    folds = [fold for fold in walk.get("folds") or [] if isinstance(fold, Mapping)]
    panel.tables.append(
        Table(
            "Walk-forward out of sample",
            ("fold", "parameters", "start", "end", "return %"),
            [
                (
                    _fmt(fold.get("fold")),
                    _fmt(fold.get("best_params")),
                    _fmt(fold.get("start")),
                    _fmt(fold.get("end")),
                    _fmt(fold.get("return_pct"), 4),
                )
                for fold in folds
            ],
            f"Stitched return {_fmt(walk.get('total_return_pct'), 4)}%, walk-forward efficiency "
            f"{_fmt(walk.get('walk_forward_efficiency'), 3)}.",
        )
    )
    if not points:
        panel.missing.append("The stitched out-of-sample curve has no points stored.")
        return
    times = [point["time"] for point in points]
    markers = []
    for fold in folds:
        start = _seconds(fold.get("start"))
        at = bisect_left(times, start) if start is not None else len(times)
        if at < len(times):
            markers.append(
                {"time": times[at], "text": f"fold {fold.get('fold')}: {_fmt(fold.get('return_pct'), 3)}%"}
            )
    panel.charts.append(
        {
            "id": "robustness-walk-forward",
            "kind": "curve",
            "title": "Stitched out-of-sample equity",
            "caption": (
                "Each fold's test window traded with the parameters its training window chose, chained: "
                "no bar here chose the parameters it was traded with. Markers: each fold's start and its "
                "return; the dotted line is the starting capital."
            ),
            "points": points,
            "markers": markers,
            "base": capital,
        }
    )


# --- shared -----------------------------------------------------------------------------------


def _sharpe_table(title: str, tests: Mapping[str, Any], note: str = "") -> Table:
    """PSR, the deflated Sharpe ratio against its gate, the trials and the minimum track record."""
    deflated, floor = _number(tests.get("deflated_sharpe")), settings.STRATEGY_MIN_DEFLATED_SHARPE
    verdict = (
        "undefined"
        if deflated is None
        else f"at least {floor:g}: passes the gate"
        if deflated >= floor
        else f"below {floor:g}: the gates refuse it"
    )
    rows = [
        ("bar returns", _fmt(tests.get("observations"))),
        ("Sharpe ratio per bar", _fmt(tests.get("sharpe_per_bar"), 4)),
        ("skewness / kurtosis", f"{_fmt(tests.get('skewness'), 3)} / {_fmt(tests.get('kurtosis'), 3)}"),
        ("probabilistic Sharpe ratio (PSR: true Sharpe above 0)", _fmt(tests.get("psr"), 3)),
        ("trials in the family", _fmt(tests.get("trials"))),
        ("variance of their Sharpe ratios (per bar)", _fmt(tests.get("sharpe_variance"), 3)),
        ("best Sharpe ratio per bar that luck gives that many", _fmt(tests.get("expected_max_sharpe"), 4)),
        ("deflated Sharpe ratio (DSR)", _fmt(deflated, 3)),
        ("against STRATEGY_MIN_DEFLATED_SHARPE", verdict),
        ("minimum track record for 95% confidence, bars", _bars(tests.get("min_track_record_bars"))),
    ]
    return Table(title, (), rows, note)


def _stored_block(panel: Panel, block: object, what: str, again: str) -> Mapping[str, Any] | None:
    if not isinstance(block, Mapping) or not block:
        panel.missing.append(
            f"This {what} has no robustness block: it ran before robustness was computed. {again}"
        )
        return None
    if "error" in block:
        panel.missing.append(f"The robustness of this {what} failed: {block['error']}")
        return None
    return block


def _fan(data: object) -> dict[str, Any] | None:
    """A stored fan with its steps, five bands and the backtest's path, all of one length; else None."""
    if not isinstance(data, Mapping):
        return None
    steps = data.get("steps")
    series = {name: data.get(name) for name in (*PERCENTILES, "backtest")}
    if not isinstance(steps, list) or not steps or not all(isinstance(s, int) for s in steps):
        return None
    if not all(_numbers(values, len(steps)) for values in series.values()):
        return None
    return {"steps": steps, "bands": {q: series[q] for q in PERCENTILES}, "backtest": series["backtest"]}


def _histogram(data: object) -> dict[str, list[Any]] | None:
    if not isinstance(data, Mapping):
        return None
    edges, counts = data.get("edges"), data.get("counts")
    if not isinstance(counts, list) or not counts or not all(isinstance(c, int) for c in counts):
        return None
    if not _numbers(edges, len(counts) + 1) or None in edges:
        return None
    return {"edges": edges, "counts": counts}


def _numbers(values: object, length: int) -> TypeGuard[list[float | None]]:
    """A list of ``length`` numbers (None for an undefined one)."""
    return (
        isinstance(values, list)
        and len(values) == length
        and all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values)
    )


def _time_points(curve: Mapping[str, Any]) -> list[dict[str, float]]:
    times, equity = curve.get("times"), curve.get("equity")
    if not isinstance(times, list) or not _numbers(equity, len(times)):
        return []
    points: list[dict[str, float]] = []
    for time, value in zip(times, equity, strict=True):
        seconds = _seconds(time)
        if seconds is not None and value is not None and (not points or seconds > points[-1]["time"]):
            points.append({"time": seconds, "value": value})
    return points


def _seconds(iso: object) -> int | None:
    try:
        return int(datetime.fromisoformat(str(iso)).timestamp())
    except ValueError:
        return None


def _share(value: object) -> str:
    share = _number(value)
    return "undefined" if share is None else f"{100 * share:.3g}%"


def _bars(value: object) -> str:
    bars = _number(value)
    return "undefined" if bars is None else f"{bars:,.0f}"


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _fmt(value: object, digits: int | None = None) -> str:
    """A stored figure for a table: "undefined" for None, integers with separators, floats to
    ``digits`` significant digits."""
    if value is None:
        return "undefined"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits or 6}g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(str(v) for v in value)
    return str(value)


def _get(data: Mapping[str, Any], key: str, inner: str) -> object:
    value = data.get(key)
    return value.get(inner) if isinstance(value, Mapping) else None
