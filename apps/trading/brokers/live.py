"""The live broker: orders to the exchange through ccxt, each sent at most once, and reconciliation.

The order of events is what keeps an order from being lost or placed twice:

1. The order is stored NEW (risk-checked) and committed; a task claims it with a conditional
   UPDATE to SUBMITTING, committed before anything is sent, so a redelivered task sends nothing.
2. Quantity and price are rounded to the exchange's steps and checked against its minimums.
3. One request, carrying the client order id. An answer records the order; a refusal rejects it
   with the exchange's reason; a lost answer (timeout, 5xx) leaves it UNKNOWN.
4. An UNKNOWN order (or a SUBMITTING one whose worker died) is resolved by asking the exchange for
   its client order id: found, it is recorded; still unknown to the exchange after
   ``TRADING_UNKNOWN_ORDER_GRACE_SECONDS``, it was never placed and is rejected. It is never resent.

Network calls are made outside the account's row lock; what they return is booked under it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.market.models import Instrument
from apps.trading import selectors
from apps.trading.accounting import fill_record, lock_account, order_finish, position_for
from apps.trading.brokers.exchange import ExchangeClient, ExchangeOrder, ExchangeTrade
from apps.trading.domain.fills import OrderType, Side
from apps.trading.domain.ledger import LedgerError, money, round_price, round_quantity
from apps.trading.errors import ExchangeRejected, OrderNotCancelable, OutcomeUnknown
from apps.trading.models import Account, Order, OrderSource, OrderStatus, Position, RepairKind

logger = logging.getLogger(__name__)

OPEN_ON_EXCHANGE = (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)


@dataclass
class Change:
    """One difference found between the ledger and the exchange, as a reconciliation records it."""

    kind: RepairKind
    message: str
    order: Order | None = None
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)


def exchange_client_for(account: Account) -> ExchangeClient:
    """A ccxt client keyed with the account's (decrypted) exchange keys."""
    api_key, secret = account.api_keys()
    return ExchangeClient(
        account.exchange,
        api_key=api_key,
        secret=secret,
        urls_override=settings.CCXT_URLS_OVERRIDE.get(account.exchange),
        timeout_ms=settings.CCXT_TIMEOUT_MS,
    )


def submit(order: Order, client: ExchangeClient) -> list[Change]:
    """Send a claimed (SUBMITTING) order once and record what the exchange answered."""
    market = client.market(order.instrument.ccxt_symbol)
    quantity = round_quantity(order.quantity, market.amount_step)
    price = round_price(order.price, market.price_step) if order.price is not None else None
    stop = round_price(order.stop_price, market.price_step) if order.stop_price is not None else None
    reference = price or stop or selectors.last_price(instrument=order.instrument)
    problem = _below_minimums(quantity, reference, market.min_amount, market.min_cost)
    if problem:
        reject(order, *problem)
        return []
    if (quantity, price, stop) != (order.quantity, order.price, order.stop_price):
        order.quantity, order.price, order.stop_price = quantity, price, stop
        order.save(update_fields=["quantity", "price", "stop_price", "updated_at"])
    try:
        placed = client.create_order(
            symbol=order.instrument.ccxt_symbol,
            side=Side(order.side),
            type=OrderType(order.type),
            quantity=quantity,
            price=price,
            stop_price=stop,
            time_in_force=order.time_in_force,
            client_order_id=order.client_order_id,
        )
    except ExchangeRejected as error:
        reject(order, error.code, error.message)
        return []
    except OutcomeUnknown as error:
        logger.warning("order %s: outcome unknown (%s); asking the exchange", order.client_order_id, error)
        Order.objects.filter(pk=order.pk, status=OrderStatus.SUBMITTING).update(
            status=OrderStatus.UNKNOWN, reject_reason=str(error)[:500], updated_at=timezone.now()
        )
        order.refresh_from_db()
        return resolve(order, client)
    return apply(order, placed, client)


def _below_minimums(
    quantity: Decimal, reference: Decimal | None, min_amount: Decimal | None, min_cost: Decimal | None
) -> tuple[str, str] | None:
    if quantity <= 0 or (min_amount is not None and quantity < min_amount):
        return (
            "min_amount",
            f"quantity {quantity} after rounding is below the exchange's minimum {min_amount or 0}",
        )
    if min_cost is not None and reference is not None and money(quantity * reference) < min_cost:
        return (
            "min_notional",
            f"notional {money(quantity * reference)} is below the exchange's minimum {min_cost}",
        )
    return None


def reject(order: Order, code: str, reason: str) -> None:
    """Store the order REJECTED with the exchange's (or the pre-send check's) reason."""
    with transaction.atomic():
        lock_account(order.account_id)
        order.refresh_from_db()
        order_finish(order, OrderStatus.REJECTED, code=code, reason=reason)
    logger.info("order %s rejected: %s", order.client_order_id, code)


def resolve(order: Order, client: ExchangeClient, *, now: datetime | None = None) -> list[Change]:
    """Settle an UNKNOWN (or stale SUBMITTING) order by its client order id; never resend it."""
    found = client.order_by_client_id(
        symbol=order.instrument.ccxt_symbol, client_order_id=order.client_order_id
    )
    if found is not None:
        return [
            Change(
                RepairKind.ORDER_RESOLVED,
                f"found on the exchange as {found.status}",
                order,
                {"status": order.status},
            ),
            *apply(order, found, client),
        ]
    waited = (now or timezone.now()) - (order.submitted_at or order.created_at)
    if waited < timedelta(seconds=settings.TRADING_UNKNOWN_ORDER_GRACE_SECONDS):
        return []
    before = order.status
    reject(
        order,
        "not_placed",
        f"the exchange has no order {order.client_order_id} {int(waited.total_seconds())}s after it was sent",
    )
    return [
        Change(RepairKind.ORDER_RESOLVED, "never placed: unknown to the exchange", order, {"status": before})
    ]


def apply(order: Order, found: ExchangeOrder, client: ExchangeClient) -> list[Change]:
    """Record the exchange's view of ``order``: its id, its status and every fill not booked yet."""
    trades = list(found.trades)
    if found.filled > sum((t.quantity for t in trades), Decimal(0)) and found.exchange_order_id:
        trades = client.trades(symbol=order.instrument.ccxt_symbol, exchange_order_id=found.exchange_order_id)
    changes: list[Change] = []
    with transaction.atomic():
        account = lock_account(order.account_id)
        order = Order.objects.select_related("instrument").select_for_update().get(pk=order.pk)
        for trade in trades:
            if _book(account, order, trade):
                changes.append(
                    Change(
                        RepairKind.FILL_ADDED,
                        f"fill {trade.trade_id}: {trade.quantity} @ {trade.price}",
                        order,
                    )
                )
        if order.exchange_order_id != found.exchange_order_id:
            order.exchange_order_id = found.exchange_order_id
            order.save(update_fields=["exchange_order_id", "updated_at"])
        if order.status != found.status:
            changes.append(
                Change(
                    RepairKind.ORDER_STATUS,
                    f"{order.status} -> {found.status}",
                    order,
                    {"status": order.status},
                    {"status": found.status},
                )
            )
            order_finish(order, found.status)
    return changes


def _book(account: Account, order: Order, trade: ExchangeTrade) -> bool:
    try:
        booked = fill_record(
            account=account,
            order=order,
            quantity=trade.quantity,
            price=trade.price,
            fee=trade.fee,
            fee_currency=trade.fee_currency,
            executed_at=trade.executed_at,
            trade_id=trade.trade_id,
            is_maker=trade.is_maker,
        )
    except LedgerError as error:
        # The exchange sold more than the ledger holds (holdings it never saw bought): the balance
        # reconciliation sets the position from the exchange's balance instead.
        logger.error("order %s: fill %s not booked: %s", order.client_order_id, trade.trade_id, error)
        return False
    return booked is not None


def cancel(order: Order, client: ExchangeClient) -> list[Change]:
    """Cancel an order resting on the exchange; if it is gone already, record what became of it."""
    if not order.exchange_order_id:
        raise OrderNotCancelable(
            f"order {order.pk} is {order.status}: its outcome on the exchange is not known yet"
        )
    symbol = order.instrument.ccxt_symbol
    answer = client.cancel_order(symbol=symbol, exchange_order_id=order.exchange_order_id)
    if answer is None:
        answer = client.order_by_id(symbol=symbol, exchange_order_id=order.exchange_order_id)
    if answer is None:
        raise OrderNotCancelable(f"the exchange has no order {order.exchange_order_id}")
    return apply(order, answer, client)


def reconcile(
    account: Account,
    client: ExchangeClient,
    *,
    record: Callable[[list[Change]], None],
    now: datetime | None = None,
) -> None:
    """Compare the account with the exchange and repair the ledger, handing each step's changes to
    ``record`` as soon as they are made (a failure later on loses none of them).

    Our orders that may still change are looked up by client order id (fills added, statuses
    synced, unknown outcomes settled); orders resting on the exchange that the ledger does not
    know are imported; last, cash and positions are set to the exchange's balances.
    """
    now = now or timezone.now()
    for order in _orders_to_check(account, now):
        if order.status in (OrderStatus.UNKNOWN, OrderStatus.SUBMITTING):
            record(resolve(order, client, now=now))
            continue
        found = client.order_by_client_id(
            symbol=order.instrument.ccxt_symbol, client_order_id=order.client_order_id
        )
        if found is None:
            logger.warning(
                "order %s is %s here and unknown to the exchange", order.client_order_id, order.status
            )
            continue
        record(apply(order, found, client))
    record(_import_unknown_open_orders(account, client))
    record(_sync_balances(account, client))


def _orders_to_check(account: Account, now: datetime) -> list[Order]:
    stale = now - timedelta(seconds=settings.TRADING_SUBMIT_STALE_SECONDS)
    orders = account.orders.select_related("instrument")
    pending = orders.filter(status__in=(*OPEN_ON_EXCHANGE, OrderStatus.UNKNOWN)) | orders.filter(
        status=OrderStatus.SUBMITTING, submitted_at__lt=stale
    )
    # A filled order whose fills were not all booked (the trades could not be fetched at the time).
    unbooked = (
        orders.filter(status=OrderStatus.FILLED)
        .annotate(booked=Coalesce(Sum("fills__quantity"), Decimal(0)))
        .filter(booked__lt=F("quantity"))
    )
    return list(pending.order_by("created_at")) + list(unbooked)


def _import_unknown_open_orders(account: Account, client: ExchangeClient) -> list[Change]:
    known = set(account.orders.values_list("client_order_id", flat=True))
    changes = []
    for found in client.open_orders():
        if found.client_order_id in known or found.type is None:
            continue
        instrument = Instrument.objects.filter(exchange=account.exchange, symbol=found.symbol).first()
        if instrument is None:
            logger.warning(
                "account %s: open order %s in unknown market %s",
                account.pk,
                found.exchange_order_id,
                found.symbol,
            )
            continue
        order = Order.objects.create(
            account=account,
            instrument=instrument,
            client_order_id=found.client_order_id[:36] or f"exchange-{found.exchange_order_id}",
            exchange_order_id=found.exchange_order_id,
            source=OrderSource.EXCHANGE,
            created_by="reconciliation",  # found resting on the exchange, placed by someone outside
            side=found.side,
            type=found.type,
            quantity=found.quantity,
            price=found.price,
            stop_price=found.stop_price,
            status=found.status,
            filled_quantity=found.filled,
            average_price=found.average_price,
        )
        changes.append(
            Change(
                RepairKind.ORDER_IMPORTED,
                f"{found.side} {found.quantity} {found.symbol} {found.type} placed outside the system; "
                "its earlier fills are in the balances, its later ones will be booked",
                order,
                after={"exchange_order_id": found.exchange_order_id, "status": found.status},
            )
        )
    return changes


def _sync_balances(account: Account, client: ExchangeClient) -> list[Change]:
    balances = client.balances()
    changes = []
    with transaction.atomic():
        account = lock_account(account.pk)
        cash = balances[account.quote_currency].total if account.quote_currency in balances else Decimal(0)
        if cash != account.cash:
            changes.append(
                Change(
                    RepairKind.CASH,
                    f"cash {account.cash} -> {cash} (the exchange's balance)",
                    None,
                    {"cash": str(account.cash)},
                    {"cash": str(cash)},
                )
            )
            account.cash = cash
            account.save(update_fields=["cash"])
        in_use = Q(orders__account=account) | Q(pk__in=account.positions.values("instrument"))
        by_asset: dict[str, list[Instrument]] = {}
        for instrument in Instrument.objects.filter(in_use).distinct():
            by_asset.setdefault(instrument.base, []).append(instrument)
        for asset, traded in by_asset.items():
            if len(traded) != 1:
                logger.warning(
                    "account %s: %s is the base of several markets; its positions are not reconciled",
                    account.pk,
                    asset,
                )
                continue
            held = balances[asset].total if asset in balances else Decimal(0)
            change = _repair_position(account, traded[0], held)
            if change:
                changes.append(change)
    return changes


def _repair_position(account: Account, instrument: Instrument, held: Decimal) -> Change | None:
    """Make the account's books add up to what the exchange holds. The exchange knows one balance,
    not the books: the difference goes to the manual book (strategies' books are their own fills'),
    and only when the manual book cannot absorb a shortfall are the allocations' books reduced."""
    books = list(Position.objects.filter(account=account, instrument=instrument).order_by("allocation_id"))
    total = sum((book.quantity for book in books), Decimal(0))
    if total == held:
        return None
    before = {"quantity": str(total)}
    manual = position_for(account, instrument)
    if held > total:
        price = selectors.last_price(instrument=instrument) or manual.average_entry or Decimal(0)
        manual.cost_basis += money((held - total) * price)
        manual.quantity += held - total
        manual.save(update_fields=["quantity", "cost_basis", "updated_at"])
    else:
        shortfall = total - held
        for book in [manual, *(b for b in books if b.allocation_id is not None)]:
            book.refresh_from_db()
            taken = min(shortfall, book.quantity)
            if taken:
                book.cost_basis = money(book.cost_basis * (book.quantity - taken) / book.quantity)
                book.quantity -= taken
                book.save(update_fields=["quantity", "cost_basis", "updated_at"])
                shortfall -= taken
    return Change(
        RepairKind.POSITION,
        f"{instrument.symbol}: {before['quantity']} -> {held} (the exchange's {instrument.base} balance)",
        None,
        before,
        {"quantity": str(held)},
    )
