"""Parameter optimisation: a grid or random search, walk-forward, cut into chunks that every worker
shares, concluded once by the step that finds every chunk finished."""

from __future__ import annotations

import functools
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.core import ownership
from apps.core.jobs import Interrupted, job_cancel, job_claimed, job_fail
from apps.core.models import UNFINISHED, JobStatus
from apps.market import selectors as market_selectors
from apps.market.models import Instrument
from apps.strategies import documents, selectors
from apps.strategies.engine.backtest import CheckedBars
from apps.strategies.engine.optimize import (
    OBJECTIVES,
    Costs,
    Fold,
    OptimizeError,
    Summary,
    UnusedParameterError,
    Window,
    WindowStatistics,
    chunk,
    evaluate_chunk,
    grid,
    in_sample_only,
    random_sample,
    summarise,
    validate_space,
    walk_forward_folds,
)
from apps.strategies.engine.robustness import (
    OptimisationBlock,
    Overfitting,
    ReturnMoments,
    TrialStatistics,
    optimisation_block,
    window_statistics,
)
from apps.strategies.errors import StrategyInputError, raise_if_problems
from apps.strategies.models import (
    JobTrigger,
    OptimizationChunk,
    OptimizationMethod,
    OptimizationRun,
    Strategy,
    TrialSource,
)
from apps.strategies.selectors import CandleWindow
from apps.strategies.services.backtests import (
    DEFAULT_CAPITAL,
    DEFAULT_COMMISSION,
    EQUITY_POINTS,
    cost_problems,
    external_series,
    window_problems,
)
from apps.strategies.services.trials import TrialRecord, deflated_tests, trials_record

logger = logging.getLogger(__name__)

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
    owner: ownership.User | None = None,
) -> OptimizationRun:
    """Validate the search and store a PENDING run with its trials cut into chunks of
    ``STRATEGY_OPTIMIZE_CHUNK_TRIALS``, owned by ``owner`` (the requesting user, who must see the
    strategy; None: the system). Does not run them. The window defaults to all stored candles.
    Raises StrategyInputError (space, objective, folds, window, costs; a space over parameters no
    rule reads names each under ``space``), and ``ownership.NotVisible`` or ``TooManyJobs`` (the
    owner's cap), creating nothing."""
    ownership.see_check(obj=strategy, user=owner, what=f"strategy {strategy.strategy_id}")
    version = strategy.current_version
    problems = cost_problems(initial_capital, commission, slippage)
    if objective not in OBJECTIVES:
        problems["objective"] = [f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}"]
    trials: list[dict[str, Any]] = []
    try:
        validate_space(space, version.rules)
        trials = grid(space) if method == OptimizationMethod.GRID else random_sample(space, n_trials, seed)
    except UnusedParameterError as error:
        problems["space"] = {name: [problem] for name, problem in error.problems.items()}
    except OptimizeError as error:
        problems["space"] = [str(error)]
    span = market_selectors.candle_span(instrument=strategy.instrument, timeframe=strategy.timeframe)
    if span is None:
        problems["start_date"] = [
            f"no {strategy.timeframe} candles are stored for {strategy.instrument.symbol}"
        ]
    else:
        start, end = start or span[0], end or span[1]
        problems.update(window_problems(strategy, start, end))
    raise_if_problems(problems)
    bars = market_selectors.candle_count(
        instrument=strategy.instrument, timeframe=strategy.timeframe, start=start, end=end
    )
    try:
        layout = walk_forward_folds(bars, folds, anchored=anchored) if folds else in_sample_only(bars)
    except OptimizeError as error:
        raise StrategyInputError({"folds": [str(error)]}) from None
    chunks = chunk(trials, settings.STRATEGY_OPTIMIZE_CHUNK_TRIALS)
    with ownership.job_slot(owner=owner):
        run = OptimizationRun.objects.create(
            strategy=strategy,
            version=version,
            trigger=trigger,
            owner=owner,
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


def optimization_cancel(*, run: OptimizationRun, by: ownership.User | None) -> OptimizationRun:
    """Cancel a pending or running optimisation as ``by`` (see ``apps.core.jobs.job_cancel``); its
    chunks still pending fail with it, so no worker spends time on them."""
    with transaction.atomic():
        run = job_cancel(job=run, by=by, what=f"optimisation {run.pk}")
        OptimizationChunk.objects.filter(run=run, status=JobStatus.PENDING).update(
            status=JobStatus.FAILED, error=run.error, finished_at=run.finished_at
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
        run = OptimizationRun.objects.select_related("strategy__instrument", "version", "owner").get(
            pk=run_id
        )
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
        return _chunk_store(claimed, results, run)


def _evaluate_chunk(run: OptimizationRun, trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    inputs = _run_inputs(run.pk, run.created_at)
    costs = Costs(float(run.initial_capital), run.commission, run.slippage, run.strategy.timeframe)
    return evaluate_chunk(
        inputs.window.frame,
        run.version.rules,
        run.version.parameters,
        trials,
        stored_folds(run.fold_layout, inputs.window.first),
        costs=costs,
        external=inputs.external,
        whole_window=whole_window(inputs.window, costs, inputs.bars),
        bars=inputs.bars,
    )


@dataclass(frozen=True)
class _RunInputs:
    """What every chunk of a run reads: its candles, checked once, and its model series."""

    window: CandleWindow
    bars: CheckedBars
    external: dict[str, np.ndarray] | None


@functools.lru_cache(maxsize=2)
def _run_inputs(run_id: int, created_at: datetime) -> _RunInputs:
    """The candles (and model series) of an optimisation, read once per worker process: a worker that
    takes several chunks of a run reuses them. The creation time is in the key because ids can be reused."""
    run = OptimizationRun.objects.select_related("strategy__instrument", "version").get(pk=run_id)
    instrument, timeframe = run.strategy.instrument, run.strategy.timeframe
    series = market_selectors.series_get(instrument=instrument, timeframe=timeframe)
    written = series.version if series else None
    window = _stored_window(instrument, timeframe, run.warmup_bars, run.start, run.end, written)
    if window.bars != run.bars:
        raise ValueError(f"the window has {window.bars} candles now, {run.bars} when the run was created")
    external = external_series(strategy=run.strategy, rules=run.version.rules, frame=window.frame)
    return _RunInputs(window, CheckedBars.of(window.frame), external)


@functools.lru_cache(maxsize=2)
def _stored_window(
    instrument: Instrument,
    timeframe: str,
    warmup_bars: int,
    start: datetime,
    end: datetime,
    written: str | None,
) -> CandleWindow:
    """A window of candles, read once per worker process for as long as its series is not written
    again (``written``, the series' version): the searches that follow one another on a strategy's
    history, and the daily update's on each market, read their candles once. Nobody writes into a
    window's frame."""
    return selectors.candle_window(
        instrument=instrument,
        timeframe=timeframe,
        warmup_bars=warmup_bars,
        start=start,
        end=end,
    )


def stored_folds(layout: list[dict[str, Any]], offset: int) -> list[Fold]:
    """Stored folds (bars of the window) as folds of the frame, whose first ``offset`` bars are warm-up."""

    def shifted(window: dict[str, int] | None) -> Window | None:
        return None if window is None else Window(window["start"] + offset, window["stop"] + offset)

    return [Fold(fold["index"], shifted(fold["train"]), shifted(fold["test"])) for fold in layout]


def _chunk_store(chunk: OptimizationChunk, results: list[dict[str, Any]], run: OptimizationRun) -> bool:
    """Store a chunk's results and count it on its run; its trials go into the strategy's family
    with them, in the same transaction: every configuration evaluated counts, whether or not the
    search concludes, and the conclusion has only the best trial left to deflate."""
    with transaction.atomic():
        # The run row's lock orders the chunks' counts, so exactly one of them sees the last one.
        runs = OptimizationRun.objects.select_for_update().only("chunks_done", "chunks_total")
        locked = runs.get(pk=run.pk)
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
        params = {int(result["index"]): result["params"] for result in results}
        done = locked.chunks_done + 1
        progress = done / locked.chunks_total
        OptimizationRun.objects.filter(pk=run.pk).update(chunks_done=done, progress=progress)
        trials_record(
            family=selectors.strategy_family(strategy=run.strategy),
            source=TrialSource.OPTIMIZATION,
            records=[
                _trial_record(run, index, params[index], statistics.moments)
                for index, statistics in _kept_statistics(results).items()
            ],
            strategy=run.strategy,
            owner=run.owner,
        )
    return _needs_outcome(run.pk)


def _kept_statistics(results: Sequence[Mapping[str, Any]]) -> dict[int, TrialStatistics]:
    """By trial index, the whole-window statistics the chunks kept with their successful results
    (:func:`whole_window`); results stored by an older version have none."""
    return {
        int(result["index"]): TrialStatistics.from_dict(result["window"])
        for result in results
        if "folds" in result and "window" in result
    }


def _trial_record(
    run: OptimizationRun, index: int, params: Mapping[str, Any], moments: ReturnMoments
) -> TrialRecord:
    """A trial of ``run`` as its family's ledger keys it (once per run and trial index)."""
    return TrialRecord(f"optimization:{run.pk}:{index}", {**run.version.parameters, **params}, moments)


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
    run = OptimizationRun.objects.select_related("strategy", "version").get(pk=run_id)
    results = [result for chunk in run.chunks.order_by("index") for result in chunk.results]
    summary = summarise(results, run.objective)
    fields = summary_fields(results, summary)
    fields["robustness"] = _run_robustness(run, results, summary)
    OptimizationRun.objects.filter(pk=run_id, status=JobStatus.RUNNING).update(
        status=JobStatus.COMPLETED, progress=1.0, error="", finished_at=timezone.now(), **fields
    )
    return OptimizationRun.objects.get(pk=run_id)


def _run_robustness(
    run: OptimizationRun, results: Sequence[Mapping[str, Any]], summary: Summary
) -> dict[str, Any]:
    """Judge the search (PBO, the best trial deflated by the family, the stitched out-of-sample
    curve), recording in the family the trials its chunks could not (results of an older version,
    without their statistics); a failure here is reported in the block and does not fail the search
    it judges."""
    try:
        inputs = _run_inputs(run.pk, run.created_at)
        search = search_robustness(
            window=inputs.window,
            rules=run.version.rules,
            base_parameters=run.version.parameters,
            layout=run.fold_layout,
            summary=summary,
            results=results,
            costs=Costs(float(run.initial_capital), run.commission, run.slippage, run.strategy.timeframe),
            external=inputs.external,
            bars=inputs.bars,
        )
        recorded = _kept_statistics(results).keys()  # by the chunks that kept them
        return search_record(run=run, search=search, recorded=recorded).to_dict()
    except Interrupted:  # a time limit or a lost database ends the job, not just its block
        raise
    except Exception as error:  # reported with the run; the search itself completed
        logger.exception("The robustness of optimisation %s failed", run.pk)
        return {"error": f"{type(error).__name__}: {error}"}


@dataclass(frozen=True)
class SearchRobustness:
    """A search's robustness block (its best trial deflated by this search alone until
    :func:`search_record` deflates it by the family) and every successful trial's return moments."""

    block: OptimisationBlock
    moments: dict[int, ReturnMoments]
    params: dict[int, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        data = self.block.to_dict(equity_points=EQUITY_POINTS)
        data["deflated_sharpe"] = None if self.block.best is None else data["best"]["deflated_sharpe"]
        data["pbo"] = None if self.block.overfitting is None else _pbo_brief(self.block.overfitting)
        return data

    @property
    def pbo(self) -> float | None:
        return None if self.block.overfitting is None else self.block.overfitting.pbo


def search_robustness(
    *,
    window: CandleWindow,
    rules: list[dict[str, Any]],
    base_parameters: dict[str, Any],
    layout: list[dict[str, Any]],
    summary: Summary,
    results: Sequence[Mapping[str, Any]],
    costs: Costs,
    external: dict[str, np.ndarray] | None,
    bars: CheckedBars | None = None,
) -> SearchRobustness:
    """The PBO by CSCV of the trials' bar returns over the whole window (warm-up excluded), the best
    trial's Sharpe tests and the stitched walk-forward curve. Pure computing: writes nothing.

    Each trial's return moments and CSCV block sums come with its result (the chunk that backtested
    it computed them: :func:`whole_window`), so concluding a search backtests only the folds' best
    trials again, never every trial, and holds no returns matrix. A result stored without them (by a
    version before this one) has them computed here, one trial at a time. ``bars``: the window's
    frame checked, where the caller keeps it."""
    statistics = _kept_statistics(results)
    missing = [
        {"index": result["index"], "params": result["params"]}
        for result in results
        if "folds" in result and "window" not in result
    ]
    if missing:
        for result in evaluate_chunk(
            window.frame,
            rules,
            base_parameters,
            missing,
            [],
            costs=costs,
            external=external,
            whole_window=whole_window(window, costs, bars),
            bars=bars,
        ):
            if "window" in result:
                statistics[int(result["index"])] = TrialStatistics.from_dict(result["window"])
    block = optimisation_block(
        window.frame,
        rules,
        base_parameters,
        stored_folds(layout, window.first),
        summary,
        statistics,
        costs=costs,
        external=external,
        bars=bars,
    )
    params = {int(r["index"]): dict(r["params"]) for r in results if int(r["index"]) in statistics}
    return SearchRobustness(block, {index: item.moments for index, item in statistics.items()}, params)


def whole_window(window: CandleWindow, costs: Costs, bars: CheckedBars | None = None) -> WindowStatistics:
    """What every trial's chunk keeps of it for the search's robustness: its return moments and CSCV
    block sums over the window without its warm-up (``bars``: its frame checked, where kept)."""
    frame = window.frame if bars is None else bars
    return window_statistics(frame, window=Window(window.first, len(window.frame)), costs=costs)


def search_record(
    *, run: OptimizationRun, search: SearchRobustness, recorded: Collection[int] = ()
) -> SearchRobustness:
    """Record the run's trials in its strategy's family (once: keyed by run and trial), but those in
    ``recorded`` (the chunks that evaluated them did), and deflate its best trial by every trial the
    family holds now."""
    family = selectors.strategy_family(strategy=run.strategy)
    trials_record(
        family=family,
        source=TrialSource.OPTIMIZATION,
        records=[
            _trial_record(run, index, search.params[index], moments)
            for index, moments in search.moments.items()
            if index not in recorded
        ],
        strategy=run.strategy,
        owner=run.owner,
    )
    best = search.block.best_index
    if best is None or best not in search.moments:
        return search
    tests = deflated_tests(family=family, moments=search.moments[best])
    return replace(search, block=replace(search.block, best=tests))


def _pbo_brief(overfitting: Overfitting) -> dict[str, Any]:
    """The PBO without its per-combination arrays (12,870 of each with 16 partitions): the figures
    and the histogram of the logits."""
    data = overfitting.to_dict()
    del data["logits"], data["degradation"]
    return data


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
