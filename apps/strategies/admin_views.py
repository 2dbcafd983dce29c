"""What the admin draws for backtests and optimisations: the price with the trades, equity against
buy and hold with the drawdown under it, and an optimisation's trials (a heatmap over two
parameters) and walk-forward folds (in-sample against out-of-sample).

Backtest charts are JSON for the page's script (TradingView Lightweight Charts, vendored by the
market app); the optimisation charts are SVG made here, so they need no script at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from apps.market import selectors as market_selectors
from apps.strategies.engine import RiskSettings
from apps.strategies.models import Backtest, OptimizationRun

# More bars than this are merged k at a time (OHLC of each group) so the page stays light; trades
# and levels are drawn on the group holding their bar.
MAX_PRICE_BARS = 10_000
HEATMAP_WIDTH = 720
FOLD_CHART_HEIGHT = 220


# --- backtests --------------------------------------------------------------------------------


def backtest_charts(backtest: Backtest) -> dict[str, Any]:
    """The three charts of a finished backtest, as JSON-ready lists (times in UTC epoch seconds).

    ``price``: the candles of the backtest's window, with ``markers`` (an entry and an exit per
    trade, oldest first) and, when the version sets them, each trade's ``stop`` and ``target``
    levels (one value per bar, null outside trades; computed from the trade's average entry price).
    ``equity`` and ``buyAndHold`` are account values as stored (a sample of at most the backtest's
    ``EQUITY_POINTS`` bars); ``drawdown`` and ``holdDrawdown`` the fall from the running high of those
    points, in percent (zero or negative), and ``maxDrawdown`` the metric over every bar.
    """
    strategy = backtest.strategy
    frame = market_selectors.candles_frame(
        instrument=strategy.instrument, timeframe=strategy.timeframe, start=backtest.start, end=backtest.end
    )
    group = max(1, math.ceil(len(frame) / MAX_PRICE_BARS))
    bar_times = frame.index
    starts = np.arange(0, len(frame), group)
    times = _seconds(bar_times[starts]) if len(frame) else []
    trades = backtest.trades
    risk = RiskSettings.from_parameters(backtest.version.parameters)
    groups_of = _groups(bar_times, group)
    price = {
        "times": times,
        "open": _floats(frame["open"].to_numpy()[starts]),
        "high": _floats(np.maximum.reduceat(frame["high"].to_numpy(), starts)) if len(frame) else [],
        "low": _floats(np.minimum.reduceat(frame["low"].to_numpy(), starts)) if len(frame) else [],
        "close": _floats(frame["close"].to_numpy()[np.append(starts[1:] - 1, len(frame) - 1)])
        if len(frame)
        else [],
        "barsPerPoint": group,
        "markers": _markers(trades, groups_of, times),
        "stop": _levels(trades, groups_of, len(times), risk.stop_loss_pct, -1),
        "target": _levels(trades, groups_of, len(times), risk.take_profit_pct, 1),
    }
    equity = _curve(backtest.equity_curve)
    hold = _curve(backtest.benchmark.get("equity_curve", {}))
    return {
        "price": price,
        "equity": _points(equity),
        "buyAndHold": _points(hold),
        "drawdown": _points(_drawdown(equity)),
        "holdDrawdown": _points(_drawdown(hold)),
        "maxDrawdown": backtest.metrics.get("max_drawdown_pct"),
    }


def _seconds(times: pd.DatetimeIndex) -> list[int]:
    return [int(t) for t in times.as_unit("s").asi8]


def _floats(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values.tolist()]


def _groups(bar_times: pd.DatetimeIndex, group: int) -> Any:
    """Where a trade time falls: the index of the point (group of bars) drawn for its bar."""

    def point(iso: str) -> int:
        bar = int(bar_times.searchsorted(pd.Timestamp(iso), side="right")) - 1
        return max(0, bar) // group

    return point


def _markers(trades: Sequence[Mapping[str, Any]], point: Any, times: list[int]) -> list[dict[str, Any]]:
    if not times:
        return []
    markers = []
    for number, trade in enumerate(trades, start=1):
        side = trade["side"]
        markers.append(
            {
                "time": times[point(trade["entry_time"])],
                "kind": "entry",
                "side": side,
                "trade": number,
                "price": trade["entry_price"],
            }
        )
        markers.append(
            {
                "time": times[point(trade["exit_time"])],
                "kind": "exit",
                "side": side,
                "trade": number,
                "price": trade["exit_price"],
                "won": trade["pnl"] > 0,
                "reason": trade["exit_reason"],
            }
        )
    return sorted(markers, key=lambda marker: marker["time"])


def _levels(
    trades: Sequence[Mapping[str, Any]], point: Any, points: int, fraction: float | None, towards: int
) -> list[float | None] | None:
    """A stop (``towards=-1``) or target (``towards=1``) level on every point a trade is open at."""
    if not fraction or not points:
        return None
    levels = np.full(points, np.nan)
    for trade in trades:
        side = 1 if trade["side"] == "long" else -1
        levels[point(trade["entry_time"]) : point(trade["exit_time"]) + 1] = trade["entry_price"] * (
            1 + towards * side * fraction
        )
    return _floats(levels)


def _curve(curve: Mapping[str, list]) -> pd.Series:
    if not curve.get("times"):
        return pd.Series([], dtype=float)
    series = pd.Series(curve["equity"], index=pd.DatetimeIndex(curve["times"]), dtype=float)
    return series.dropna()


def _drawdown(equity: pd.Series) -> pd.Series:
    return (equity / equity.cummax() - 1) * 100


def _points(series: pd.Series) -> list[dict[str, float]]:
    if series.empty:
        return []
    seconds = series.index.as_unit("s").asi8
    return [{"time": int(t), "value": v} for t, v in zip(seconds, series.to_numpy().tolist(), strict=True)]


# --- optimisations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One square of the heatmap: the best trial at this pair of values."""

    column: int
    row: int
    value: float | None
    title: str


def trial_heatmap(run: OptimizationRun) -> SafeString | str:
    """The trials as SVG: a heatmap of the in-sample objective over the two parameters with the most
    distinct values (the best trial per square when there are more parameters), or bars over the
    only parameter. Failed trials are left out; they are counted in the summary."""
    trials = [t for t in run.trials if "error" not in t]
    names = sorted({name for t in trials for name in t["params"]})
    if not trials or not names:
        return "-"
    distinct = {name: sorted({_key(t["params"].get(name)) for t in trials}) for name in names}
    ranked = sorted(names, key=lambda name: (-len(distinct[name]), name))
    if len(ranked) == 1 or len(distinct[ranked[1]]) == 1:
        return _trial_bars(run, trials, ranked[0], [_value(key) for key in distinct[ranked[0]]])
    x, y = ranked[:2]
    others = ranked[2:]
    columns, rows = distinct[x], distinct[y]
    best: dict[tuple[int, int], Mapping[str, Any]] = {}
    for trial in trials:
        at = (columns.index(_key(trial["params"].get(x))), rows.index(_key(trial["params"].get(y))))
        if at not in best or _rank(trial) > _rank(best[at]):
            best[at] = trial
    cells = [
        Cell(column, row, trial["in_sample_objective"], _trial_title(run, trial))
        for (column, row), trial in sorted(best.items())
    ]
    note = (
        f"each square is the best of the trials over {', '.join(others)}"
        if others
        else "one trial per square"
    )
    return _heatmap_svg(run, x, y, [_value(k) for k in columns], [_value(k) for k in rows], cells, note)


def _key(value: Any) -> tuple[int, float | str]:
    """Parameter values in a sortable form: numbers by size, then the rest as text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value))
    return (1, str(value))


def _value(key: tuple[int, float | str]) -> str:
    kind, value = key
    return f"{value:g}" if kind == 0 and isinstance(value, float) else str(value)


def _rank(trial: Mapping[str, Any]) -> float:
    value = trial["in_sample_objective"]
    return -math.inf if value is None else value


def _fmt(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4g}"


def _trial_title(run: OptimizationRun, trial: Mapping[str, Any]) -> str:
    params = ", ".join(f"{name}={value}" for name, value in sorted(trial["params"].items()))
    line = f"trial {trial['index']}: {params}; in-sample {run.objective} {_fmt(trial['in_sample_objective'])}"
    if run.folds:
        line += f", out-of-sample {_fmt(trial['out_of_sample_objective'])}"
    return line


def _colour(value: float | None, scale: float) -> str:
    """Green for higher (better) objectives, red for lower, grey where undefined; 0 is white."""
    if value is None:
        return "#cfd8dc"
    strength = min(1.0, abs(value) / scale) if scale else 0.0
    target = (46, 125, 50) if value >= 0 else (198, 40, 40)
    r, g, b = (round(255 + (channel - 255) * strength) for channel in target)
    return f"rgb({r},{g},{b})"


def _scale(values: Sequence[float | None]) -> float:
    return max((abs(v) for v in values if v is not None), default=0.0)


def _heatmap_svg(
    run: OptimizationRun,
    x: str,
    y: str,
    columns: list[str],
    rows: list[str],
    cells: list[Cell],
    note: str,
) -> SafeString:
    left, top, bottom = 90, 10, 60
    size = max(6, min(56, (HEATMAP_WIDTH - left) // len(columns), 420 // len(rows)))
    width, height = left + size * len(columns), top + size * len(rows) + bottom
    scale = _scale([cell.value for cell in cells])
    labelled = size >= 40
    squares = format_html_join(
        "",
        '<rect class="heatmap-cell" x="{}" y="{}" width="{}" height="{}" fill="{}">'
        "<title>{}</title></rect>{}",
        (
            (
                left + cell.column * size,
                top + (len(rows) - 1 - cell.row) * size,
                size - 1,
                size - 1,
                _colour(cell.value, scale),
                cell.title,
                format_html(
                    '<text x="{}" y="{}" text-anchor="middle" class="heatmap-value">{}</text>',
                    left + cell.column * size + size // 2,
                    top + (len(rows) - 1 - cell.row) * size + size // 2 + 4,
                    _fmt(cell.value),
                )
                if labelled
                else "",
            )
            for cell in cells
        ),
    )
    step_x, step_y = (
        max(1, math.ceil(len(columns) * 40 / (HEATMAP_WIDTH - left))),
        max(1, math.ceil(len(rows) * 16 / 420)),
    )
    x_labels = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="middle">{}</text>',
        (
            (left + i * size + size // 2, top + len(rows) * size + 16, label)
            for i, label in enumerate(columns)
            if i % step_x == 0
        ),
    )
    y_labels = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="end">{}</text>',
        (
            (left - 6, top + (len(rows) - 1 - i) * size + size // 2 + 4, label)
            for i, label in enumerate(rows)
            if i % step_y == 0
        ),
    )
    return format_html(
        '<figure class="optimization-chart"><svg class="trial-heatmap" width="{}" height="{}" role="img" '
        'aria-label="{}" data-x="{}" data-y="{}">{}{}{}'
        '<text x="{}" y="{}" text-anchor="middle" class="axis-name">{}</text>'
        '<text x="12" y="{}" text-anchor="middle" class="axis-name" transform="rotate(-90 12 {})">{}</text>'
        "</svg><figcaption>In-sample {} by {} (across) and {} (up): green higher, red lower, grey "
        "undefined; {}. Hover a square for its trial.</figcaption></figure>",
        width,
        height,
        f"in-sample {run.objective} by {x} and {y}",
        x,
        y,
        squares,
        x_labels,
        y_labels,
        left + size * len(columns) // 2,
        height - 12,
        x,
        top + size * len(rows) // 2,
        top + size * len(rows) // 2,
        y,
        run.objective,
        x,
        y,
        note,
    )


def _trial_bars(
    run: OptimizationRun, trials: list[Mapping[str, Any]], name: str, values: list[str]
) -> SafeString:
    """One parameter: a bar per value (the best trial at it), in-sample, with out-of-sample beside."""
    best: dict[str, Mapping[str, Any]] = {}
    for trial in trials:
        label = _value(_key(trial["params"].get(name)))
        if label not in best or _rank(trial) > _rank(best[label]):
            best[label] = trial
    series = [("in-sample", "in_sample_objective", "#2962ff")]
    if run.folds:
        series.append(("out-of-sample", "out_of_sample_objective", "#ff6d00"))
    groups = [
        (label, [best[label][key] for _, key, _ in series], _trial_title(run, best[label]))
        for label in values
    ]
    chart = _bar_chart(groups, [(label, colour) for label, _, colour in series], "trial-bar")
    return format_html(
        '<figure class="optimization-chart">{}<figcaption>The search has one parameter ({}): {} {} by its '
        "value, not a heatmap. Hover a bar for its trial.</figcaption></figure>",
        chart,
        name,
        ", ".join(label for label, _, _ in series),
        run.objective,
    )


def fold_chart(run: OptimizationRun) -> SafeString | str:
    """Walk-forward folds as bars: each fold's in-sample pick and the same parameters out of sample."""
    objective = run.objective
    picks = run.summary.get("folds", []) if run.folds else []
    if not picks:
        return "-"
    groups = []
    for pick in picks:
        in_sample = pick["in_sample"][objective]
        out = pick["out_of_sample"] and pick["out_of_sample"][objective]
        title = (
            f"fold {pick['fold']}: {pick['best_params']}; "
            f"in-sample {_fmt(in_sample)}, out-of-sample {_fmt(out)}"
        )
        groups.append((f"fold {pick['fold']}", [in_sample, out], title))
    chart = _bar_chart(groups, [("in-sample", "#2962ff"), ("out-of-sample", "#ff6d00")], "fold-bar")
    return format_html(
        '<figure class="optimization-chart">{}<figcaption>{} per walk-forward fold: the in-sample pick '
        "(blue) and the same parameters on the fold's unseen test window (orange).</figcaption></figure>",
        chart,
        objective,
    )


def _bar_chart(
    groups: list[tuple[str, list[float | None], str]], series: list[tuple[str, str]], css_class: str
) -> SafeString:
    """Grouped vertical bars around a zero line; an undefined value is a grey stub."""
    values = [v for _, group, _ in groups for v in group if v is not None]
    high, low = max([0.0, *values]), min([0.0, *values])
    span = (high - low) or 1.0
    left, top, plot = 60, 10, FOLD_CHART_HEIGHT - 50
    bar = max(4, min(28, (HEATMAP_WIDTH - left) // max(1, len(groups) * (len(series) + 1))))
    zero = top + plot * high / span
    width = left + len(groups) * bar * (len(series) + 1)
    shapes = []
    for g, (label, group, title) in enumerate(groups):
        for s, value in enumerate(group):
            x = left + g * bar * (len(series) + 1) + s * bar
            if value is None:
                y, h, colour = zero - 2, 4, "#cfd8dc"
            else:
                y, h, colour = (
                    min(zero, zero - plot * value / span),
                    max(1, plot * abs(value) / span),
                    series[s][1],
                )
            shapes.append(
                format_html(
                    '<rect class="{}" data-series="{}" x="{}" y="{}" width="{}" height="{}" fill="{}">'
                    "<title>{}: {} {}</title></rect>",
                    css_class,
                    series[s][0],
                    x,
                    round(y, 1),
                    bar - 1,
                    round(h, 1),
                    colour,
                    title,
                    series[s][0],
                    _fmt(value),
                )
            )
        shapes.append(
            format_html(
                '<text x="{}" y="{}" text-anchor="middle">{}</text>',
                left + g * bar * (len(series) + 1) + bar * len(series) // 2,
                top + plot + 18,
                label,
            )
        )
    axis = format_html(
        '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#90a4ae"/>'
        '<text x="{}" y="{}" text-anchor="end">{}</text><text x="{}" y="{}" text-anchor="end">{}</text>',
        left - 4,
        width,
        round(zero, 1),
        round(zero, 1),
        left - 6,
        top + 10,
        _fmt(high),
        left - 6,
        top + plot,
        _fmt(low),
    )
    legend = format_html_join(
        "",
        '<rect x="{}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}">{}</text>',
        (
            (left + i * 120, FOLD_CHART_HEIGHT - 14, colour, left + i * 120 + 14, FOLD_CHART_HEIGHT - 5, name)
            for i, (name, colour) in enumerate(series)
        ),
    )
    return format_html(
        '<svg class="bar-chart" width="{}" height="{}" role="img">{}{}{}</svg>',
        max(width, left + 260),
        FOLD_CHART_HEIGHT,
        axis,
        SafeString("".join(shapes)),
        legend,
    )
