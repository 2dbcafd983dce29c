"""Run strategy generation over the stored history and count its candidates through each gate:
`research_report [--symbol S] [--exchange E] [--timeframe T] [--provider P] [--count N] [--json]`."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.market import selectors as market
from apps.market.domain.candles import TIMEFRAMES
from apps.market.models import Instrument
from apps.strategies.errors import StrategyInputError
from apps.strategies.generation.schema import MAX_CANDIDATES
from apps.strategies.management.console import cell, table
from apps.strategies.services.research import SeriesResult, research_report

COUNTS = ("proposed", "backtested", "passed_holdout", "survived_deflation")


class Command(BaseCommand):
    help = (
        "Run the strategy generation pipeline (the scheduled generation's services, recording every "
        "candidate in the trial ledger) on the newest GENERATION_WINDOW_BARS bars of each stored series, "
        "once per provider, and report how many candidates were proposed, passed the holdout and "
        "survived deflation (STRATEGY_MIN_DEFLATED_SHARPE). The offline templates are fixed data, not "
        "random: the same database gives the same report. Bad input exits non-zero and runs nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--symbol", action="append", default=[], help="a market (repeatable; default: every active one)"
        )
        parser.add_argument("--exchange", help="the exchange of the --symbol markets, when several list one")
        parser.add_argument(
            "--timeframe", action="append", default=[], help="repeatable; default: every stored timeframe"
        )
        parser.add_argument(
            "--provider",
            action="append",
            default=[],
            help="repeatable; default: LLM_PROVIDERS as configured (keyed LLMs, then offline)",
        )
        parser.add_argument(
            "--count",
            type=int,
            default=MAX_CANDIDATES,
            help=f"candidates asked of each provider per series (1..{MAX_CANDIDATES}; default "
            f"{MAX_CANDIDATES}: every offline template)",
        )
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        series = _series(options["symbol"], options["exchange"], options["timeframe"])
        providers = list(dict.fromkeys(options["provider"] or settings.LLM_PROVIDERS))
        try:
            results = research_report(series=series, providers=providers, count=options["count"])
        except StrategyInputError as error:
            raise CommandError(f"{error} (nothing was run)") from None
        report = _report(results)
        self.stdout.write(json.dumps(report, indent=2) if options["json"] else _text(report, results))
        if failed := [r for r in results if r.status != "completed"]:
            raise CommandError(
                "; ".join(
                    f"run {r.run_id} ({r.symbol} {r.timeframe} {r.provider}) {r.status}: {r.error}"
                    for r in failed
                )
            )


def _series(
    symbols: Sequence[str], exchange: str | None, timeframes: Sequence[str]
) -> list[tuple[Instrument, str]]:
    if unknown := [tf for tf in timeframes if tf not in TIMEFRAMES]:
        raise CommandError(f"unknown timeframe {unknown[0]!r}; known: {', '.join(TIMEFRAMES)}")
    if symbols:
        try:
            instruments = [market.instrument_resolve(symbol=s, exchange=exchange) for s in symbols]
        except market.InstrumentNotFound as error:
            raise CommandError(f"{error} (nothing was run)") from None
    elif exchange:
        raise CommandError("--exchange names the exchange of --symbol markets; give --symbol too")
    else:
        instruments = list(market.instrument_list(active=True).order_by("symbol", "exchange"))
    found = []
    for instrument in dict.fromkeys(instruments):
        stored = sorted(
            market.candle_timeframes(instrument=instrument), key=lambda tf: TIMEFRAMES[tf].duration
        )
        wanted = (
            list(timeframes)
            if symbols and timeframes
            else [tf for tf in stored if not timeframes or tf in timeframes]
        )
        found += [(instrument, timeframe) for timeframe in wanted]
    if not found:
        raise CommandError(
            "no stored series to report on"
            + (f" in {', '.join(timeframes)}" if timeframes else "")
            + "; load the history first: python manage.py load_demo_data --offline"
        )
    return found


def _report(results: Sequence[SeriesResult]) -> dict[str, Any]:
    return {
        "settings": {
            "window_bars": settings.GENERATION_WINDOW_BARS,
            "holdout_fraction": settings.GENERATION_HOLDOUT_FRACTION,
            "min_holdout_sharpe": settings.GENERATION_MIN_SHARPE,
            "min_deflated_sharpe": settings.STRATEGY_MIN_DEFLATED_SHARPE,
            "pbo": "not applicable: no optimisation chooses a candidate's parameters",
        },
        "series": [result.to_dict() for result in results],
        "total": {name: sum(getattr(r, name) for r in results) for name in COUNTS},
    }


def _text(report: dict[str, Any], results: Sequence[SeriesResult]) -> str:
    limits = report["settings"]
    rows = [
        (
            f"{r.symbol} {r.exchange} {r.timeframe}",
            r.provider_used or r.provider,
            *(getattr(r, name) for name in COUNTS),
            f"{r.family_trials_before} -> {r.family_trials_after}",
        )
        for r in results
    ]
    rows.append(("total", "", *report["total"].values(), ""))
    header = (
        "market",
        "provider",
        "proposed",
        "backtested",
        "passed holdout",
        "survived deflation",
        "family trials",
    )
    lines = [
        textwrap.fill(
            f"Generation on the newest {limits['window_bars']} bars of each series, the last "
            f"{limits['holdout_fraction']:.0%} the holdout. Passed the holdout: beat buy-and-hold with a "
            f"Sharpe ratio of at least {limits['min_holdout_sharpe']:g}. Survived deflation: kept, its "
            f"holdout Sharpe ratio deflated by the family's trials at least "
            f"{limits['min_deflated_sharpe']:g} (no PBO: no optimisation chose the parameters).",
            width=100,
        ),
        "",
        table(header, rows),
        "",
    ]
    passed = [(r, line) for r in results for line in r.passed]
    lines.append("Passed the holdout:" if passed else "No candidate passed the holdout.")
    lines += [
        f"  {r.symbol} {r.timeframe} {line.name}: holdout {line.holdout_return_pct:+.1f}% vs buy-and-hold "
        f"{line.buy_and_hold_return_pct:+.1f}%, Sharpe {cell(line.holdout_sharpe)} (PSR "
        f"{cell(line.psr, 3)} over {line.holdout_bars} returns), deflated Sharpe "
        f"{cell(line.deflated_sharpe, 3)} over {line.trials} trials: "
        + (f"kept as {line.strategy_id}" if line.strategy_id else "rejected")
        for r, line in passed
    ]
    for r in results:
        if r.status != "completed":
            lines.append(f"  run {r.run_id} ({r.symbol} {r.timeframe} {r.provider}) {r.status}: {r.error}")
    return "\n".join(lines)
