"""A NEW live order sent to the exchange, at most once, then protected once it fills."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.trading.accounting import lock_account
from apps.trading.brokers import live
from apps.trading.errors import ExchangeUnavailable
from apps.trading.models import AccountKind, Order, OrderStatus
from apps.trading.services import risk_gate
from apps.trading.services.orders import protection_attach


def order_submit(*, order_id: int) -> Order | None:
    """Send a NEW live order to the exchange once. None if it was not NEW (a redelivered task).

    The SUBMITTING claim is committed before the request. If the exchange cannot be reached before
    anything is sent, the claim is undone and ExchangeUnavailable raised, so a retry is safe.
    """
    claimed = Order.objects.filter(
        pk=order_id, status=OrderStatus.NEW, account__kind=AccountKind.LIVE
    ).update(status=OrderStatus.SUBMITTING, submitted_at=timezone.now())
    if claimed != 1:
        return None
    order = Order.objects.select_related("account", "instrument").get(pk=order_id)
    account = order.account
    refusal = risk_gate.submit_check(account=account)
    if refusal is not None:
        with transaction.atomic():
            lock_account(account.pk)
            risk_gate.refusal_record(order=order, refusal=refusal)
        return order
    client = live.exchange_client_for(account)
    try:
        client.market(order.instrument.ccxt_symbol)
    except ExchangeUnavailable:
        Order.objects.filter(pk=order_id, status=OrderStatus.SUBMITTING).update(
            status=OrderStatus.NEW, submitted_at=None
        )
        raise
    live.submit(order, client)
    order.refresh_from_db()
    protection_attach(order=order)
    return order
