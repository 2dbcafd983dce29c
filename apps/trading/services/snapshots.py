"""Portfolio snapshots: an account's value once per 5-minute slot, applying its loss limits."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from apps.core import clock
from apps.trading import selectors
from apps.trading.accounting import lock_account
from apps.trading.models import Account, PortfolioSnapshot
from apps.trading.services import risk_gate

SNAPSHOT_SLOT_MINUTES = 5


def snapshot_slot(now: datetime) -> datetime:
    """The start of the 5-minute slot ``now`` falls in: one snapshot of an account per slot."""
    return now.replace(minute=now.minute - now.minute % SNAPSHOT_SLOT_MINUTES, second=0, microsecond=0)


def portfolio_snapshot(*, account: Account, now: datetime | None = None) -> PortfolioSnapshot:
    """Store the account's value for the current 5-minute slot (once per slot) and apply the loss
    limits to its trading state."""
    now = now or clock.now()
    with transaction.atomic():
        locked = lock_account(account.pk)
        current = selectors.portfolio(account=locked)
        risk_gate.state_refresh(account=locked, figures=current.figures, now=now)
        figures = selectors.portfolio(account=locked).figures
        snapshot, _ = PortfolioSnapshot.objects.get_or_create(
            account=locked,
            time=snapshot_slot(now),
            defaults={
                "cash": figures.cash,
                "positions_value": figures.positions_value,
                "equity": figures.equity,
                "unrealised_pnl": figures.unrealised_pnl,
                "realised_pnl": figures.realised_pnl,
                "total_pnl": figures.total_pnl,
                "daily_pnl": figures.daily_pnl,
                "exposure": figures.exposure,
                "drawdown": figures.drawdown,
                "positions": [
                    {
                        "symbol": row.marked.symbol,
                        "quantity": str(row.position.quantity),
                        "mark": None if row.marked.mark is None else str(row.marked.mark),
                        "value": str(row.marked.value),
                    }
                    for row in current.rows
                ],
            },
        )
    return snapshot


def portfolio_snapshot_all(*, now: datetime | None = None) -> int:
    """Snapshot every account; return how many."""
    accounts = list(Account.objects.all())
    for account in accounts:
        portfolio_snapshot(account=account, now=now)
    return len(accounts)
