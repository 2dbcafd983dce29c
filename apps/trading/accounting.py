"""Fills into the ledger: one fill changes the order, the position and the cash together.

Every function here runs inside a transaction that holds the account's row lock (the caller took
it with :func:`lock_account`); that lock is what serialises concurrent fills on one account, so
no update is lost. A trade id already recorded is skipped, so replaying an exchange's trades (a
reconciliation run twice) changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from apps.core import clock
from apps.market.models import Instrument
from apps.trading.domain.fills import Side
from apps.trading.domain.ledger import FeeAsset, PositionState, apply_fill, money
from apps.trading.models import Account, Fill, Order, OrderStatus, Position


def lock_account(account_id: int) -> Account:
    """The account, locked until the surrounding transaction ends."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock_account() must run inside transaction.atomic()")
    return Account.objects.select_for_update().get(pk=account_id)


def position_for(account: Account, instrument: Instrument, allocation_id: int | None = None) -> Position:
    """The position of one book of the account (an allocation's, or the manual book), created empty."""
    position, _ = Position.objects.get_or_create(
        account=account, instrument=instrument, allocation_id=allocation_id
    )
    return position


def fee_asset(instrument: Instrument, currency: str) -> FeeAsset:
    if not currency or currency == instrument.quote:
        return FeeAsset.QUOTE
    return FeeAsset.BASE if currency == instrument.base else FeeAsset.OTHER


def fill_record(
    *,
    account: Account,
    order: Order,
    quantity: Decimal,
    price: Decimal,
    fee: Decimal,
    fee_currency: str,
    executed_at: datetime,
    trade_id: str | None = None,
    is_maker: bool = False,
) -> Fill | None:
    """Book one execution of ``order``: the fill, the order's totals, the position of the order's
    book (its allocation's, or the manual book) and the account's cash.

    Returns None, changing nothing, when ``trade_id`` is already booked. ``account`` must be the
    locked row; its ``cash`` is updated in memory and in the database.
    """
    instrument = order.instrument
    trade_id = trade_id or f"paper-{uuid.uuid4().hex}"
    if Fill.objects.filter(account=account, instrument=instrument, trade_id=trade_id).exists():
        return None
    book = position_for(account, instrument, order.allocation_id)
    position = Position.objects.select_for_update().filter(pk=book.pk).get()
    before = PositionState(position.quantity, position.cost_basis, position.realised_pnl)
    effect = apply_fill(
        before,
        side=Side(order.side),
        quantity=quantity,
        price=price,
        fee=fee,
        fee_asset=fee_asset(instrument, fee_currency),
    )
    fill = Fill.objects.create(
        order=order,
        account=account,
        instrument=instrument,
        trade_id=trade_id,
        side=order.side,
        quantity=quantity,
        price=price,
        fee=fee,
        fee_currency=fee_currency or instrument.quote,
        realised_pnl=effect.realised,
        is_maker=is_maker,
        executed_at=executed_at,
    )
    if before.quantity == 0 and effect.position.quantity > 0:
        position.opened_at = executed_at
    position.quantity = effect.position.quantity
    position.cost_basis = effect.position.cost_basis
    position.realised_pnl = effect.position.realised_pnl
    position.save(update_fields=["quantity", "cost_basis", "realised_pnl", "opened_at", "updated_at"])
    account.cash += effect.cash_change
    account.save(update_fields=["cash"])
    _order_totals(order, quantity=quantity, price=price, fee=fee, fee_currency=fill.fee_currency)
    return fill


def _order_totals(
    order: Order, *, quantity: Decimal, price: Decimal, fee: Decimal, fee_currency: str
) -> None:
    filled = order.filled_quantity + quantity
    paid = (order.average_price or Decimal(0)) * order.filled_quantity + quantity * price
    order.average_price = money(paid / filled)
    order.filled_quantity = filled
    order.fees += fee
    order.fee_currency = order.fee_currency or fee_currency
    order.save(update_fields=["filled_quantity", "average_price", "fees", "fee_currency", "updated_at"])


def order_finish(order: Order, status: str, *, code: str = "", reason: str = "") -> None:
    """Set a status; a final one also stamps ``closed_at``."""
    order.status = status
    fields = ["status", "updated_at"]
    if status in (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED):
        order.closed_at = order.closed_at or clock.now()
        fields.append("closed_at")
    if code or reason:
        order.reject_code, order.reject_reason = code[:40], reason[:500]
        fields += ["reject_code", "reject_reason"]
    order.save(update_fields=fields)
