"""The paper broker: fills simulated from the last price and from candles, by the backtester's rules.

A market order fills at once at the latest price moved by the account's slippage, paying its fee
rate on the notional (in the quote currency, as the backtester does). A limit order that crosses
the last price fills at once the same way, never worse than its limit. Every other order rests and
is matched against each candle that opens at or after its ``match_from`` (the time it was placed):
see :mod:`apps.trading.domain.fills` for the rules. An order's quantity always fills whole.

Everything here runs inside the caller's transaction, holding the account's row lock.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from apps.trading.accounting import fill_record, order_finish
from apps.trading.domain.fills import (
    SLIPPING_TYPES,
    Bar,
    ExitReason,
    OrderType,
    Side,
    bracket_exit,
    stop_limit_outcome,
    touch_price,
    triggers_at,
    with_slippage,
)
from apps.trading.domain.ledger import QUANTUM, buy_quantity_for, fee_for, money
from apps.trading.models import Account, Order, OrderStatus, Position, TimeInForce


def market_fill_price(account: Account, side: Side, last_price: Decimal) -> Decimal:
    """Where a market order fills now: the last price moved by the slippage, to the ledger's places."""
    return money(with_slippage(last_price, side, account.paper_slippage))


def cost_of(account: Account, quantity: Decimal, price: Decimal) -> Decimal:
    """What buying ``quantity`` at ``price`` takes from cash, the fee included, as a fill books it."""
    notional = money(quantity * price)
    return notional + fee_for(notional, account.paper_fee_rate)


def buy_cost(account: Account, order: Order, last_price: Decimal) -> Decimal:
    """The most a buy order may cost when it fills: at the slipped last price for a market order, at
    its limit for a limit order, at its slipped stop for a stop (a gap past the stop may cost more:
    the fill itself checks the cash again)."""
    if order.type == OrderType.MARKET:
        return cost_of(account, order.quantity, market_fill_price(account, Side.BUY, last_price))
    if order.type in (OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT):
        return cost_of(account, order.quantity, order.price)
    return cost_of(account, order.quantity, market_fill_price(account, Side.BUY, order.stop_price))


def affordable_quantity(
    account: Account, cash: Decimal, last_price: Decimal, step: Decimal | None
) -> Decimal:
    """The most a market buy can take for ``cash``, fees included, rounded down to ``step``."""
    price = market_fill_price(account, Side.BUY, last_price)
    quantity = buy_quantity_for(cash, price, account.paper_fee_rate, step)
    unit = step or QUANTUM
    while quantity > 0 and cost_of(account, quantity, price) > cash:
        quantity -= unit  # the estimate above may be a rounding unit too high
    return max(quantity, Decimal(0))


def accept(*, account: Account, order: Order, last_price: Decimal, at: datetime) -> None:
    """Execute an order the risk manager passed: fill it now, or leave it resting (OPEN)."""
    side = Side(order.side)
    slipped = market_fill_price(account, side, last_price)
    if order.type == OrderType.MARKET:
        _fill(account, order, slipped, at)
    elif order.type == OrderType.LIMIT and triggers_at(side, OrderType.LIMIT, order.price, last_price):
        _fill(
            account, order, min(slipped, order.price) if side == Side.BUY else max(slipped, order.price), at
        )
    elif order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
        order_finish(
            order, OrderStatus.EXPIRED, reason=f"{order.time_in_force}: not fillable at {last_price}"
        )
    else:
        order.match_from = at
        order.save(update_fields=["match_from"])
        order_finish(order, OrderStatus.OPEN)


def match_bar(
    *, account: Account, orders: list[Order], bar: Bar[Decimal], opened_at: datetime
) -> list[Order]:
    """Match the account's resting orders in one instrument against one candle; return those filled.

    Sells go first (they free cash), stops before everything else; the orders of an OCO group are
    matched as one, the first to fill cancelling the rest.
    """
    filled = []
    for unit in _units(orders):
        live = [o for o in unit if o.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)]
        if not live:
            continue
        slippage = account.paper_slippage
        hit = (
            _bracket_hit(live, bar, slippage)
            if _is_bracket(live)
            else _first_hit(live, bar, opened_at, slippage)
        )
        if hit is None:
            continue
        order, price = hit
        if _fill(account, order, price, opened_at):
            filled.append(order)
    return filled


def _units(orders: list[Order]) -> list[list[Order]]:
    groups: dict[str, list[Order]] = defaultdict(list)
    for order in orders:
        groups[order.oco_group or f"order-{order.pk}"].append(order)
    for members in groups.values():
        members.sort(key=_priority)
    return sorted(groups.values(), key=lambda members: _priority(members[0]))


def _priority(order: Order) -> tuple[int, int, int]:
    stop_first = 0 if order.type in (OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT) else 1
    return (0 if order.side == Side.SELL else 1, stop_first, order.pk)


def _is_bracket(orders: list[Order]) -> bool:
    types = sorted(o.type for o in orders)
    return types == [OrderType.STOP_LOSS, OrderType.TAKE_PROFIT] and orders[0].side == orders[1].side


def _bracket_hit(orders: list[Order], bar: Bar[Decimal], slippage: Decimal) -> tuple[Order, Decimal] | None:
    stop = next(o for o in orders if o.type == OrderType.STOP_LOSS)
    target = next(o for o in orders if o.type == OrderType.TAKE_PROFIT)
    exit_ = bracket_exit(bar, Side(stop.side), stop.stop_price, target.stop_price)
    if exit_ is None:
        return None
    price, reason = exit_
    order = stop if reason == ExitReason.STOP_LOSS else target
    return order, _slipped(order, price, slippage)


def _first_hit(
    orders: list[Order], bar: Bar[Decimal], opened_at: datetime, slippage: Decimal
) -> tuple[Order, Decimal] | None:
    for order in orders:
        price = _resting_fill_price(order, bar, opened_at, slippage)
        if price is not None:
            return order, price
    return None


def _resting_fill_price(
    order: Order, bar: Bar[Decimal], opened_at: datetime, slippage: Decimal
) -> Decimal | None:
    side, kind = Side(order.side), OrderType(order.type)
    if kind == OrderType.STOP_LOSS_LIMIT and order.triggered_at is None:
        outcome = stop_limit_outcome(side, order.stop_price, order.price, bar)
        if outcome.triggered:
            order.triggered_at = opened_at
            order.save(update_fields=["triggered_at", "updated_at"])
        return outcome.fill_price
    if kind in (OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT):
        return touch_price(side, OrderType.LIMIT, order.price, bar)
    touched = touch_price(side, kind, order.stop_price, bar)
    return None if touched is None else _slipped(order, touched, slippage)


def _slipped(order: Order, price: Decimal, slippage: Decimal) -> Decimal:
    if OrderType(order.type) not in SLIPPING_TYPES:
        return price
    return with_slippage(price, Side(order.side), slippage)


def _fill(account: Account, order: Order, price: Decimal, at: datetime) -> bool:
    """Fill the rest of ``order`` at ``price``; expire it instead if the cash or holding is not there."""
    price = money(price)
    quantity = order.remaining_quantity
    fee = fee_for(money(quantity * price), account.paper_fee_rate)
    held = Position.objects.filter(
        account=account, instrument=order.instrument, allocation_id=order.allocation_id
    ).values_list("quantity", flat=True)
    if order.side == Side.BUY and cost_of(account, quantity, price) > account.cash:
        order_finish(
            order, OrderStatus.EXPIRED, code="insufficient_funds", reason=f"{account.cash} cash at fill time"
        )
        return False
    if order.side == Side.SELL and quantity > (held.first() or 0):
        order_finish(
            order, OrderStatus.EXPIRED, code="insufficient_position", reason="the book's position is smaller"
        )
        return False
    fill_record(
        account=account,
        order=order,
        quantity=quantity,
        price=price,
        fee=fee,
        fee_currency=order.instrument.quote,
        executed_at=at,
        is_maker=order.type == OrderType.LIMIT and order.status == OrderStatus.OPEN,
    )
    order_finish(order, OrderStatus.FILLED)
    _cancel_orphans(account, order)
    return True


def _cancel_orphans(account: Account, filled: Order) -> None:
    """Cancel the rest of the filled order's OCO group: one of them filling cancels the others."""
    if not filled.oco_group:
        return
    siblings = account.orders.filter(
        oco_group=filled.oco_group, status__in=(OrderStatus.NEW, OrderStatus.OPEN)
    )
    for order in siblings.exclude(pk=filled.pk):
        order_finish(order, OrderStatus.CANCELED, reason=f"order {filled.pk} of its OCO group filled")
