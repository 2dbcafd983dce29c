"""The daily strategy update fanned out over 100 active strategies: no task comes near its hard limit.

Run from the repository root: ``python -m tests.bench.bench_daily_update``. It exits 1 when any
task takes more than half its queue's soft time limit (the target), naming it.

Each scenario runs in a child process on a throwaway system in a temporary directory (SQLite, the
filesystem broker, the local-memory cache; DATABASE_URL, REDIS_URL and the LLM keys are ignored, so
nothing outside it is touched and generation uses the offline templates, without the network). It
holds the shipped market history (``load_demo_data``: BTCUSD 1h and 1d, ETHUSD 1d, LTCUSD 1d) and
100 ACTIVE strategies, 25 per market: the demo strategies and the offline templates, each with its
numeric parameters scaled by a factor so that no two of a market are alike.

The update then runs in that process as the workers would run it, one task at a time, each task's
body called directly and timed: ``strategies.daily_update`` (create the date's run and advance it:
one item per strategy), every ``strategies.daily_update_strategy``, ``strategies.daily_update_advance``
(the generation runs), every ``strategies.generate_run``, and ``strategies.daily_update_advance``
again until the run is finished. The messages the tasks send go to the throwaway broker, where
nothing reads them: this loop plays the worker. It all runs at the market moment the newest shipped
BTCUSD 1h candle closed (``clock.replaying``), so no series is stale and every strategy is really
evaluated (the ETHUSD and LTCUSD files go on three months longer: those later candles are read as
if they were already there).

Two scenarios: ``shipped`` with the retirement limits of the settings, and ``no-retirement`` with
them out of reach (STRATEGY_RETIRE_*), so every strategy goes on to its re-optimisation: the
slowest path of an item, taken by all 100.

The numba kernels are loaded or compiled before the clock starts, as the build does
(``python -m apps.market.domain.compiled``); that time is printed apart. Each task's slowest call is
compared with the soft limit of its queue (``CELERY_QUEUE_TIME_LIMITS``, routed by
``workers.celery.queue_for``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from tests.bench.server import REPO_ROOT, table

STRATEGIES = 100
TARGET_FRACTION = 0.5  # of the queue's soft time limit
FACTORS = (1.0, 0.8, 1.25, 0.9, 1.15)  # each strategy's numeric parameters are scaled by one of these
SCENARIOS = {
    "shipped": {},
    "no-retirement": {
        "STRATEGY_RETIRE_MAX_DRAWDOWN_PCT": "1000",
        "STRATEGY_RETIRE_MIN_SHARPE": "-1000000",
        "STRATEGY_RETIRE_MAX_UNDERPERFORMANCE_PCT": "1000000",
    },
}
IGNORED_ENVIRONMENT = (
    "DATABASE_URL",
    "SQLITE_PATH",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_TASK_ALWAYS_EAGER",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "DJANGO_SETTINGS_MODULE",
)
ITEM_TASK = "strategies.daily_update_strategy"
GENERATION_TASK = "strategies.generate_run"


@contextmanager
def throwaway_system() -> Iterator[None]:
    """Django set up on a migrated SQLite database in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="bench-daily-update-") as var_dir:
        for name in IGNORED_ENVIRONMENT:
            os.environ.pop(name, None)
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": "tradingsite.settings",
                "VAR_DIR": var_dir,
                "ENVIRONMENT": "development",
                "LOG_LEVEL": "ERROR",  # the offline provider's "no price" warning, once per generation
                "LLM_PROVIDERS": "offline",
            }
        )
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0)
        try:
            yield
        finally:
            connections.close_all()


def strategy_documents() -> list[dict[str, Any]]:
    """The demo strategies and the offline templates as strategy documents."""
    from django.conf import settings

    from apps.strategies.generation.schema import candidate_document
    from apps.strategies.generation.templates import templates

    fields = ("name", "type", "parameters", "indicators", "rules")
    demo = json.loads((settings.BASE_DIR / "fixtures" / "strategies" / "demo_strategies.json").read_text())
    found = [{key: entry[key] for key in fields} for entry in demo]
    found += [
        {key: candidate_document(template)[key] for key in fields}
        for group in templates().values()
        for template in group
    ]
    return found


def scaled(parameters: dict[str, Any], factor: float) -> dict[str, Any]:
    """Every number times ``factor``, whole numbers staying whole; anything else as it is."""
    result = {}
    for name, value in parameters.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            result[name] = value
        elif isinstance(value, int):
            result[name] = max(1, round(value * factor))
        else:
            result[name] = float(f"{value * factor:.4g}")
    return result


def create_strategies(count: int) -> Counter[str]:
    """``count`` ACTIVE strategies spread evenly over the stored markets; returns how many per market."""
    from apps.market import selectors as market
    from apps.strategies.documents import document_problems
    from apps.strategies.models import StrategyStatus
    from tests.integration.active_strategies import strategy_create_as

    markets = [
        (instrument, timeframe)
        for instrument in market.instrument_list(active=True).order_by("symbol")
        for timeframe in sorted(market.candle_timeframes(instrument=instrument))
    ]
    bases = strategy_documents()
    per_market: Counter[str] = Counter()
    for number in range(count):
        instrument, timeframe = markets[number % len(markets)]
        within = number // len(markets)
        base = bases[within % len(bases)]
        factor = FACTORS[(within // len(bases) + number) % len(FACTORS)]
        parameters = scaled(base["parameters"], factor)
        if document_problems(parameters=parameters, indicators=base["indicators"], rules=base["rules"]):
            factor, parameters = 1.0, base["parameters"]
        strategy_create_as(
            name=f"{base['name']} x{factor:g} #{number}",
            type=base["type"],
            instrument=instrument,
            timeframe=timeframe,
            parameters=parameters,
            indicators=base["indicators"],
            rules=base["rules"],
            status=StrategyStatus.ACTIVE,
        )
        per_market[f"{instrument.symbol} {timeframe}"] += 1
    return per_market


def market_moment() -> datetime:
    """A minute after the newest candle of the series that ends first closed: every series is fresh."""
    from apps.market import selectors as market
    from apps.market.domain.candles import parse_timeframe

    closes = []
    for instrument in market.instrument_list(active=True):
        for timeframe in market.candle_timeframes(instrument=instrument):
            newest = market.newest_candle_time(instrument=instrument, timeframe=timeframe)
            if newest is not None:
                closes.append(newest + parse_timeframe(timeframe).duration.to_pytimedelta())
    return min(closes) + timedelta(minutes=1)


class Timings:
    """Seconds per call of each task, in the order they ran."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], float]] = []

    def run(self, task: Any, *args: Any) -> None:
        """Run the task's body in this process, as a worker would, and record how long it took."""
        started = time.perf_counter()
        task(*args)
        self.calls.append((task.name, args, time.perf_counter() - started))

    def by_task(self) -> dict[str, list[float]]:
        found: dict[str, list[float]] = defaultdict(list)
        for name, _, elapsed in self.calls:
            found[name].append(elapsed)
        return found


def run_update(timings: Timings, moment: datetime) -> Any:
    """The date's update from its start to its end, task by task; returns the finished run."""
    from apps.core import clock
    from apps.core.models import UNFINISHED
    from apps.strategies.models import GenerationRun, StrategyUpdateItem, StrategyUpdateRun
    from workers import strategies as tasks

    with clock.replaying(moment):
        timings.run(tasks.daily_update)
        run = StrategyUpdateRun.objects.get(date=moment.date())
        for _ in range(5):  # a pass finishes a phase: strategies, then generation
            items = StrategyUpdateItem.objects.filter(run=run, status__in=UNFINISHED)
            for item_id in items.values_list("pk", flat=True):
                timings.run(tasks.daily_update_strategy, item_id)
            generations = GenerationRun.objects.filter(update_run=run, status__in=UNFINISHED)
            for generation_id in generations.values_list("pk", flat=True):
                timings.run(tasks.generate_run, generation_id)
            timings.run(tasks.daily_update_advance, run.pk)  # the last child's message, received
            run.refresh_from_db()
            if run.is_finished:
                return run
    raise RuntimeError(f"the update did not finish: {run.status} in phase {run.phase}")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[round(fraction * (len(ordered) - 1))]


def seconds(value: float) -> str:
    return f"{value:.2f} s" if value >= 0.1 else f"{value * 1000:.0f} ms"


def spread(values: list[float]) -> str:
    return (
        f"p50 {seconds(statistics.median(values))}, p95 {seconds(percentile(values, 0.95))}, "
        f"max {seconds(max(values))}"
    )


def item_rows(timings: Timings, run: Any) -> list[tuple[str, str]]:
    """Per-item times overall, by outcome and by market, and the slowest item with its grid."""
    from apps.strategies.models import OptimizationRun, StrategyUpdateItem

    items = {item.pk: item for item in StrategyUpdateItem.objects.filter(run=run).select_related("strategy")}
    trials = dict(
        OptimizationRun.objects.filter(strategy__update_items__run=run, trigger="daily_update").values_list(
            "strategy_id", "n_trials"
        )
    )
    timed = [(items[args[0]], elapsed) for name, args, elapsed in timings.calls if name == ITEM_TASK]
    all_times = [elapsed for _, elapsed in timed]
    rows = [(f"per-strategy item, all {len(timed)}", f"{spread(all_times)}, sum {seconds(sum(all_times))}")]
    groups: dict[str, list[float]] = defaultdict(list)
    for item, elapsed in timed:
        groups[f"outcome {item.outcome or 'failed'}"].append(elapsed)
    for item, elapsed in timed:
        groups[f"market {item.strategy.instrument.symbol} {item.strategy.timeframe}"].append(elapsed)
    rows += [(f"· {name} ({len(values)})", spread(values)) for name, values in sorted(groups.items())]
    slowest, elapsed = max(timed, key=lambda pair: pair[1])
    strategy = slowest.strategy
    grid = f", re-optimised over {trials[strategy.pk]} trials" if strategy.pk in trials else ""
    rows.append(
        (
            "· slowest item",
            f"{seconds(elapsed)}: {strategy.name} ({strategy.instrument.symbol} {strategy.timeframe}), "
            f"{slowest.outcome}{grid}",
        )
    )
    rates = [
        (elapsed / trials[item.strategy.pk], item)
        for item, elapsed in timed
        if trials.get(item.strategy.pk, 0) >= 27  # big enough that the search dominates
    ]
    if rates:
        rows.append(largest_grid_estimate(*max(rates, key=lambda pair: pair[0])))
    return rows


def largest_grid_estimate(rate: float, item: Any) -> tuple[str, str]:
    """The largest neighbourhood grid an item may search (MAX_TRIALS bounds it: beyond, the item
    records a skip) at the slowest per-trial rate measured: an estimate, not a measurement."""
    from django.conf import settings

    from apps.strategies.engine.optimize import MAX_TRIALS

    values = len(settings.STRATEGY_REOPTIMIZE_MULTIPLIERS) + 1
    parameters = 0
    while values ** (parameters + 1) <= MAX_TRIALS:
        parameters += 1
    size = values**parameters
    strategy = item.strategy
    return (
        f"· largest grid allowed: {values}^{parameters} = {size} trials (≤ {MAX_TRIALS}), estimated",
        f"≈ {rate * size:.0f} s at the slowest rate measured, {rate * 1000:.1f} ms per trial "
        f"({strategy.name}, {strategy.instrument.symbol} {strategy.timeframe})",
    )


def retirement_reasons(run: Any) -> Counter[str]:
    """Which retirement limits the retired strategies broke (one strategy may break several)."""
    from apps.strategies.models import DecisionKind, StrategyDecision

    found: Counter[str] = Counter()
    for reason in StrategyDecision.objects.filter(update_run=run, kind=DecisionKind.RETIRED).values_list(
        "reason", flat=True
    ):
        for breach in reason.split("; "):
            limit = "drawdown" if breach.startswith("max drawdown") else breach.split()[0].lower()
            found["trails buy-and-hold" if limit == "return" else limit] += 1
    return found


def scenario(name: str) -> int:
    """Set up a throwaway system, run one update on it and print its tables; 1 when over the target."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with throwaway_system():
        from django.conf import settings
        from django.core.management import call_command

        from apps.market.domain.compiled import warm_up
        from apps.strategies.models import StrategyDecision
        from workers.celery import queue_for

        with open(os.devnull, "w") as quiet:
            call_command("load_demo_data", stdout=quiet)
        per_market = create_strategies(STRATEGIES)
        kernels = warm_up()
        moment = market_moment()
        setup = time.perf_counter() - started

        timings = Timings()
        update_started = time.perf_counter()
        run = run_update(timings, moment)
        total = time.perf_counter() - update_started

        items = item_rows(timings, run)
        decisions = Counter(StrategyDecision.objects.filter(update_run=run).values_list("kind", flat=True))
        retired = retirement_reasons(run)
        generation = run.summary.get("generation", [])
        limits = settings.CELERY_QUEUE_TIME_LIMITS

    print(
        f"### {name}: the update of {run.date} at {moment:%Y-%m-%d %H:%M} UTC, {run.status}: "
        f"{run.summary['strategies']} items, {len(generation)} generation runs\n"
    )
    print(
        f"{os.cpu_count()} CPUs, load average {load:.1f} when it started; SQLite, offline LLM. "
        f"Setup {setup:.1f} s (migrate, demo data, {STRATEGIES} strategies: "
        f"{', '.join(f'{n} {m}' for m, n in sorted(per_market.items()))}; numba kernels {kernels:.1f} s)\n"
    )
    generations = [elapsed for task, _, elapsed in timings.calls if task == GENERATION_TASK]
    steps = list(items)
    advances = [
        (task, elapsed) for task, _, elapsed in timings.calls if task not in (ITEM_TASK, GENERATION_TASK)
    ]
    steps += [
        (f"advance {number}: {task}", seconds(elapsed)) for number, (task, elapsed) in enumerate(advances, 1)
    ]
    if generations:
        times = ", ".join(seconds(elapsed) for elapsed in generations)
        steps.append((f"generation runs ({len(generations)})", f"{times}; sum {seconds(sum(generations))}"))
    steps.append(("total, one task after another", f"{total:.1f} s"))
    print(table(steps, ("step", "time")))
    print()

    rows, over = [], []
    for task, durations in timings.by_task().items():
        soft, hard = limits[queue_for(task)]
        worst = max(durations)
        fraction = worst / soft
        verdict = "pass" if fraction <= TARGET_FRACTION else "FAIL"
        if verdict == "FAIL":
            over.append(f"{task} took {worst:.1f} s, {fraction:.3%} of its {soft} s soft limit")
        limit, share = f"{soft} s / {hard} s", f"{fraction:.3%}"
        target = f"≤ {TARGET_FRACTION:.0%}"
        rows.append(
            (task, queue_for(task), str(len(durations)), limit, seconds(worst), share, target, verdict)
        )
    print(
        table(rows, ("task", "queue", "calls", "soft / hard limit", "max", "max / soft", "target", "result"))
    )
    print()
    kinds = ", ".join(f"{kind} {count}" for kind, count in decisions.most_common())
    breaches = ", ".join(f"{limit} {count}" for limit, count in retired.most_common()) or "none"
    made = [
        f"{line['symbol']} {line['timeframe']} ({line['active']} active, {line['retired_today']} retired): "
        f"{line.get('status', 'not run')}, kept {line.get('kept', 0)}"
        for line in generation
    ]
    summary = [
        ("decisions", kinds),
        ("limits the retired broke", breaches),
        ("generation", "; ".join(made) or "none needed"),
    ]
    print(table(summary, ("", "")))
    print()
    if decisions["evaluated"] != run.summary["strategies"]:  # stale data or a failure: nothing measured
        over.append(f"only {decisions['evaluated']} of {run.summary['strategies']} strategies were evaluated")
    if over:
        print("over the target or not measured: " + "; ".join(over))
        return 1
    return 0


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--scenario":
        return scenario(sys.argv[2])
    failed = []
    for name, environment in SCENARIOS.items():
        child = subprocess.run(
            [sys.executable, "-m", "tests.bench.bench_daily_update", "--scenario", name],
            cwd=REPO_ROOT,
            env={**os.environ, **environment},
        )
        if child.returncode != 0:
            failed.append(name)
    if failed:
        print(f"scenarios over the target or failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
