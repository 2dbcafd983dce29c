"""Writes of the strategies app: strategies and versions, backtests, optimisations, the daily update.

Services validate before they write: bad input raises :class:`StrategyInputError` naming each field,
and nothing is stored. Jobs (backtests, optimisation chunks, the daily update) claim their row first,
so a redelivered task does nothing twice. Callers enqueue the work; services never do.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.core.jobs import Interrupted, job_claimed, job_complete, job_fail, job_progress
from apps.core.models import UNFINISHED, JobStatus
from apps.market import selectors as market_selectors
from apps.market.models import Instrument
from apps.strategies import documents, selectors
from apps.strategies.engine import BacktestReport, EquityCurve, RiskSettings, backtest_signals, signals
from apps.strategies.engine.optimize import (
    OBJECTIVES,
    Costs,
    Fold,
    OptimizeError,
    Summary,
    Window,
    chunk,
    evaluate_chunk,
    grid,
    in_sample_only,
    random_sample,
    summarise,
    validate_space,
    walk_forward_folds,
)
from apps.strategies.models import (
    Backtest,
    DecisionKind,
    JobTrigger,
    OptimizationChunk,
    OptimizationMethod,
    OptimizationRun,
    Strategy,
    StrategyDecision,
    StrategySource,
    StrategyStatus,
    StrategyVersion,
)
from apps.strategies.selectors import CandleWindow
from apps.training import selectors as training

logger = logging.getLogger(__name__)

Progress = Callable[[float], None]

# Leases outlast the backtests queue's hard time limit (1800 s): a RUNNING row older than this lost
# its worker and may be claimed again.
JOB_LEASE_SECONDS = 1900
EQUITY_POINTS = 500
MIN_WINDOW_BARS = 2
DEFAULT_CAPITAL = Decimal("10000")
DEFAULT_COMMISSION = 0.001
ID_ATTEMPTS = 60


class StrategyInputError(ValueError):
    """Bad input to a strategies service; ``fields`` maps API field names to their problems.
    Nothing was written."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields
        super().__init__(_first_problem(fields))


def _first_problem(fields: Mapping[str, Any]) -> str:
    name, problem = next(iter(fields.items()))
    if isinstance(problem, Mapping):
        return f"{name}: {_first_problem(problem)}"
    return f"{name}: {problem[0] if isinstance(problem, list) else problem}"


def raise_if_problems(problems: dict[str, Any]) -> None:
    if problems:
        raise StrategyInputError(problems)


# --- strategies and versions ---------------------------------------------------------------------


def strategy_id_for(*, name: str, symbol: str, moment: datetime) -> str:
    """``strategy_<Name_With_Underscores>_<SYMBOL>_<YYYYmmddHHMMSS>`` (UTC)."""
    words = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") or "Strategy"
    return f"strategy_{words}_{symbol}_{moment.astimezone(UTC):%Y%m%d%H%M%S}"


def strategy_create(
    *,
    name: str,
    type: str,
    instrument: Instrument,
    timeframe: str,
    parameters: dict[str, Any],
    indicators: list[str],
    rules: list[dict[str, Any]],
    status: str = StrategyStatus.DRAFT,
    source: str = StrategySource.USER,
) -> Strategy:
    """Validate the document and store the strategy with its first version.

    The id carries the creation second; a second strategy of the same name and symbol within that
    second takes the next free second. Raises StrategyInputError for an invalid document or a market
    without candles in ``timeframe``.
    """
    if problem := selectors.series_problem(instrument=instrument, timeframe=timeframe):
        raise StrategyInputError({"timeframe": [problem]})
    raise_if_problems(documents.document_problems(parameters=parameters, indicators=indicators, rules=rules))
    with transaction.atomic():
        strategy = _insert_strategy(
            name=name, type=type, instrument=instrument, timeframe=timeframe, status=status, source=source
        )
        strategy.current_version = StrategyVersion.objects.create(
            strategy=strategy,
            number=1,
            parameters=parameters,
            indicators=indicators,
            rules=rules,
            source=source,
            reason="created",
        )
        strategy.save(update_fields=["current_version"])
    return strategy


def _insert_strategy(**fields: Any) -> Strategy:
    moment = timezone.now()
    for offset in range(ID_ATTEMPTS):
        strategy_id = strategy_id_for(
            name=fields["name"], symbol=fields["instrument"].symbol, moment=moment + timedelta(seconds=offset)
        )
        try:
            with transaction.atomic():
                return Strategy.objects.create(strategy_id=strategy_id, **fields)
        except IntegrityError:
            if not Strategy.objects.filter(strategy_id=strategy_id).exists():
                raise
    raise StrategyInputError({"name": [f"too many strategies named {fields['name']!r} created this minute"]})


def strategy_update(
    *,
    strategy: Strategy,
    name: str | None = None,
    type: str | None = None,
    status: str | None = None,
    parameters: dict[str, Any] | None = None,
    indicators: list[str] | None = None,
    rules: list[dict[str, Any]] | None = None,
    reason: str = "",
) -> Strategy:
    """Edit a strategy. Changed parameters, indicators or rules become a new version (and an
    ``edited`` decision); a status change is recorded as a decision. Raises StrategyInputError for an
    invalid document, writing nothing."""
    with transaction.atomic():
        strategy = Strategy.objects.select_for_update().get(pk=strategy.pk)
        current = strategy.current_version
        edited = {
            "parameters": current.parameters if parameters is None else parameters,
            "indicators": current.indicators if indicators is None else indicators,
            "rules": current.rules if rules is None else rules,
        }
        if edited != {
            "parameters": current.parameters,
            "indicators": current.indicators,
            "rules": current.rules,
        }:
            raise_if_problems(documents.document_problems(**edited))
            version = version_create(strategy, edited, StrategySource.USER, reason or "edited")
            decision_record(
                strategy,
                DecisionKind.EDITED,
                f"version {version.number} replaces version {current.number}"
                + (f": {reason}" if reason else ""),
                {"version": version.number, "previous_version": current.number},
            )
        strategy.name = strategy.name if name is None else name
        strategy.type = strategy.type if type is None else type
        if status is not None and status != strategy.status:
            strategy_status_set(strategy, status, reason or f"set to {status} by a user")
        strategy.save()
    return Strategy.objects.select_related("instrument", "current_version").get(pk=strategy.pk)


def strategy_delete(*, strategy: Strategy) -> bool:
    """Delete a draft nothing was recorded about and return True; retire any other strategy instead,
    keeping its versions, backtests and decisions, and return False."""
    if strategy.status == StrategyStatus.DRAFT and not selectors.has_history(strategy=strategy):
        strategy.delete()
        return True
    if strategy.status != StrategyStatus.RETIRED:
        strategy_update(
            strategy=strategy, status=StrategyStatus.RETIRED, reason="retired on delete; history kept"
        )
    return False


def version_create(
    strategy: Strategy, document: Mapping[str, Any], source: str, reason: str
) -> StrategyVersion:
    """A new current version; the caller holds the strategy row lock and saves the strategy."""
    number = (strategy.versions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
    version = StrategyVersion.objects.create(
        strategy=strategy, number=number, source=source, reason=reason[:500], **document
    )
    strategy.current_version = version
    return version


_STATUS_DECISIONS = {
    StrategyStatus.ACTIVE: DecisionKind.ACTIVATED,
    StrategyStatus.PAUSED: DecisionKind.PAUSED,
    StrategyStatus.RETIRED: DecisionKind.RETIRED,
    StrategyStatus.DRAFT: DecisionKind.EDITED,
}


def strategy_status_set(
    strategy: Strategy, status: str, reason: str, numbers: dict | None = None, **links: Any
) -> None:
    """Change the status (the caller saves the strategy) and record why."""
    previous = strategy.status
    strategy.status = status
    decision_record(
        strategy,
        _STATUS_DECISIONS[status],
        reason,
        {"from": previous, "to": status, **(numbers or {})},
        **links,
    )


def decision_record(
    strategy: Strategy, kind: str, reason: str, numbers: dict | None = None, **links: Any
) -> StrategyDecision:
    return StrategyDecision.objects.create(
        strategy=strategy, kind=kind, reason=reason, numbers=numbers or {}, **links
    )


# --- backtests -----------------------------------------------------------------------------------


def _cost_problems(initial_capital: Decimal, commission: float, slippage: float) -> dict[str, list[str]]:
    problems = {}
    if not initial_capital > 0:
        problems["initial_capital"] = [f"must be positive, got {initial_capital}"]
    for name, value in (("commission", commission), ("slippage", slippage)):
        if not 0 <= value < 1:
            problems[name] = [f"must be a fraction from 0 to below 1 (0.001 = 0.1%), got {value}"]
    return problems


def _window_problems(strategy: Strategy, start: datetime, end: datetime) -> dict[str, list[str]]:
    if start >= end:
        return {"end_date": [f"must be after start_date ({start:%Y-%m-%d %H:%M}), got {end:%Y-%m-%d %H:%M}"]}
    instrument, timeframe = strategy.instrument, strategy.timeframe
    bars = market_selectors.candle_count(instrument=instrument, timeframe=timeframe, start=start, end=end)
    if bars >= MIN_WINDOW_BARS:
        return {}
    span = market_selectors.candle_span(instrument=instrument, timeframe=timeframe)
    stored = f"{span[0]:%Y-%m-%d %H:%M} .. {span[1]:%Y-%m-%d %H:%M} UTC" if span else "none"
    return {
        "start_date": [
            f"{bars} {timeframe} candle(s) of {instrument.symbol} from {start:%Y-%m-%d %H:%M} to "
            f"{end:%Y-%m-%d %H:%M} UTC; at least {MIN_WINDOW_BARS} are needed. Stored: {stored}"
        ]
    }


def backtest_create(
    *,
    strategy: Strategy,
    start: datetime,
    end: datetime,
    initial_capital: Decimal = DEFAULT_CAPITAL,
    commission: float = DEFAULT_COMMISSION,
    slippage: float = 0.0,
    trigger: str = JobTrigger.API,
) -> Backtest:
    """Validate the window and costs and store a PENDING backtest of the strategy's current version.
    Does not run it. Raises StrategyInputError (a window without candles, end before start)."""
    raise_if_problems(
        {
            **_cost_problems(initial_capital, commission, slippage),
            **_window_problems(strategy, start, end),
        }
    )
    return Backtest.objects.create(
        strategy=strategy,
        version=strategy.current_version,
        trigger=trigger,
        start=start,
        end=end,
        initial_capital=initial_capital,
        commission=commission,
        slippage=slippage,
    )


def backtest_run(*, backtest_id: int, progress: Progress | None = None) -> Backtest | None:
    """Claim the backtest, run it on the stored candles and store its metrics, trades, equity curve
    and the buy-and-hold benchmark.

    Returns None, changing nothing, when the backtest was claimed or finished before (a redelivered
    message). Any failure is stored on the row (FAILED, with the message).
    """
    with job_claimed(model=Backtest, pk=backtest_id) as backtest:
        if backtest is None:
            return None
        step = _progress_steps(backtest, progress)
        try:
            strategy, version = backtest.strategy, backtest.version
            window = selectors.candle_window(
                instrument=strategy.instrument,
                timeframe=strategy.timeframe,
                warmup_bars=documents.warmup_bars(version.rules, [version.parameters]),
                start=backtest.start,
                end=backtest.end,
            )
            step(0.3)
            report = strategy_report(
                strategy=strategy,
                version=version,
                window=window,
                initial_capital=float(backtest.initial_capital),
                commission=backtest.commission,
                slippage=backtest.slippage,
            )
            step(0.8)
            fields = report_fields(report, window)
        except Interrupted:
            raise
        except Exception as error:  # stored for the user; the row must not stay RUNNING
            logger.exception("Backtest %s failed", backtest_id)
            return job_fail(job=backtest, error=f"{type(error).__name__}: {error}")
        return job_complete(job=backtest, **fields)


def _progress_steps(job: Backtest, callback: Progress | None) -> Progress:
    def step(fraction: float) -> None:
        job_progress(job=job, progress=fraction)
        if callback is not None:
            callback(fraction)

    return step


def strategy_report(
    *,
    strategy: Strategy,
    version: StrategyVersion,
    window: CandleWindow,
    initial_capital: float,
    commission: float,
    slippage: float,
) -> BacktestReport:
    """Backtest a version on a window: signals are computed on every bar, warm-up included (so
    indicators are settled on the window's first bar); trades happen inside the window only."""
    external = external_series(strategy=strategy, rules=version.rules, frame=window.frame)
    codes = signals(version.rules, window.frame, version.parameters, external)
    timeframe = strategy.timeframe
    return backtest_signals(
        window.window,
        codes[window.first :],
        RiskSettings.from_parameters(version.parameters),
        initial_capital=initial_capital,
        commission=commission,
        slippage=slippage,
        timeframe=timeframe,
    )


def external_series(
    *, strategy: Strategy, rules: list[dict[str, Any]], frame: pd.DataFrame
) -> dict[str, np.ndarray] | None:
    """The model series (``ML_PROBA``, ``ML_RETURN``) the rules read, from walk-forward models of the
    training app that never saw the bar they predict; None when the rules read none."""
    if not documents.external_series(rules):
        return None
    return training.ml_external_series(
        instrument=strategy.instrument, timeframe=strategy.timeframe, frame=frame
    )


def report_fields(report: BacktestReport, window: CandleWindow) -> dict[str, Any]:
    """A report as Backtest columns: metrics, trades, the equity curve downsampled to EQUITY_POINTS
    and the buy-and-hold benchmark over the same bars."""
    data = report.to_dict(equity_points=EQUITY_POINTS)
    trades, curve = data.pop("trades"), data.pop("equity_curve")
    close = window.window["close"].to_numpy()
    units = np.full(len(close), report.initial_capital / close[0])
    hold = EquityCurve(report.equity_curve.times, units * close, np.zeros(len(close)), units)
    return {
        "bars": report.bars,
        "metrics": data,
        "trades": trades,
        "equity_curve": curve,
        "benchmark": {
            "return_pct": report.buy_and_hold_return_pct,
            "cagr_pct": report.buy_and_hold_cagr_pct,
            "equity_curve": hold.downsample(EQUITY_POINTS).to_dict(),
        },
    }


# --- optimisation --------------------------------------------------------------------------------

_TRIAL_METRICS = ("total_return_pct", "sharpe_ratio", "max_drawdown_pct", "num_trades")


def optimization_create(
    *,
    strategy: Strategy,
    space: dict[str, Any],
    method: str = OptimizationMethod.GRID,
    objective: str = "sharpe_ratio",
    folds: int = 3,
    anchored: bool = False,
    n_trials: int = 50,
    seed: int = 0,
    start: datetime | None = None,
    end: datetime | None = None,
    initial_capital: Decimal = DEFAULT_CAPITAL,
    commission: float = DEFAULT_COMMISSION,
    slippage: float = 0.0,
    trigger: str = JobTrigger.API,
) -> OptimizationRun:
    """Validate the search and store a PENDING run with its trials cut into chunks of
    ``STRATEGY_OPTIMIZE_CHUNK_TRIALS``. Does not run them. The window defaults to all stored candles.
    Raises StrategyInputError (space, objective, folds, window, costs)."""
    version = strategy.current_version
    problems = _cost_problems(initial_capital, commission, slippage)
    if objective not in OBJECTIVES:
        problems["objective"] = [f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}"]
    trials: list[dict[str, Any]] = []
    try:
        validate_space(space, version.rules, version.parameters)
        trials = grid(space) if method == OptimizationMethod.GRID else random_sample(space, n_trials, seed)
    except OptimizeError as error:
        problems["space"] = [str(error)]
    span = market_selectors.candle_span(instrument=strategy.instrument, timeframe=strategy.timeframe)
    if span is None:
        problems["start_date"] = [
            f"no {strategy.timeframe} candles are stored for {strategy.instrument.symbol}"
        ]
    else:
        start, end = start or span[0], end or span[1]
        problems.update(_window_problems(strategy, start, end))
    raise_if_problems(problems)
    bars = market_selectors.candle_count(
        instrument=strategy.instrument, timeframe=strategy.timeframe, start=start, end=end
    )
    try:
        layout = walk_forward_folds(bars, folds, anchored=anchored) if folds else in_sample_only(bars)
    except OptimizeError as error:
        raise StrategyInputError({"folds": [str(error)]}) from None
    chunks = chunk(trials, settings.STRATEGY_OPTIMIZE_CHUNK_TRIALS)
    with transaction.atomic():
        run = OptimizationRun.objects.create(
            strategy=strategy,
            version=version,
            trigger=trigger,
            start=start,
            end=end,
            bars=bars,
            warmup_bars=documents.warmup_bars(version.rules, [{**version.parameters, **t} for t in trials]),
            initial_capital=initial_capital,
            commission=commission,
            slippage=slippage,
            space=space,
            method=method,
            n_trials=len(trials),
            seed=seed,
            objective=objective,
            folds=folds,
            anchored=anchored,
            fold_layout=[fold.to_dict() for fold in layout],
            chunks_total=len(chunks),
        )
        OptimizationChunk.objects.bulk_create(
            OptimizationChunk(run=run, index=index, trials=trials) for index, trials in enumerate(chunks)
        )
    return run


def optimization_chunk_run(*, run_id: int, chunk_index: int) -> bool:
    """Claim one chunk of a run, evaluate its trials on every fold and store the results; the run
    counts the chunk once, however often its message is delivered.

    Returns True when this call found every chunk finished and the run still without its outcome:
    the caller then runs or enqueues :func:`optimization_finish` (which summarises once).
    """
    chunk_pk = (
        OptimizationChunk.objects.filter(run_id=run_id, index=chunk_index)
        .values_list("pk", flat=True)
        .first()
    )
    if chunk_pk is None:
        return False
    with job_claimed(model=OptimizationChunk, pk=chunk_pk) as claimed:
        if claimed is None:
            return _needs_outcome(run_id)
        run = OptimizationRun.objects.select_related("strategy__instrument", "version").get(pk=run_id)
        if run.is_finished:
            job_fail(job=claimed, error=f"the optimisation had already {run.status}")
            return False
        OptimizationRun.objects.filter(pk=run_id, status=JobStatus.PENDING).update(
            status=JobStatus.RUNNING, started_at=timezone.now()
        )
        try:
            results = _evaluate_chunk(run, claimed.trials)
        except Interrupted:
            raise
        except Exception as error:  # stored for the user; the run fails with it when it is summarised
            logger.exception("Chunk %s of optimisation %s failed", chunk_index, run_id)
            job_fail(job=claimed, error=f"chunk {chunk_index}: {type(error).__name__}: {error}")
            return _needs_outcome(run_id)
        return _chunk_store(claimed, results)


def _evaluate_chunk(run: OptimizationRun, trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    window, external = _run_inputs(run.pk, run.created_at)
    return evaluate_chunk(
        window.frame,
        run.version.rules,
        run.version.parameters,
        trials,
        stored_folds(run.fold_layout, window.first),
        costs=Costs(float(run.initial_capital), run.commission, run.slippage, run.strategy.timeframe),
        external=external,
    )


@functools.lru_cache(maxsize=2)
def _run_inputs(run_id: int, created_at: datetime) -> tuple[CandleWindow, dict[str, np.ndarray] | None]:
    """The candles (and model series) of an optimisation, read once per worker process: a worker that
    takes several chunks of a run reuses them. The creation time is in the key because ids can be reused."""
    run = OptimizationRun.objects.select_related("strategy__instrument", "version").get(pk=run_id)
    window = selectors.candle_window(
        instrument=run.strategy.instrument,
        timeframe=run.strategy.timeframe,
        warmup_bars=run.warmup_bars,
        start=run.start,
        end=run.end,
    )
    if window.bars != run.bars:
        raise ValueError(f"the window has {window.bars} candles now, {run.bars} when the run was created")
    return window, external_series(strategy=run.strategy, rules=run.version.rules, frame=window.frame)


def stored_folds(layout: list[dict[str, Any]], offset: int) -> list[Fold]:
    """Stored folds (bars of the window) as folds of the frame, whose first ``offset`` bars are warm-up."""

    def shifted(window: dict[str, int] | None) -> Window | None:
        return None if window is None else Window(window["start"] + offset, window["stop"] + offset)

    return [Fold(fold["index"], shifted(fold["train"]), shifted(fold["test"])) for fold in layout]


def _chunk_store(chunk: OptimizationChunk, results: list[dict[str, Any]]) -> bool:
    with transaction.atomic():
        # The run row's lock orders the chunks' counts, so exactly one of them sees the last one.
        run = OptimizationRun.objects.select_for_update().get(pk=chunk.run_id)
        stored = OptimizationChunk.objects.filter(
            pk=chunk.pk, status=JobStatus.RUNNING, attempts=chunk.attempts
        ).update(
            status=JobStatus.COMPLETED,
            results=results,
            progress=1.0,
            error="",
            finished_at=timezone.now(),
            lease_expires_at=None,
        )
        if not stored:  # a later claim of this chunk took it over; that one counts it
            return False
        chunk.status = JobStatus.COMPLETED
        done = run.chunks_done + 1
        OptimizationRun.objects.filter(pk=run.pk).update(chunks_done=done, progress=done / run.chunks_total)
    return _needs_outcome(run.pk)


def _needs_outcome(run_id: int) -> bool:
    """Whether the run is unfinished while none of its chunks is: its summary (or failure) is due."""
    unfinished = OptimizationChunk.objects.filter(run_id=run_id, status__in=UNFINISHED)
    return (
        OptimizationRun.objects.filter(pk=run_id, status__in=UNFINISHED).exists() and not unfinished.exists()
    )


def optimization_finish(*, run_id: int) -> OptimizationRun | None:
    """Conclude a run none of whose chunks is unfinished: FAILED naming the chunks that failed, or
    summarised (every trial, the best parameters, in- and out-of-sample metrics per fold and the
    overfitting warning).

    The step claims the run with a conditional UPDATE, so it concludes once; None when there is
    nothing to do (chunks outstanding, already concluded or being concluded).
    """
    now = timezone.now()
    if OptimizationChunk.objects.filter(run_id=run_id, status__in=UNFINISHED).exists():
        return None
    failed = list(
        OptimizationChunk.objects.filter(run_id=run_id, status=JobStatus.FAILED).values_list(
            "error", flat=True
        )
    )
    if failed:
        OptimizationRun.objects.filter(pk=run_id, status__in=UNFINISHED).update(
            status=JobStatus.FAILED, error="; ".join(failed)[:4000], finished_at=now
        )
        return OptimizationRun.objects.get(pk=run_id)
    claimed = OptimizationRun.objects.filter(
        Q(finish_claimed_at__isnull=True)
        | Q(finish_claimed_at__lt=now - timedelta(seconds=settings.JOB_LEASE_SECONDS)),
        pk=run_id,
        status=JobStatus.RUNNING,
        chunks_done=F("chunks_total"),
    ).update(finish_claimed_at=now)
    if claimed != 1:
        return None
    run = OptimizationRun.objects.get(pk=run_id)
    results = [result for chunk in run.chunks.order_by("index") for result in chunk.results]
    fields = summary_fields(results, summarise(results, run.objective))
    OptimizationRun.objects.filter(pk=run_id, status=JobStatus.RUNNING).update(
        status=JobStatus.COMPLETED, progress=1.0, error="", finished_at=timezone.now(), **fields
    )
    return OptimizationRun.objects.get(pk=run_id)


def summary_fields(results: Sequence[Mapping[str, Any]], summary: Summary) -> dict[str, Any]:
    """A summary as OptimizationRun columns: every trial (failed ones with their error) with its
    objectives and a few metrics per fold; the per-fold picks keep all their metrics."""
    objective = summary.objective
    keys = (objective, *(key for key in _TRIAL_METRICS if key != objective))

    def brief(metrics: Mapping[str, Any] | None) -> dict[str, Any] | None:
        return None if metrics is None else {key: metrics[key] for key in keys}

    trials = [
        {
            **{
                key: trial[key]
                for key in ("index", "params", "in_sample_objective", "out_of_sample_objective")
            },
            "folds": [
                {
                    "fold": f["fold"],
                    "in_sample": brief(f["in_sample"]),
                    "out_of_sample": brief(f["out_of_sample"]),
                }
                for f in trial["folds"]
            ],
        }
        for trial in summary.trials
    ]
    trials += [
        {"index": r["index"], "params": r["params"], "error": r["error"]} for r in results if "error" in r
    ]
    overview = {key: value for key, value in summary.to_dict().items() if key != "trials"}
    return {
        "trials": sorted(trials, key=lambda t: t["index"]),
        "best_params": summary.best_params,
        "summary": overview,
    }


# Metrics a strategy's evaluation (the daily update, generation's holdout) records and compares.
EVALUATION_METRICS = (
    "total_return_pct",
    "buy_and_hold_return_pct",
    "sharpe_ratio",
    "max_drawdown_pct",
    "num_trades",
    "win_rate_pct",
    "start",
    "end",
    "bars",
)
