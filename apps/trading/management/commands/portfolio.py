"""Print an account's portfolio: `portfolio [--account ID]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.trading import selectors


class Command(BaseCommand):
    help = "Cash, equity, PnL, exposure, drawdown and positions of one account, or of every account."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--account", type=int, default=None, help="Account id (default: every account)")

    def handle(self, *args: Any, account: int | None, **options: Any) -> None:
        if account is None:
            accounts = list(selectors.account_list_all())
        else:
            found = selectors.account_get(account_id=account)
            if found is None:
                raise CommandError(f"no account {account}")
            accounts = [found]
        for target in accounts:
            self._print(selectors.portfolio(account=target))

    def _print(self, portfolio: selectors.Portfolio) -> None:
        account, figures = portfolio.account, portfolio.figures
        quote = account.quote_currency
        self.stdout.write(f"{account.name} (id {account.pk}, {account.kind}, {account.trading_state})")
        for label, value in (
            ("cash", figures.cash),
            ("positions", figures.positions_value),
            ("equity", figures.equity),
            ("realised PnL", figures.realised_pnl),
            ("unrealised PnL", figures.unrealised_pnl),
            ("total PnL", figures.total_pnl),
            ("PnL today", figures.daily_pnl),
        ):
            self.stdout.write(f"  {label:<15} {value:>20,.2f} {quote}")
        self.stdout.write(f"  {'exposure':<15} {figures.exposure:>20.2%}")
        self.stdout.write(f"  {'drawdown':<15} {figures.drawdown:>20.2%}")
        for row in portfolio.rows:
            position, marked = row.position, row.marked
            mark = "no price" if marked.mark is None else f"{marked.mark:,.2f}"
            self.stdout.write(
                f"  {position.instrument.symbol:<10} {position.quantity:>16} @ {position.average_entry:,.2f} "
                f"last {mark}  value {marked.value:,.2f}  unrealised {marked.unrealised:,.2f}"
            )
