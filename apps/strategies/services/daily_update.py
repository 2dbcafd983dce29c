"""The daily strategy update (02:00 UTC): evaluate, retire or re-optimise every active strategy, then
ask for new candidates where a market needs them.

The update fans out so that no task runs long, however many strategies there are. The run row
(one per UTC date) is a parent; :func:`daily_update_advance` moves it through its phases:

1. PENDING: one :class:`StrategyUpdateItem` job per active strategy is created (phase
   ``strategies``); each runs on the ``backtests`` queue (:func:`daily_update_strategy`);
2. when no item is unfinished: one generation run (the ``llm`` queue) per market with fewer than
   ``STRATEGY_MIN_ACTIVE`` active strategies or a retirement today (phase ``generation``);
3. when no generation run is unfinished: the run completes with the summary of all of them.

Every step is idempotent and claim-checked; the child that finishes last asks for the advance,
and the job sweeper asks again if that message is lost, so the run always ends.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core import clock
from apps.core.jobs import Interrupted, job_claimed, job_complete
from apps.core.models import UNFINISHED, JobStatus
from apps.market import selectors as market_selectors
from apps.strategies import documents, selectors
from apps.strategies.engine.optimize import (
    Costs,
    Fold,
    OptimizeError,
    Summary,
    chunk,
    evaluate_chunk,
    grid,
    summarise,
    validate_space,
    walk_forward_folds,
)
from apps.strategies.errors import StrategyInputError, raise_if_problems
from apps.strategies.models import (
    Backtest,
    DecisionKind,
    GenerationRun,
    JobTrigger,
    OptimizationMethod,
    OptimizationRun,
    Strategy,
    StrategySource,
    StrategyStatus,
    StrategyUpdateItem,
    StrategyUpdateRun,
    StrategyVersion,
    UpdatePhase,
)
from apps.strategies.selectors import CandleWindow
from apps.strategies.services import generation
from apps.strategies.services.backtests import (
    DEFAULT_CAPITAL,
    DEFAULT_COMMISSION,
    EVALUATION_METRICS,
    external_series,
    report_fields,
    strategy_report,
)
from apps.strategies.services.optimizations import (
    SearchRobustness,
    search_record,
    search_robustness,
    stored_folds,
    summary_fields,
    whole_window,
)
from apps.strategies.services.strategies import (
    DAILY_UPDATE,
    decision_record,
    strategy_status_set,
    version_create,
)
from apps.strategies.services.trials import deflation_verdict, gate_numbers

logger = logging.getLogger(__name__)

MIN_UPDATE_BARS = 100


@dataclass(frozen=True)
class RetireLimits:
    """A strategy whose recent backtest breaks any of these is retired (settings STRATEGY_RETIRE_*)."""

    max_drawdown_pct: float
    min_sharpe: float
    max_underperformance_pct: float

    @classmethod
    def from_settings(cls) -> RetireLimits:
        return cls(
            settings.STRATEGY_RETIRE_MAX_DRAWDOWN_PCT,
            settings.STRATEGY_RETIRE_MIN_SHARPE,
            settings.STRATEGY_RETIRE_MAX_UNDERPERFORMANCE_PCT,
        )

    def breaches(self, metrics: Mapping[str, Any]) -> list[str]:
        """Each limit the metrics break, in words with the numbers. No Sharpe (no trades) breaks nothing."""
        found = []
        drawdown = metrics["max_drawdown_pct"]
        if drawdown > self.max_drawdown_pct:
            found.append(f"max drawdown {drawdown:.1f}% exceeds the {self.max_drawdown_pct:g}% limit")
        sharpe = metrics["sharpe_ratio"]
        if sharpe is not None and sharpe < self.min_sharpe:
            found.append(f"Sharpe ratio {sharpe:.2f} is below the minimum of {self.min_sharpe:g}")
        total, hold = metrics["total_return_pct"], metrics["buy_and_hold_return_pct"]
        if hold - total > self.max_underperformance_pct:
            found.append(
                f"return {total:+.1f}% trails buy-and-hold ({hold:+.1f}%) by {hold - total:.1f} points, "
                f"more than the {self.max_underperformance_pct:g}-point limit"
            )
        return found


@dataclass(frozen=True)
class UpdateStep:
    """What an advance left for the caller to send: new item jobs or new generation runs."""

    run: StrategyUpdateRun
    items: list[StrategyUpdateItem] = field(default_factory=list)
    generations: list[GenerationRun] = field(default_factory=list)


def daily_update_request(*, now: datetime | None = None) -> tuple[StrategyUpdateRun, bool]:
    """The run row of ``now``'s UTC date, and whether this call created it. Does not start it."""
    now = now or clock.now()
    day = now.astimezone(UTC).date()
    try:
        with transaction.atomic():
            return StrategyUpdateRun.objects.get_or_create(date=day, defaults={"as_of": now})
    except IntegrityError:  # created by a concurrent request between our read and insert
        return StrategyUpdateRun.objects.get(date=day), False


def daily_update_advance(*, run_id: int) -> UpdateStep:
    """Move the run to its next phase if its current one is done (see the module docstring) and
    return the jobs the caller must send. Under the run's row lock, so concurrent calls (the last
    child and the sweeper) advance it once."""
    with transaction.atomic():
        run = StrategyUpdateRun.objects.select_for_update().get(pk=run_id)
        if run.status == JobStatus.PENDING:
            return _start(run)
        if run.status != JobStatus.RUNNING:
            return UpdateStep(run)
        if run.phase == UpdatePhase.STRATEGIES and not run.items.filter(status__in=UNFINISHED).exists():
            return _generate(run)
        if (
            run.phase == UpdatePhase.GENERATION
            and not run.generation_runs.filter(status__in=UNFINISHED).exists()
        ):
            return _complete(run)
    return UpdateStep(run)


def _start(run: StrategyUpdateRun) -> UpdateStep:
    strategies = selectors.strategy_list().filter(status=StrategyStatus.ACTIVE)
    StrategyUpdateItem.objects.bulk_create(
        [StrategyUpdateItem(run=run, strategy=strategy) for strategy in strategies], ignore_conflicts=True
    )
    StrategyUpdateRun.objects.filter(pk=run.pk).update(
        status=JobStatus.RUNNING,
        phase=UpdatePhase.STRATEGIES,
        started_at=timezone.now(),
        as_of=run.as_of or clock.now(),
        attempts=run.attempts + 1,
    )
    run.refresh_from_db()
    return UpdateStep(run, items=list(run.items.filter(status=JobStatus.PENDING)))


def _generate(run: StrategyUpdateRun) -> UpdateStep:
    needs = selectors.strategies_needing_generation(day=run.date)
    created, lines = [], []
    for need in needs:
        try:
            generation_run = generation.generation_create(
                instrument=need.instrument,
                timeframe=need.timeframe,
                count=settings.GENERATION_DAILY_COUNT,
                trigger=JobTrigger.DAILY_UPDATE,
                update_run=run,
            )
        except StrategyInputError as error:
            lines.append({**need.to_dict(), "generation_run": None, "error": str(error)})
            continue
        created.append(generation_run)
        lines.append({**need.to_dict(), "generation_run": generation_run.pk})
    run.phase = UpdatePhase.GENERATION
    run.summary = {"needing_generation": [need.to_dict() for need in needs], "generation": lines}
    run.save(update_fields=["phase", "summary"])
    if not created:  # no generation job will ask for the next phase: this is the last step
        return _complete(run)
    return UpdateStep(run, generations=created)


def _complete(run: StrategyUpdateRun) -> UpdateStep:
    items = list(run.items.select_related("strategy"))
    outcomes = Counter(item.outcome or "failed" for item in items if item.is_finished)
    generations = {g.pk: g for g in run.generation_runs.all()}
    lines = []
    for line in run.summary.get("generation", []):
        done = generations.get(line["generation_run"])
        if done is not None:
            line = {
                **line,
                "status": done.status,
                "provider": done.provider_used,
                "kept": done.summary.get("kept", 0),
                "error": done.error[:300],
            }
        lines.append(line)
    summary = {
        "strategies": len(items),
        "outcomes": dict(outcomes),
        "failures": [
            {"strategy_id": item.strategy.strategy_id, "error": item.error[:300]}
            for item in items
            if item.status == JobStatus.FAILED
        ],
        "needing_generation": run.summary.get("needing_generation", []),
        "generation": lines,
    }
    StrategyUpdateRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(
        status=JobStatus.COMPLETED,
        phase=UpdatePhase.DONE,
        progress=1.0,
        finished_at=timezone.now(),
        summary=summary,
    )
    run.refresh_from_db()
    return UpdateStep(run)


def daily_update_strategy(*, item_id: int) -> bool:
    """Claim one strategy's update and evaluate, retire or re-optimise it (each step a decision);
    a failure is recorded as a ``skipped`` decision with the error. Returns True when no item of
    the run is unfinished any more: the caller then asks for :func:`daily_update_advance`."""
    with job_claimed(model=StrategyUpdateItem, pk=item_id) as item:
        if item is None:
            return _items_done(item_id)
        outcome = strategy_daily_update(strategy=item.strategy, now=item.run.as_of, run=item.run)
        job_complete(job=item, outcome=outcome)
    return _items_done(item_id)


def strategy_daily_update(*, strategy: Strategy, now: datetime, run: StrategyUpdateRun | None = None) -> str:
    """One strategy's daily update at ``now``: evaluate, then retire or re-optimise it, each step a
    decision linked to ``run`` (a replay updates its own market's strategies without a run: a run
    covers every active strategy). A failure is recorded as a ``skipped`` decision with the error.
    Returns the deciding decision's kind."""
    try:
        return _update_strategy(strategy, run, RetireLimits.from_settings(), now)
    except Interrupted:
        raise
    except Exception as error:  # recorded on the strategy; the other strategies' updates go on
        logger.exception("Daily update of %s failed", strategy.strategy_id)
        decision_record(
            strategy,
            DecisionKind.SKIPPED,
            f"the update failed: {type(error).__name__}: {error}",
            update_run=run,
            created_at=now,
            actor=DAILY_UPDATE,
        )
        return DecisionKind.SKIPPED


def item_run_id(*, item_id: int) -> int:
    """The update run an item belongs to."""
    return StrategyUpdateItem.objects.values_list("run_id", flat=True).get(pk=item_id)


def _items_done(item_id: int) -> bool:
    run_id = item_run_id(item_id=item_id)
    return not StrategyUpdateItem.objects.filter(run_id=run_id, status__in=UNFINISHED).exists()


def strategies_daily_update(*, now: datetime | None = None) -> StrategyUpdateRun | None:
    """The whole daily update here and now, step by step in this process (the ``update_strategies``
    command; the scheduled job sends each step to the workers instead).

    One run per UTC date: a second call that day returns None and changes nothing.
    """
    run, created = daily_update_request(now=now)
    if not created:
        return None
    for item in daily_update_advance(run_id=run.pk).items:
        daily_update_strategy(item_id=item.pk)
    for generation_run in daily_update_advance(run_id=run.pk).generations:
        generation.generation_run(run_id=generation_run.pk)
    return daily_update_advance(run_id=run.pk).run


def _update_strategy(
    strategy: Strategy, run: StrategyUpdateRun | None, limits: RetireLimits, now: datetime
) -> str:
    """Evaluate, then retire or re-optimise one strategy; returns the deciding decision's kind.

    The computing happens outside any transaction; each outcome is written in one.
    """
    version = strategy.current_version
    window = selectors.candle_window(
        instrument=strategy.instrument,
        timeframe=strategy.timeframe,
        warmup_bars=documents.warmup_bars(version.rules, [version.parameters]),
        newest=settings.STRATEGY_UPDATE_WINDOW_BARS,
    )
    links = {"update_run": run, "created_at": now, "actor": DAILY_UPDATE}
    freshness = market_selectors.series_freshness(
        instrument=strategy.instrument, timeframe=strategy.timeframe, now=now
    )
    if freshness.stale:
        reason = f"not evaluated on stale data: {freshness.describe(strategy.timeframe)}"
        decision_record(
            strategy, DecisionKind.SKIPPED, reason, {"age_seconds": freshness.age_seconds}, **links
        )
        return DecisionKind.SKIPPED
    if window.bars < MIN_UPDATE_BARS:
        reason = f"the window has {window.bars} {strategy.timeframe} candles; {MIN_UPDATE_BARS} are needed"
        decision_record(strategy, DecisionKind.SKIPPED, reason, {"bars": window.bars}, **links)
        return DecisionKind.SKIPPED
    costs = Costs(float(DEFAULT_CAPITAL), DEFAULT_COMMISSION, 0.0, strategy.timeframe)
    report = strategy_report(
        strategy=strategy,
        version=version,
        window=window,
        initial_capital=costs.initial_capital,
        commission=costs.commission,
        slippage=costs.slippage,
    )
    metrics = report.metrics()
    numbers = {key: metrics[key] for key in EVALUATION_METRICS}
    breaches = limits.breaches(metrics)
    search = None if breaches else _reoptimise(strategy, version, window, costs)
    with transaction.atomic():
        backtest = Backtest.objects.create(
            strategy=strategy,
            version=version,
            trigger=JobTrigger.DAILY_UPDATE,
            start=window.window.index[0],
            end=window.window.index[-1],
            initial_capital=DEFAULT_CAPITAL,
            commission=costs.commission,
            status=JobStatus.COMPLETED,
            progress=1.0,
            started_at=now,
            finished_at=now,
            **report_fields(report, window),
        )
        decision_record(
            strategy, DecisionKind.EVALUATED, _evaluation_reason(metrics), numbers, backtest=backtest, **links
        )
        strategy = Strategy.objects.select_for_update().get(pk=strategy.pk)
        if strategy.status != StrategyStatus.ACTIVE or strategy.current_version_id != version.pk:
            reason = "the strategy was paused, retired or edited during the update; nothing was changed"
            decision_record(strategy, DecisionKind.SKIPPED, reason, numbers, backtest=backtest, **links)
            return DecisionKind.SKIPPED
        if breaches:
            numbers = {**numbers, "limits": asdict(limits)}
            strategy_status_set(
                strategy, StrategyStatus.RETIRED, "; ".join(breaches), numbers, backtest=backtest, **links
            )
            strategy.save()
            return DecisionKind.RETIRED
        return _adopt_or_reject(strategy, version, window, search, links)


def _evaluation_reason(metrics: Mapping[str, Any]) -> str:
    sharpe = "n/a" if metrics["sharpe_ratio"] is None else f"{metrics['sharpe_ratio']:.2f}"
    return (
        f"last {metrics['bars']} bars ({metrics['start'][:10]} .. {metrics['end'][:10]}): return "
        f"{metrics['total_return_pct']:+.1f}% vs buy-and-hold {metrics['buy_and_hold_return_pct']:+.1f}%, "
        f"Sharpe {sharpe}, max drawdown {metrics['max_drawdown_pct']:.1f}%, {metrics['num_trades']} trades"
    )


@dataclass(frozen=True)
class _Search:
    """A finished re-optimisation: its grid, folds and summary, or why it could not run."""

    space: dict[str, list[Any]]
    layout: list[Fold]
    results: list[dict[str, Any]]
    summary: Summary | None
    problem: str | None = None
    robustness: SearchRobustness | None = None


def _reoptimise(strategy: Strategy, version: StrategyVersion, window: CandleWindow, costs: Costs) -> _Search:
    """Search the neighbourhood of the parameters the rules read. One that no rule reads is left out
    rather than refused: its trials would all be the same, and the strategy's other parameters still
    deserve their search (its detail page warns about it)."""
    space = documents.neighbourhood(
        version.rules, version.parameters, settings.STRATEGY_REOPTIMIZE_MULTIPLIERS
    )
    if not any(len(values) > 1 for values in space.values()):
        return _Search(space, [], [], None, "no numeric parameter of the rules to re-optimise")
    try:
        validate_space(space, version.rules)
        trials = grid(space)
        layout = walk_forward_folds(window.bars, settings.STRATEGY_REOPTIMIZE_FOLDS)
    except OptimizeError as error:
        return _Search(space, [], [], None, f"re-optimisation is not possible: {error}")
    shifted = stored_folds([fold.to_dict() for fold in layout], window.first)
    external = external_series(strategy=strategy, rules=version.rules, frame=window.frame)
    results = evaluate_chunk(
        window.frame,
        version.rules,
        version.parameters,
        chunk(trials, len(trials))[0],
        shifted,
        costs=costs,
        external=external,
        whole_window=whole_window(window, costs),
    )
    summary = summarise(results, settings.STRATEGY_REOPTIMIZE_OBJECTIVE)
    robustness = search_robustness(
        window=window,
        rules=version.rules,
        base_parameters=version.parameters,
        layout=[fold.to_dict() for fold in layout],
        summary=summary,
        results=results,
        costs=costs,
        external=external,
    )
    return _Search(space, layout, results, summary, robustness=robustness)


def _adopt_or_reject(
    strategy: Strategy, version: StrategyVersion, window: CandleWindow, search: _Search, links: dict[str, Any]
) -> str:
    """Store the re-optimisation and adopt its best parameters only when they beat the current ones
    out of sample by the margin. The caller holds the strategy's row lock."""
    if search.summary is None:
        decision_record(strategy, DecisionKind.SKIPPED, search.problem, {"space": search.space}, **links)
        return DecisionKind.SKIPPED
    summary, now = search.summary, links["created_at"]
    optimization = OptimizationRun.objects.create(
        strategy=strategy,
        version=version,
        trigger=JobTrigger.DAILY_UPDATE,
        start=window.window.index[0],
        end=window.window.index[-1],
        bars=window.bars,
        warmup_bars=window.first,
        initial_capital=DEFAULT_CAPITAL,
        commission=DEFAULT_COMMISSION,
        space=search.space,
        method=OptimizationMethod.GRID,
        n_trials=len(search.results),
        objective=summary.objective,
        folds=len(search.layout),
        fold_layout=[fold.to_dict() for fold in search.layout],
        chunks_total=1,
        chunks_done=1,
        status=JobStatus.COMPLETED,
        progress=1.0,
        started_at=now,
        finished_at=now,
        **summary_fields(search.results, summary),
    )
    # Recorded with the run, in the same transaction: a retried update records its trials once.
    if search.robustness is None:
        raise ValueError("a re-optimisation with a summary has its robustness")
    robustness = search_record(run=optimization, search=search.robustness)
    optimization.robustness = robustness.to_dict()
    optimization.save(update_fields=["robustness"])
    current = {name: version.parameters[name] for name in search.space}
    by_index = {trial["index"]: trial for trial in summary.trials}
    mine = next((t for t in summary.trials if t["params"] == current), None)
    best = by_index.get(summary.best_index)
    margin = settings.STRATEGY_REOPTIMIZE_MARGIN
    numbers = {
        "objective": summary.objective,
        "margin": margin,
        "trials": len(search.results),
        "current_params": current,
        "current_out_of_sample": mine and mine["out_of_sample_objective"],
        "candidate_params": best and best["params"],
        "candidate_in_sample": best and best["in_sample_objective"],
        "candidate_out_of_sample": best and best["out_of_sample_objective"],
        "walk_forward_efficiency": summary.walk_forward_efficiency,
        "warning": summary.warning,
    }
    best_tests = robustness.block.best
    if best_tests is not None:
        numbers["robustness"] = gate_numbers(best_tests, robustness.pbo)
    links = {**links, "optimization": optimization}
    deflated = None if best_tests is None else best_tests.deflated_sharpe
    verdict = _verdict(numbers, best, mine)
    if verdict is None and (luck := deflation_verdict(deflated_sharpe=deflated, pbo=robustness.pbo)):
        family = "?" if best_tests is None else best_tests.trials
        verdict = f"the best trial may be luck ({family} trials in the family): {luck}"
    if verdict is not None:
        decision_record(strategy, DecisionKind.PARAMS_REJECTED, verdict, numbers, **links)
        return DecisionKind.PARAMS_REJECTED
    document = {
        "parameters": {**version.parameters, **best["params"]},
        "indicators": version.indicators,
        "rules": version.rules,
    }
    raise_if_problems(documents.document_problems(**document))
    objective = summary.objective
    reason = (
        f"out-of-sample {objective} {numbers['candidate_out_of_sample']:.3g} beats the current "
        f"{numbers['current_out_of_sample']:.3g} by at least {margin:g}; deflated Sharpe ratio "
        f"{deflated:.3f} over {best_tests.trials} trials, PBO {_figure(robustness.pbo)}"
    )
    new = version_create(strategy, document, StrategySource.OPTIMIZER, f"daily update: {reason}")
    strategy.save()
    decision_record(
        strategy, DecisionKind.PARAMS_ADOPTED, f"version {new.number}: {reason}", numbers, **links
    )
    return DecisionKind.PARAMS_ADOPTED


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _verdict(numbers: Mapping[str, Any], best: Mapping | None, mine: Mapping | None) -> str | None:
    """Why the candidate is rejected, or None to adopt it."""
    objective = numbers["objective"]
    if best is None or mine is None:
        return "the current or candidate parameters could not be evaluated"
    if best["params"] == mine["params"]:
        return f"the current parameters are the best in-sample of {numbers['trials']} trials"
    candidate, current = numbers["candidate_out_of_sample"], numbers["current_out_of_sample"]
    if candidate is None or current is None:
        return f"out-of-sample {objective} is undefined (no trades) for the current or candidate parameters"
    if candidate - current < numbers["margin"]:
        return (
            f"out-of-sample {objective} {candidate:.3g} vs the current {current:.3g}: "
            f"not better by the margin of {numbers['margin']:g}"
        )
    return None
