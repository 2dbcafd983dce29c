"""Backtest a strategy now: `backtest STRATEGY_ID --start 2019-01-01 --end 2019-06-01 --capital 10000`."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from apps.core.models import JobStatus
from apps.market import selectors as market_selectors
from apps.strategies.errors import StrategyInputError
from apps.strategies.management.console import date_or_error, strategy_or_error, table
from apps.strategies.models import Backtest, JobTrigger
from apps.strategies.services.backtests import DEFAULT_COMMISSION, backtest_create, backtest_run

ROWS = (
    ("Total return %", "total_return_pct", "return_pct"),
    ("CAGR %", "cagr_pct", "cagr_pct"),
    ("Sharpe ratio", "sharpe_ratio", None),
    ("Sortino ratio", "sortino_ratio", None),
    ("Calmar ratio", "calmar_ratio", None),
    ("Max drawdown %", "max_drawdown_pct", None),
    ("Volatility %", "volatility_pct", None),
    ("Trades", "num_trades", None),
    ("Win rate %", "win_rate_pct", None),
    ("Profit factor", "profit_factor", None),
    ("Exposure %", "exposure_pct", None),
    ("Fees paid", "fees_paid", None),
    ("Final equity", "final_equity", None),
)


class Command(BaseCommand):
    help = (
        "Backtest a strategy's current version on stored candles, synchronously, and print its metrics "
        "beside buy-and-hold. The window defaults to every stored candle."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("strategy_id")
        parser.add_argument("--start", help="first candle, e.g. 2019-01-01 (UTC)")
        parser.add_argument("--end", help="last candle, e.g. 2019-06-01 (UTC)")
        parser.add_argument("--capital", default="10000", help="initial capital (default 10000)")
        parser.add_argument("--commission", type=float, default=DEFAULT_COMMISSION)
        parser.add_argument("--slippage", type=float, default=0.0)

    def handle(self, *args: Any, strategy_id: str, **options: Any) -> None:
        strategy = strategy_or_error(strategy_id)
        span = market_selectors.candle_span(instrument=strategy.instrument, timeframe=strategy.timeframe)
        start = date_or_error(options["start"], "--start") or (span and span[0])
        end = date_or_error(options["end"], "--end") or (span and span[1])
        if start is None or end is None:
            raise CommandError(f"no {strategy.timeframe} candles of {strategy.symbol} (nothing was written)")
        try:
            backtest = backtest_create(
                strategy=strategy,
                start=start,
                end=end,
                initial_capital=_capital(options["capital"]),
                commission=options["commission"],
                slippage=options["slippage"],
                trigger=JobTrigger.COMMAND,
            )
        except StrategyInputError as error:
            raise CommandError(f"{error} (nothing was written)") from None
        with tqdm(total=100, unit="%", desc=f"backtest {backtest.pk}", file=self.stderr._out) as bar:

            def progress(fraction: float) -> None:
                bar.n = round(100 * fraction)
                bar.refresh()

            backtest = backtest_run(backtest_id=backtest.pk, progress=progress)
            progress(1.0)
        if backtest.status != JobStatus.COMPLETED:
            raise CommandError(f"backtest {backtest.pk} failed: {backtest.error}")
        self.stdout.write(_report(backtest))


def _capital(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise CommandError(f"--capital {text!r} is not a number (nothing was written)") from None


def _report(backtest: Backtest) -> str:
    metrics, benchmark = backtest.metrics, backtest.benchmark
    hold_equity = float(backtest.initial_capital) * (1 + benchmark["return_pct"] / 100)
    hold_column = {**{key: benchmark[hold] for _, key, hold in ROWS if hold}, "final_equity": hold_equity}
    rows = [(label, metrics[key], hold_column.get(key)) for label, key, _ in ROWS]
    title = (
        f"Backtest {backtest.pk}: {backtest.strategy.strategy_id} v{backtest.version.number}, "
        f"{metrics['start']} .. {metrics['end']} ({metrics['bars']} {metrics['timeframe']} bars)"
    )
    return f"{title}\n\n{table(('Metric', 'Strategy', 'Buy & hold'), rows)}"
