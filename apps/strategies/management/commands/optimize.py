"""Optimise a strategy's parameters now: `optimize STRATEGY_ID --param rsi_oversold=20,25,30 ...`."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from apps.core.models import JobStatus
from apps.strategies.engine.optimize import OBJECTIVES
from apps.strategies.errors import StrategyInputError
from apps.strategies.management.console import cell, date_or_error, space_or_error, strategy_or_error, table
from apps.strategies.models import JobTrigger, OptimizationMethod, OptimizationRun
from apps.strategies.services.backtests import DEFAULT_COMMISSION
from apps.strategies.services.optimizations import (
    optimization_chunk_run,
    optimization_create,
    optimization_finish,
)

TOP_TRIALS = 10


class Command(BaseCommand):
    help = (
        "Search a strategy's parameters walk-forward, synchronously, the way the workers do it "
        "(chunk by chunk), and print the best parameters, each fold in and out of sample and the top trials."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("strategy_id")
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            help="NAME=V1,V2,... (values), NAME=MIN:MAX:STEP (stepped range) or NAME=MIN:MAX (random only)",
        )
        parser.add_argument("--method", choices=OptimizationMethod.values, default=OptimizationMethod.GRID)
        parser.add_argument("--trials", type=int, default=50, help="random trials (random method)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--objective", choices=OBJECTIVES, default="sharpe_ratio")
        parser.add_argument("--folds", type=int, default=3, help="walk-forward folds; 0: in-sample only")
        parser.add_argument("--anchored", action="store_true", help="training windows start at the first bar")
        parser.add_argument("--start", help="first candle (default: the first stored)")
        parser.add_argument("--end", help="last candle (default: the last stored)")
        parser.add_argument("--capital", default="10000")
        parser.add_argument("--commission", type=float, default=DEFAULT_COMMISSION)
        parser.add_argument("--slippage", type=float, default=0.0)

    def handle(self, *args: Any, strategy_id: str, **options: Any) -> None:
        strategy = strategy_or_error(strategy_id)
        try:
            capital = Decimal(options["capital"])
        except InvalidOperation:
            raise CommandError(
                f"--capital {options['capital']!r} is not a number (nothing was written)"
            ) from None
        try:
            run = optimization_create(
                strategy=strategy,
                space=space_or_error(options["param"]),
                method=options["method"],
                objective=options["objective"],
                folds=options["folds"],
                anchored=options["anchored"],
                n_trials=options["trials"],
                seed=options["seed"],
                start=date_or_error(options["start"], "--start"),
                end=date_or_error(options["end"], "--end"),
                initial_capital=capital,
                commission=options["commission"],
                slippage=options["slippage"],
                trigger=JobTrigger.COMMAND,
            )
        except StrategyInputError as error:
            raise CommandError(f"{error} (nothing was written)") from None
        with tqdm(
            total=run.n_trials, unit="trial", desc=f"optimisation {run.pk}", file=self.stderr._out
        ) as bar:
            for chunk in run.chunks.order_by("index"):
                optimization_chunk_run(run_id=run.pk, chunk_index=chunk.index)
                bar.update(len(chunk.trials))
        optimization_finish(run_id=run.pk)
        run.refresh_from_db()
        if run.status != JobStatus.COMPLETED:
            raise CommandError(f"optimisation {run.pk} failed: {run.error}")
        self.stdout.write(_report(run))


def _report(run: OptimizationRun) -> str:
    summary, objective = run.summary, run.objective
    folds = [
        (
            pick["fold"],
            _params(pick["best_params"]),
            pick["in_sample"][objective],
            pick["out_of_sample"] and pick["out_of_sample"][objective],
            pick["in_sample"]["total_return_pct"],
            pick["out_of_sample"] and pick["out_of_sample"]["total_return_pct"],
        )
        for pick in summary["folds"]
    ]
    ranked = sorted(
        (t for t in run.trials if "error" not in t),
        key=lambda t: -float("inf") if t["in_sample_objective"] is None else t["in_sample_objective"],
        reverse=True,
    )[:TOP_TRIALS]
    trials = [
        (t["index"], _params(t["params"]), t["in_sample_objective"], t["out_of_sample_objective"])
        for t in ranked
    ]
    failed = summary["failed"]
    lines = [
        f"Optimisation {run.pk}: {run.strategy.strategy_id} v{run.version.number}, {run.n_trials} trials, "
        f"{run.bars} bars, objective {objective}"
        + (f", {failed} trial(s) rejected by the strategy" if failed else ""),
        f"Best parameters (mean in-sample): {_params(run.best_params) if run.best_params else 'none'}",
        f"Walk-forward efficiency (out-of-sample / in-sample): {cell(summary['walk_forward_efficiency'])}",
        f"Warning: {summary['warning']}" if summary["warning"] else "No overfitting warning.",
        "",
        table(
            ("Fold", "Best in-sample params", "IS objective", "OOS objective", "IS return %", "OOS return %"),
            folds,
        ),
        "",
        f"Top {len(trials)} trials by mean in-sample {objective}:",
        table(("Trial", "Params", "IS objective", "OOS objective"), trials),
    ]
    return "\n".join(lines)


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value}" for name, value in params.items())
