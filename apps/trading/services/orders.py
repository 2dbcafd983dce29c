"""Orders in: input checked and rounded, Idempotency-Keys, the risk manager, the broker, cancels.

A paper order is matched at once where it can be; a live one is left NEW for
:func:`apps.trading.services.submission.order_submit`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core import clock
from apps.market import selectors as market
from apps.market.models import Instrument
from apps.strategies.models import Strategy
from apps.trading.accounting import lock_account, order_finish
from apps.trading.brokers import live, paper
from apps.trading.domain.fills import OrderType, Side
from apps.trading.domain.ledger import round_price, round_quantity
from apps.trading.errors import OrderInputError, OrderNotCancelable, TradingError
from apps.trading.models import (
    Account,
    IdempotencyKey,
    Order,
    OrderSource,
    OrderStatus,
    RiskRefusal,
    StrategyAllocation,
    TimeInForce,
)
from apps.trading.services import risk_gate

CLIENT_ORDER_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:/_-")
PRICED_TYPES = (OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT)
TRIGGERED_TYPES = (OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT)


class IdempotencyConflict(TradingError):
    """An Idempotency-Key already used for a different request."""


@dataclass(frozen=True)
class Placement:
    """The outcome of an order request: the order, whether this request created it (False: an earlier
    request with the same Idempotency-Key or client order id did), and the refusal if risk refused it."""

    order: Order
    created: bool
    refusal: RiskRefusal | None


def order_place(
    *,
    account: Account,
    symbol: str = "",
    instrument: Instrument | None = None,
    side: str,
    type: str,
    quantity: Decimal,
    price: Decimal | None = None,
    stop_price: Decimal | None = None,
    time_in_force: str = TimeInForce.GTC,
    client_order_id: str = "",
    source: str = OrderSource.API,
    created_by: str,
    user: AbstractBaseUser | None = None,
    idempotency_key: str = "",
    strategy: Strategy | None = None,
    allocation: StrategyAllocation | None = None,
    attach_stop_loss_pct: Decimal | None = None,
    attach_take_profit_pct: Decimal | None = None,
    oco_group: str = "",
    parent: Order | None = None,
    at: datetime | None = None,
    listing: str | None = None,
) -> Placement:
    """Store an order, pass it through the risk manager and hand it to the account's broker.

    Paper: a market order (or a limit crossing the last price) fills now; others rest. Live: the
    order stays NEW and the caller enqueues :func:`order_submit` after commit. A refused order is
    stored REJECTED with its refusal, and nothing else changes. The same ``idempotency_key`` (per
    user) or ``client_order_id`` (per account) again returns the first order and creates nothing.
    For a MARKET order, ``price`` is the price the caller expects: checked against the price band,
    never sent. ``at`` is the moment of the order (default now): a paper order rests from then on.
    ``instrument`` may be given instead of ``symbol``; ``listing`` names the exchange whose listing of
    the symbol to trade (see :func:`order_instrument`). A filled buy with ``attach_*_pct`` is then
    protected by :func:`protection_attach`. The order trades ``allocation``'s book (a strategy's own
    position), or the manual book without one. ``created_by`` names who placed it: the username, or
    the job (``orchestrator``, a command). Raises OrderInputError naming the field, or
    IdempotencyConflict.
    """
    instrument = instrument or order_instrument(
        symbol=symbol, exchange=account.exchange, live=account.is_live, listing=listing
    )
    intent = _order_input(
        account, instrument, side, type, quantity, price, stop_price, time_in_force, client_order_id
    )
    request_hash = _request_hash(account, intent)
    try:
        with transaction.atomic():
            locked = lock_account(account.pk)
            replay = _replay(locked, user, idempotency_key, intent["client_order_id"], request_hash)
            if replay is not None:
                return replay
            order = Order.objects.create(
                account=locked,
                source=source,
                created_by=created_by[:150],
                strategy=strategy,
                allocation=allocation,
                attach_stop_loss_pct=attach_stop_loss_pct,
                attach_take_profit_pct=attach_take_profit_pct,
                oco_group=oco_group,
                parent=parent,
                **{k: v for k, v in intent.items() if k not in ("expected_price", "client_order_id")},
                client_order_id=intent["client_order_id"] or _new_client_order_id(locked),
            )
            if idempotency_key and user is not None:
                _remember_key(user, idempotency_key, request_hash, order)
            return _decide(locked, order, intent["expected_price"], at or clock.now())
    except _KeyTaken:
        # The key exists: its transaction committed before ours failed. A missing row raises DoesNotExist.
        used = IdempotencyKey.objects.select_related("order").get(user=user, key=idempotency_key)
        return _key_replay(used, idempotency_key, request_hash)


def _order_input(
    account: Account,
    instrument: Instrument,
    side: str,
    type: str,
    quantity: Decimal,
    price: Decimal | None,
    stop_price: Decimal | None,
    time_in_force: str,
    client_order_id: str,
) -> dict:
    """The order's fields, validated and rounded to the market's steps; OrderInputError names the field."""
    side = _choice("side", side, Side)
    type = _choice("type", type, OrderType)
    if time_in_force not in TimeInForce.values:
        raise OrderInputError("time_in_force", f"choose one of {', '.join(TimeInForce.values)}")
    if client_order_id and (len(client_order_id) > 36 or not set(client_order_id) <= CLIENT_ORDER_ID_CHARS):
        raise OrderInputError("client_order_id", "1 to 36 letters, digits and . : / _ -")
    if instrument.quote != account.quote_currency:
        raise OrderInputError(
            "symbol",
            f"{instrument.symbol} is quoted in {instrument.quote}; "
            f"account {account.pk} holds {account.quote_currency}",
        )
    if quantity is None or quantity <= 0:
        raise OrderInputError("quantity", "must be above 0")
    if type in PRICED_TYPES and (price is None or price <= 0):
        raise OrderInputError("price", f"a {type} order needs a limit price above 0")
    if type in TRIGGERED_TYPES and (stop_price is None or stop_price <= 0):
        raise OrderInputError("stop_price", f"a {type} order needs a stop_price above 0")
    if type not in TRIGGERED_TYPES and stop_price is not None:
        raise OrderInputError("stop_price", f"a {type} order has no stop price")
    if type in (OrderType.STOP_LOSS, OrderType.TAKE_PROFIT) and price is not None:
        raise OrderInputError(
            "price", f"a {type} order fills at the market once triggered: give stop_price only"
        )
    if type == OrderType.MARKET and price is not None and price <= 0:
        raise OrderInputError("price", "must be above 0")
    rounded = round_quantity(quantity, instrument.amount_step)
    if rounded <= 0:
        raise OrderInputError(
            "quantity", f"{quantity} is less than one step ({instrument.amount_step}) of {instrument.symbol}"
        )
    return {
        "instrument": instrument,
        "side": side,
        "type": type,
        "quantity": rounded,
        "price": round_price(price, instrument.price_step)
        if price is not None and type in PRICED_TYPES
        else None,
        "stop_price": round_price(stop_price, instrument.price_step) if stop_price is not None else None,
        "time_in_force": time_in_force,
        "client_order_id": client_order_id,
        "expected_price": price if type == OrderType.MARKET else None,
    }


def _choice(field: str, value: str, choices: type[Side] | type[OrderType]) -> Any:
    try:
        return choices(str(value).upper())
    except ValueError:
        raise OrderInputError(field, f"{value!r} is not one of {', '.join(choices)}") from None


def order_instrument(
    *, symbol: str, exchange: str, live: bool = False, listing: str | None = None
) -> Instrument:
    """The market an order on an account of ``exchange`` trades: the symbol's listing there or, for a
    paper order, its only listing anywhere, or the one on ``listing`` when the caller names it (a
    symbol stored for several exchanges, e.g. after a replay). A live order trades on its account's
    exchange only. OrderInputError names the field otherwise."""
    if listing:
        if live and listing != exchange:
            raise OrderInputError("exchange", f"a live order trades on its account's exchange, {exchange}")
        try:
            return market.instrument_resolve(symbol=symbol, exchange=listing)
        except market.InstrumentNotFound as error:
            raise OrderInputError("exchange", str(error)) from None
    try:
        instrument = market.instrument_resolve(symbol=symbol, exchange=exchange)
    except market.InstrumentNotFound as error:
        if live:
            raise OrderInputError("symbol", str(error)) from None
        try:  # paper trading may use any exchange's prices
            instrument = market.instrument_resolve(symbol=symbol)
        except market.InstrumentNotFound as anywhere:
            raise OrderInputError("symbol", str(anywhere)) from None
    return instrument


def _request_hash(account: Account, intent: dict) -> str:
    canonical = {
        "account": account.pk,
        **{key: str(value) for key, value in intent.items() if key != "instrument"},
        "symbol": intent["instrument"].symbol,
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _new_client_order_id(account: Account) -> str:
    return f"t{account.pk}-{uuid.uuid4().hex[:24]}"


class _KeyTaken(Exception):
    """Another request stored this Idempotency-Key while ours ran (it held another account's lock)."""


def _remember_key(user: AbstractBaseUser, key: str, request_hash: str, order: Order) -> None:
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(user=user, key=key, request_hash=request_hash, order=order)
    except IntegrityError:
        raise _KeyTaken from None


def _replay(
    account: Account, user: AbstractBaseUser | None, key: str, client_order_id: str, request_hash: str
) -> Placement | None:
    """The earlier order for this key or client order id, if there is one."""
    if key and user is not None:
        used = IdempotencyKey.objects.filter(user=user, key=key).select_related("order").first()
        if used is not None:
            return _key_replay(used, key, request_hash)
    if client_order_id:
        earlier = account.orders.filter(client_order_id=client_order_id).first()
        if earlier is not None:
            if key and user is not None:
                _remember_key(user, key, request_hash, earlier)
            return _placement_of(earlier)
    return None


def _key_replay(used: IdempotencyKey, key: str, request_hash: str) -> Placement:
    """The first answer to ``key``, if this request is the one it was used for."""
    if used.request_hash != request_hash:
        raise IdempotencyConflict(f"Idempotency-Key {key!r} was used for a different request")
    return _placement_of(used.order)


def _placement_of(order: Order) -> Placement:
    return Placement(order=order, created=False, refusal=RiskRefusal.objects.filter(order=order).first())


def _decide(account: Account, order: Order, expected_price: Decimal | None, at: datetime) -> Placement:
    refusal, last = risk_gate.order_check(
        account=account, order=order, expected_price=expected_price, now=timezone.now()
    )
    if refusal is not None:
        return Placement(
            order=order, created=True, refusal=risk_gate.refusal_record(order=order, refusal=refusal)
        )
    if not account.is_live:
        paper.accept(account=account, order=order, last_price=last, at=at)
        protection_attach(order=order, at=at)
    return Placement(order=order, created=True, refusal=None)


def protection_attach(*, order: Order, at: datetime | None = None) -> list[Order]:
    """Protect a filled buy with the stop-loss and take-profit it asked for (one cancels the other),
    through the risk manager like any order. Safe to call again: the protective orders' client order
    ids derive from the entry's. Returns the protective orders (live ones are NEW: submit them).

    A live entry gets its stop-loss only: on Binance a stop and a target for the same coins need an
    OCO order list, which this broker does not place.
    """
    wanted = {
        OrderType.STOP_LOSS: order.attach_stop_loss_pct,
        OrderType.TAKE_PROFIT: order.attach_take_profit_pct,
    }
    if order.status != OrderStatus.FILLED or order.side != Side.BUY or not any(wanted.values()):
        return []
    if order.account.is_live:
        wanted.pop(OrderType.TAKE_PROFIT)
    received = order.filled_quantity - (order.fees if order.fee_currency == order.instrument.base else 0)
    placed = []
    for type, pct in wanted.items():
        if not pct:
            continue
        factor = 1 - pct if type == OrderType.STOP_LOSS else 1 + pct
        placement = order_place(
            account=order.account,
            instrument=order.instrument,
            side=Side.SELL,
            type=type,
            quantity=received,
            stop_price=order.average_price * factor,
            client_order_id=f"{order.client_order_id[:32]}-{'sl' if type == OrderType.STOP_LOSS else 'tp'}",
            source=OrderSource.PROTECTIVE,
            created_by=order.created_by,  # whoever placed the entry asked for its protection
            strategy=order.strategy,
            allocation=order.allocation,
            oco_group=f"oco-{order.pk}",
            parent=order,
            at=at,
        )
        placed.append(placement.order)
    return placed


def order_cancel(*, order: Order) -> Order:
    """Cancel an order that may still fill. A live order resting on the exchange is canceled there.

    Raises OrderNotCancelable for a final order, or one whose outcome on the exchange is unknown.
    """
    if order.account.is_live and order.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
        live.cancel(order, live.exchange_client_for(order.account))
        order.refresh_from_db()
        return order
    with transaction.atomic():
        lock_account(order.account_id)
        order.refresh_from_db()
        cancelable = (OrderStatus.NEW,) if order.account.is_live else (OrderStatus.NEW, OrderStatus.OPEN)
        if order.status not in cancelable:
            raise OrderNotCancelable(f"order {order.pk} is {order.status} and cannot be canceled now")
        order_finish(order, OrderStatus.CANCELED, reason="canceled on request")
    return order


def idempotency_keys_prune(*, now: datetime | None = None) -> int:
    """Forget Idempotency-Keys older than ``TRADING_IDEMPOTENCY_KEY_TTL_HOURS``; return how many."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.TRADING_IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
