"""Play stored history as live closed candles and watch the loop trade: `replay [--bars 168] [--pace 0]`."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from apps.core.models import JobStatus
from apps.market.models import MarketAnalysis
from apps.strategies import selectors as strategy_selectors
from apps.strategies.errors import StrategyInputError
from apps.strategies.management.console import date_or_error
from apps.strategies.models import Strategy
from apps.trading.models import Account
from apps.trading.orchestrator import Skip
from apps.trading.replay import bars as replay_bars
from apps.trading.replay import plan as replay_plans
from apps.trading.replay import records as replay_records
from apps.trading.replay import setup as replay_setup
from apps.trading.services.allocations import (
    AllocationRefused,
    allocation_create,
    allocations_pause,
    allocations_resume,
)

SHARE_PLACES = Decimal("0.000001")


PAUSED = "paused between replay runs: python manage.py replay continues it"


class Command(BaseCommand):
    help = (
        "Replay a stored candle series as live closed candles, bar by bar, on the replay clock: analysis, "
        "training, the daily strategy update, the orchestrator, paper matching, snapshots and performance "
        "all run in this process for the replay's own market and paper account. Offline. Running it "
        "again continues where it stopped; --reset starts again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source-symbol", default="BTCUSD", help="the stored series to replay")
        parser.add_argument("--source-exchange", default="coinbase", help="its exchange (default coinbase)")
        parser.add_argument("--timeframe", default="1h")
        parser.add_argument(
            "--target-exchange", default="replay", help="exchange id of the replay's own instrument"
        )
        parser.add_argument("--account", default="Replay", help="the replay's paper account (default Replay)")
        parser.add_argument("--owner", default="admin", help="the user owning it (default admin)")
        parser.add_argument(
            "--cash", default=None, help="its starting cash (default TRADING_PAPER_STARTING_CASH)"
        )
        parser.add_argument(
            "--strategy",
            action="append",
            default=[],
            metavar="STRATEGY_ID",
            help="a stored strategy to copy onto the replay and allocate (repeatable; default: the demos)",
        )
        parser.add_argument(
            "--bars", type=int, default=None, help=f"bars to play (default {replay_plans.DEFAULT_BARS})"
        )
        parser.add_argument(
            "--start", help="play bars opening at or after this moment, e.g. 2019-09-01 (UTC)"
        )
        parser.add_argument("--end", help="play bars closing by this moment (UTC)")
        parser.add_argument(
            "--warmup-bars",
            type=int,
            default=replay_plans.DEFAULT_WARMUP_BARS,
            help=f"history stored before the first bar (default {replay_plans.DEFAULT_WARMUP_BARS})",
        )
        parser.add_argument("--pace", type=float, default=0.0, help="wall-clock seconds per bar (default 0)")
        parser.add_argument("--train-every-hours", type=int, default=6, help="0: never (default 6)")
        parser.add_argument(
            "--update-every-hours", type=int, default=24, help="from 02:00 UTC; 0: never (default 24)"
        )
        parser.add_argument("--reset", action="store_true", help="delete the earlier replay first")

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = options["verbosity"]
        owner = _owner(options["owner"])
        cash = _cash(options["cash"])
        for option in ("pace", "train_every_hours", "update_every_hours"):
            if options[option] < 0:
                raise CommandError(f"--{option.replace('_', '-')} cannot be negative (nothing was written)")
        try:
            plan = replay_plans.replay_plan(
                source_symbol=options["source_symbol"],
                source_exchange=options["source_exchange"],
                timeframe=options["timeframe"],
                target_exchange=options["target_exchange"],
                start=date_or_error(options["start"], "--start"),
                end=date_or_error(options["end"], "--end"),
                bars=options["bars"],
                warmup_bars=options["warmup_bars"],
                fresh=options["reset"],
            )
            account = replay_plans.replay_account_find(
                owner=owner,
                name=options["account"],
                target_exchange=plan.target_exchange,
                quote=plan.source.quote,
            )
            originals = self._originals(plan, account, options)
        except replay_plans.ReplayInputError as error:
            raise CommandError(f"{error} (nothing was written)") from None
        if plan.target is not None and account is not None:
            allocations_resume(account=account, note=PAUSED)
            replay = replay_bars.Replay(
                plan, plan.target, account, options["train_every_hours"], options["update_every_hours"]
            )
            self.stdout.write(
                f"Continuing the replay of {plan.source} {plan.timeframe} from "
                f"{replay.clock:%Y-%m-%d %H:%M} UTC: {len(plan.bars)} bars"
            )
        else:
            replay = self._start(plan, owner, options, cash, originals)
        self._play(replay, options["pace"])

    def _originals(
        self, plan: replay_plans.ReplayPlan, account: Account | None, options: dict[str, Any]
    ) -> list[Strategy]:
        """The strategies a new replay copies; checks that a continued one has its account."""
        if plan.target is not None:
            names = [a.name for a in replay_plans.replay_accounts(target_exchange=plan.target_exchange)]
            if account is None:
                raise replay_plans.ReplayInputError(
                    f"the replay on {plan.target_exchange!r} trades account(s) {', '.join(names) or 'none'}: "
                    "pass --account to continue it, or add --reset"
                )
            if options["strategy"]:
                raise replay_plans.ReplayInputError(
                    "a continued replay keeps the strategies it started with: add --reset to choose others"
                )
            return []
        if account is not None and not options["reset"]:
            raise replay_plans.ReplayInputError(
                f"account {account.name!r} is left from an earlier replay: add --reset to start again"
            )
        if not options["strategy"]:
            originals = replay_plans.demo_strategies()
            if not originals:
                raise replay_plans.ReplayInputError(
                    "no demo strategies are stored: run python manage.py load_demo_strategies, "
                    "or pass --strategy"
                )
            return originals
        originals = []
        for strategy_id in options["strategy"]:
            try:
                originals.append(strategy_selectors.strategy_get(strategy_id=strategy_id, user=None))
            except Strategy.DoesNotExist:
                raise replay_plans.ReplayInputError(f"unknown strategy {strategy_id!r}") from None
        return originals

    def _start(
        self,
        plan: replay_plans.ReplayPlan,
        owner: AbstractBaseUser,
        options: dict[str, Any],
        cash: Decimal,
        originals: list[Strategy],
    ) -> replay_bars.Replay:
        """Delete the earlier replay with --reset, then create the target with its warm-up, the
        account, the strategies' copies and their allocations: all of it, or nothing."""
        share = (Decimal(1) / len(originals)).quantize(SHARE_PLACES, rounding=ROUND_DOWN)
        try:
            with transaction.atomic():
                deleted = (
                    replay_records.replay_reset(
                        symbol=plan.source.symbol, target_exchange=plan.target_exchange
                    )
                    if options["reset"]
                    else []
                )
                target = replay_setup.replay_target_create(plan=plan)
                account = replay_setup.replay_account_create(
                    owner=owner, name=options["account"], target=target, cash=cash
                )
                copies = [
                    replay_setup.strategy_copy(original=original, target=target, timeframe=plan.timeframe)
                    for original in originals
                ]
                for copy in copies:
                    allocation_create(
                        account=account,
                        strategy=copy,
                        capital_pct=share,
                        by="replay",
                        note="made by the replay",
                    )
        except (replay_plans.ReplayInputError, StrategyInputError, AllocationRefused) as error:
            raise CommandError(f"{error} (nothing was written)") from None
        for line in deleted:
            self.stdout.write(f"Deleted {line}")
        first, last = plan.close_of(plan.bars[0]), plan.close_of(plan.bars[-1])
        self.stdout.write(
            f"Replaying {plan.source} {plan.timeframe} as {target}: {len(plan.bars)} bars closing "
            f"{first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} UTC, after {len(plan.warmup)} warm-up bars"
        )
        self.stdout.write(
            f"Account {account.name!r} (id {account.pk}, paper, {cash:,.2f} {account.quote_currency}, "
            f"auto-trading on), {share:.2%} to each of:"
        )
        for copy in copies:
            self.stdout.write(f"  {copy.strategy_id}")
        return replay_bars.Replay(
            plan, target, account, options["train_every_hours"], options["update_every_hours"]
        )

    def _play(self, replay: replay_bars.Replay, pace: float) -> None:
        frame = replay_plans.source_frame(plan=replay.plan)
        played, skips = 0, {}
        try:
            with self._quiet():
                for open_time in replay.plan.bars:
                    began = time.monotonic()
                    report = replay_bars.bar_play(
                        replay=replay, open_time=open_time, frame=frame.loc[[open_time]]
                    )
                    played += 1
                    if self.verbosity >= 1:
                        for line in _bar_lines(replay, report, skips):
                            self.stdout.write(line)
                    time.sleep(max(0.0, pace - (time.monotonic() - began)))
        except BaseException as error:
            reason = (
                f"the replay stopped at {replay.clock:%Y-%m-%d %H:%M} UTC ({type(error).__name__}: {error})"
            )
            abandoned = replay_records.replay_jobs_abandon(
                target=replay.target, accounts=[replay.account], reason=reason
            )
            self._summary(replay, played)
            allocations_pause(account=replay.account, note=PAUSED)
            if isinstance(error, KeyboardInterrupt):
                raise CommandError(
                    f"{reason}; {abandoned} unfinished job(s) marked failed. "
                    "Run the command again to continue."
                ) from None
            raise
        self._summary(replay, played)
        allocations_pause(account=replay.account, note=PAUSED)

    @contextmanager
    def _quiet(self) -> Iterator[None]:
        """The jobs' INFO records (claims, completions) would bury the replay's lines: warnings only,
        unless asked for with -v 2."""
        logger = logging.getLogger("apps")
        level = logger.level
        if self.verbosity < 2:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            logger.setLevel(level)

    def _summary(self, replay: replay_bars.Replay, played: int) -> None:
        for line in _summary_lines(replay_records.replay_summary(replay=replay), played, replay.account):
            self.stdout.write(line)


def _bar_lines(replay: replay_bars.Replay, report: replay_bars.BarReport, skips: dict[int, str]) -> list[str]:
    """One line for the bar, then one per event: fills, training, update decisions, generations."""
    lines = [
        f"{report.moment:%Y-%m-%d %H:%M}  close {report.close:>10,.2f}  {_analysis(report.analysis)}"
        f"  | {_cycles(replay, report, skips)}"
    ]
    for fill in report.fills:
        order = fill.order
        book = replay.names.get(order.allocation_id, "manual book") if order.allocation_id else "manual book"
        lines.append(
            f"    filled {fill.side} {fill.quantity.normalize()} @ {fill.price:,.2f} (fee {fill.fee:,.2f}): "
            f"{book}, {order.source} {order.type.lower()} order {order.pk}"
        )
    for model in report.training["models"] if report.training is not None else []:
        if model["model_id"] is None:  # its reason says why it was not trained
            lines.append(f"    training {model['model_type']}: {model['reason']}")
            continue
        verdict = "promoted to champion" if model["promoted"] else model["stage"]
        lines.append(f"    training {model['model_id']}: {verdict}: {model.get('reason', '')}")
    for decision in report.decisions:
        lines.append(f"    update {decision.strategy.name}: {decision.kind}: {decision.reason}")
    for run in report.generations:
        kept = run.summary.get("kept_strategy_ids", [])
        outcome = f"{len(kept)} kept as drafts {' '.join(kept)}" if run.status == "completed" else run.error
        provider = run.provider_used or run.provider_requested
        lines.append(f"    generation {run.pk} ({provider}): {run.status}: {outcome}")
    return lines


def _analysis(analysis: MarketAnalysis | None) -> str:
    if analysis is None:
        return "analysis: none this slot"
    if analysis.status != JobStatus.COMPLETED:
        return f"analysis {analysis.status}: {analysis.error[:80]}"
    directions = Counter(analysis.signals.values_list("direction", flat=True))
    signals = ", ".join(f"{count} {direction}" for direction, count in sorted(directions.items())) or "none"
    regime = analysis.regime
    return f"{regime.get('trend')} trend, {regime.get('volatility')} volatility, signals: {signals}"


def _cycles(replay: replay_bars.Replay, report: replay_bars.BarReport, skips: dict[int, str]) -> str:
    """What the allocations did: each order placed or refused, each new reason to skip (a skip
    repeated from the bar before is only counted), and how many had nothing to do."""
    shown, quiet = [], Counter()
    for cycle in report.cycles:
        for entry in cycle.summary:
            allocation = entry["allocation"]
            name = replay.names.get(allocation, entry["strategy_id"])
            if entry["outcome"] == "skipped":
                if entry["code"] == Skip.ALREADY_ACTED:
                    continue
                if skips.get(allocation) != entry["code"]:
                    shown.append(f"{name} skipped: {entry['reason']}")
                else:
                    quiet["still skipped"] += 1
                skips[allocation] = entry["code"]
                continue
            skips.pop(allocation, None)
            if "nothing to do" in entry["decision"]:
                quiet[f"{entry['signal']} signal"] += 1
            else:
                shown.append(f"{name}: {entry['decision']}")
    rest = ", ".join(f"{count} {what}" for what, count in sorted(quiet.items()))
    return "; ".join([*shown, *([f"no order ({rest})"] if rest else [])]) or "no allocation"


def _summary_lines(summary: replay_records.ReplaySummary, played: int, account: Account) -> list[str]:
    figures, quote = summary.portfolio.figures, account.quote_currency
    analyses = summary.analyses
    models = ", ".join(f"{count} {stage}" for stage, count in sorted(summary.models.items())) or "none"
    decisions = ", ".join(f"{count} {kind}" for kind, count in sorted(summary.decisions.items())) or "none"
    orders = ", ".join(f"{count} {status}" for status, count in sorted(summary.orders.items())) or "none"
    lines = [
        "",
        f"Replay clock {summary.clock:%Y-%m-%d %H:%M} UTC: {played} bars played now, {summary.bars} in all "
        f"(the first opened {summary.first_bar:%Y-%m-%d %H:%M} UTC)",
        f"  analyses          {sum(analyses.values())} ({analyses.get('completed', 0)} completed, "
        f"{summary.stale_analyses} on stale data, {analyses.get('failed', 0)} failed)",
        f"  models            {models}; {summary.promotions.get(True, 0)} promoted, "
        f"{summary.promotions.get(False, 0)} refused",
        f"  update decisions  {decisions}",
        f"  generations       {summary.generations} runs, {summary.generated} candidates kept as drafts",
        f"  orchestrator      {summary.cycles} cycles",
        f"  orders            {orders}",
        f"  fills             {summary.fills}",
        f"Account {account.name!r} (id {account.pk}): equity {figures.equity:,.2f} {quote} "
        f"(cash {figures.cash:,.2f}, positions {figures.positions_value:,.2f}), "
        f"P&L {figures.total_pnl:+,.2f}, drawdown {figures.drawdown:.2%}, {account.trading_state}",
    ]
    for result in summary.allocations:
        lines.append(
            f"  {result.allocation.strategy.strategy_id}: P&L {result.total:+,.2f} (realised "
            f"{result.realised:+,.2f}, unrealised {result.unrealised:+,.2f}) from {result.fills} fills"
        )
    return lines


def _owner(username: str) -> AbstractBaseUser:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(
            f"no user {username!r} to own the replay's account: make setup creates 'admin', or pass --owner "
            "(nothing was written)"
        )
    return user


def _cash(text: str | None) -> Decimal:
    try:
        cash = Decimal(text if text is not None else str(settings.TRADING_PAPER_STARTING_CASH))
    except InvalidOperation:
        raise CommandError(f"--cash {text!r} is not a number (nothing was written)") from None
    if not cash.is_finite() or cash <= 0:
        raise CommandError(f"--cash must be above 0, got {text} (nothing was written)")
    return cash
