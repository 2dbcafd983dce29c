"""Reconcile live accounts with their exchange now: `reconcile_orders [--account ID]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.errors import TemporaryError
from apps.trading import selectors
from apps.trading.services.reconciliation import account_reconcile


class Command(BaseCommand):
    help = "Sync orders, fills and balances of live accounts with the exchange; print every repair."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--account", type=int, default=None, help="One account id (default: every live one)"
        )

    def handle(self, *args: Any, account: int | None, **options: Any) -> None:
        if account is not None:
            found = selectors.account_get(account_id=account)
            if found is None:
                raise CommandError(f"no account {account}")
            accounts = [found]
        else:
            accounts = selectors.live_accounts_to_reconcile()
        if not accounts:
            self.stdout.write(
                "No live account to reconcile (LIVE_TRADING_ENABLED off, or no account with keys)."
            )
        for target in accounts:
            try:
                run = account_reconcile(account=target)
            except TemporaryError as error:
                raise CommandError(f"{target.name}: the exchange is unreachable: {error}") from None
            if run is None:
                self.stdout.write(f"{target.name}: not reconciled (paper, no keys, or live trading off)")
                continue
            self.stdout.write(f"{target.name}: {run.summary['repairs']} repair(s)")
            for repair in run.repairs.order_by("pk"):
                self.stdout.write(f"  {repair.kind}: {repair.message}")
