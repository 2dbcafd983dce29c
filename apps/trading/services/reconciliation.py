"""A live account compared with its exchange, its ledger repaired and every repair recorded."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.jobs import job_claimed, job_complete
from apps.core.models import JobStatus
from apps.trading.accounting import lock_account
from apps.trading.brokers import live
from apps.trading.models import Account, Order, Reconciliation, Repair
from apps.trading.services.orders import protection_attach


def account_reconcile(*, account: Account, now: datetime | None = None) -> Reconciliation | None:
    """Compare a live account with its exchange and repair the ledger, recording each repair.

    Returns the finished reconciliation, or None when live trading is off (no exchange is asked) or
    another reconciliation of the account is running.
    """
    if not (account.is_live and settings.LIVE_TRADING_ENABLED and account.has_api_keys):
        return None
    with transaction.atomic():
        lock_account(account.pk)  # one reconciliation of an account at a time
        busy = Reconciliation.objects.filter(
            account=account, status=JobStatus.RUNNING, lease_expires_at__gte=timezone.now()
        )
        if busy.exists():
            return None
        created = Reconciliation.objects.create(account=account)
    counts: dict[str, int] = {}
    repaired: set[int] = set()
    with job_claimed(model=Reconciliation, pk=created.pk) as run:
        if run is None:
            return None

        def record(changes: list[live.Change]) -> None:
            Repair.objects.bulk_create(
                Repair(
                    reconciliation=run,
                    account=account,
                    kind=change.kind,
                    order=change.order,
                    before=change.before,
                    after=change.after,
                    message=change.message[:500],
                )
                for change in changes
            )
            for change in changes:
                counts[change.kind] = counts.get(change.kind, 0) + 1
                if change.order is not None:
                    repaired.add(change.order.pk)

        live.reconcile(account, live.exchange_client_for(account), record=record, now=now)
        for order in Order.objects.filter(pk__in=repaired).select_related("account", "instrument"):
            protection_attach(order=order)
        return job_complete(job=run, summary={"repairs": sum(counts.values()), "by_kind": counts})
