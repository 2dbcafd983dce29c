"""The risk manager's rules, as pure functions of an account's state, its limits and one order.

Every order passes :func:`check_order`, whatever placed it (the API, a strategy, an LLM, the
command line); the first rule it breaks refuses it with a machine-readable code and the limit it
broke. A limit that is None is off. Before that, :func:`next_state` moves the account's trading
state: a drawdown from the equity peak beyond ``max_drawdown_pct`` halts it (nothing new reaches the
broker until a person resumes it); a loss since the start of the UTC day beyond
``max_daily_loss_pct`` puts it in ``reducing``, where only orders that shrink a position pass.

Notionals are valued at the order's own price where it has one (a limit price, else a stop
price), else at the last price. Position and exposure limits count what is held plus what open
buy orders may still add, so that resting orders cannot add up past a limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from .fills import OrderType, Side, triggers_at
from .ledger import ZERO, money
from .portfolio import ratio


class TradingState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


class RefusalCode(StrEnum):
    TRADING_HALTED = "trading_halted"
    REDUCING_ONLY = "reducing_only"
    NO_PRICE = "no_price"
    MIN_AMOUNT = "min_amount"
    MIN_NOTIONAL = "min_notional"
    PRICE_BAND = "price_band"
    WOULD_TRIGGER_IMMEDIATELY = "would_trigger_immediately"
    ORDER_RATE = "order_rate"
    MAX_OPEN_ORDERS = "max_open_orders"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    MAX_POSITION_NOTIONAL = "max_position_notional"
    MAX_POSITION_PCT = "max_position_pct"
    MAX_EXPOSURE_PCT = "max_exposure_pct"
    MAX_OPEN_POSITIONS = "max_open_positions"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    INSUFFICIENT_POSITION = "insufficient_position"
    LIVE_TRADING_DISABLED = "live_trading_disabled"


@dataclass(frozen=True)
class RiskLimits:
    """An account's limits; fractions are of equity (0.2 = 20%); None switches a limit off."""

    max_order_notional: Decimal | None = None
    max_position_notional: Decimal | None = None
    max_position_pct: Decimal | None = None
    max_exposure_pct: Decimal | None = None
    max_open_orders: int | None = None
    max_open_positions: int | None = None
    price_band_pct: Decimal | None = None
    max_orders_per_minute: int | None = None
    max_daily_loss_pct: Decimal | None = None
    max_drawdown_pct: Decimal | None = None


@dataclass(frozen=True)
class MarketRules:
    """The exchange's minimums for the instrument (None: the exchange states none)."""

    min_amount: Decimal | None = None
    min_notional: Decimal | None = None


@dataclass(frozen=True)
class AccountRisk:
    """The account as the risk manager sees it when an order arrives (read under the account lock).

    ``instrument_*`` figures are for the order's instrument, every book of the account together;
    ``open_buy_notional`` is what every open buy order may still spend; ``available_cash`` is cash
    minus that; ``position_quantity`` is what the order's own book holds (a strategy allocation's,
    or the manual book) and ``sellable_quantity`` that minus what the book's open sells already cover.
    """

    state: TradingState
    equity: Decimal
    peak_equity: Decimal
    day_start_equity: Decimal
    positions_value: Decimal
    open_buy_notional: Decimal
    available_cash: Decimal
    instrument_position_value: Decimal
    instrument_open_buy_notional: Decimal
    position_quantity: Decimal
    sellable_quantity: Decimal
    open_orders: int
    open_positions: int
    orders_last_minute: int


@dataclass(frozen=True)
class OrderIntent:
    """An order as the risk manager checks it: rounded to the market's steps already.

    ``expected_price`` is the price a client said it expects for a market order (checked against
    the band, never sent). ``cost`` is the most a buy may take from cash, fees included, as the
    broker computes it (None: its notional).
    ``check_price_band`` is off for the stop-loss and take-profit the system attaches to a fill: their
    levels come from validated strategy parameters, not from a hand that may slip.
    """

    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    last_price: Decimal | None
    expected_price: Decimal | None = None
    cost: Decimal | None = None
    check_price_band: bool = True

    @property
    def reference_price(self) -> Decimal | None:
        return self.price or self.stop_price or self.last_price

    @property
    def notional(self) -> Decimal:
        return money(self.quantity * (self.reference_price or ZERO))


@dataclass(frozen=True)
class Refusal:
    """Why an order was refused: a code, the limit's name and value, and what the order came to."""

    code: RefusalCode
    limit: str
    limit_value: str
    actual: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {
            "code": str(self.code),
            "limit": self.limit,
            "limit_value": self.limit_value,
            "actual": self.actual,
            "message": self.message,
        }


def reduces_risk(order: OrderIntent, account: AccountRisk) -> bool:
    """A sell of no more than is held (spot: the only way to shrink a position)."""
    return order.side == Side.SELL and order.quantity <= account.position_quantity


def next_state(limits: RiskLimits, account: AccountRisk) -> tuple[TradingState, str]:
    """The trading state the account's losses call for, and why (empty when nothing changes).

    Only tightens: a halted account stays halted; resuming is a person's decision, and the daily
    loss state is lifted by the start of a new day (see the services).
    """
    if account.state == TradingState.HALTED:
        return account.state, ""
    drawdown = ratio(account.peak_equity - account.equity, account.peak_equity)
    if limits.max_drawdown_pct is not None and drawdown >= limits.max_drawdown_pct:
        return TradingState.HALTED, (
            f"max_drawdown_pct: equity {account.equity} is {drawdown:.2%} below its peak "
            f"{account.peak_equity} (limit {limits.max_drawdown_pct:.2%})"
        )
    if account.state == TradingState.REDUCING:
        return account.state, ""
    daily_loss = ratio(account.day_start_equity - account.equity, account.day_start_equity)
    if limits.max_daily_loss_pct is not None and daily_loss >= limits.max_daily_loss_pct:
        return TradingState.REDUCING, (
            f"max_daily_loss_pct: equity {account.equity} is {daily_loss:.2%} below the day's start "
            f"{account.day_start_equity} (limit {limits.max_daily_loss_pct:.2%})"
        )
    return account.state, ""


def check_order(
    limits: RiskLimits,
    market: MarketRules,
    account: AccountRisk,
    order: OrderIntent,
    *,
    check_cash: bool = True,
) -> Refusal | None:
    """The first limit ``order`` breaks, or None if it may go to the broker.

    ``check_cash`` checks that a buy's cost is there (the paper broker); a live account leaves that
    to the exchange, whose balance is the truth. A sell is always checked against the position the
    ledger holds: the system sells only what it knows it bought (or reconciled).
    """
    for check in (_state, _price_known, _market_minimums, _price_band, _rate_and_count, _order_size):
        refusal = check(limits, market, account, order)
        if refusal is not None:
            return refusal
    if order.side == Side.BUY:
        refusal = _buy_limits(limits, account, order)
        if refusal is not None:
            return refusal
    return _funds(account, order, check_cash)


def _refusal(code: RefusalCode, limit: object, actual: object, message: str) -> Refusal:
    return Refusal(code=code, limit=code.value, limit_value=str(limit), actual=str(actual), message=message)


def _state(
    limits: RiskLimits, market: MarketRules, account: AccountRisk, order: OrderIntent
) -> Refusal | None:
    if account.state == TradingState.HALTED:
        return _refusal(
            RefusalCode.TRADING_HALTED, "halted", "any order", "trading is halted on this account"
        )
    if account.state == TradingState.REDUCING and not reduces_risk(order, account):
        return _refusal(
            RefusalCode.REDUCING_ONLY,
            "reducing",
            f"{order.side} {order.quantity}",
            f"the account only accepts orders that reduce a position; {order.side} {order.quantity} "
            f"does not (position {account.position_quantity})",
        )
    return None


def _price_known(
    limits: RiskLimits, market: MarketRules, account: AccountRisk, order: OrderIntent
) -> Refusal | None:
    if order.last_price is None:
        return _refusal(
            RefusalCode.NO_PRICE, "a last price", "none", "no price is known for this instrument yet"
        )
    return None


def _market_minimums(
    limits: RiskLimits, market: MarketRules, account: AccountRisk, order: OrderIntent
) -> Refusal | None:
    minimum = market.min_amount
    if order.quantity <= 0 or (minimum is not None and order.quantity < minimum):
        return _refusal(
            RefusalCode.MIN_AMOUNT,
            minimum or "above 0",
            order.quantity,
            f"quantity {order.quantity} (rounded to the market's step) is below the minimum {minimum or 0}",
        )
    if market.min_notional is not None and order.notional < market.min_notional:
        return _refusal(
            RefusalCode.MIN_NOTIONAL,
            market.min_notional,
            order.notional,
            f"notional {order.notional} is below the exchange's minimum {market.min_notional}",
        )
    return None


def _price_band(
    limits: RiskLimits, market: MarketRules, account: AccountRisk, order: OrderIntent
) -> Refusal | None:
    last = order.last_price
    if last is None:  # unreachable through check_order: _price_known refuses such an order first
        raise ValueError("the price band needs the last price")
    for name, price in (
        ("price", order.price),
        ("stop_price", order.stop_price),
        ("price", order.expected_price),
    ):
        if price is None or limits.price_band_pct is None or not order.check_price_band:
            continue
        distance = ratio(abs(price - last), last)
        if distance > limits.price_band_pct:
            return _refusal(
                RefusalCode.PRICE_BAND,
                limits.price_band_pct,
                distance,
                f"{name} {price} is {distance:.2%} from the last price {last} "
                f"(band {limits.price_band_pct:.2%})",
            )
    level = order.stop_price if order.type != OrderType.LIMIT else None
    if level is not None and triggers_at(order.side, order.type, level, last):
        return _refusal(
            RefusalCode.WOULD_TRIGGER_IMMEDIATELY,
            f"stop_price beyond {last}",
            level,
            f"a {order.side} {order.type} at {level} would trigger at once at the last price {last}",
        )
    return None


def _rate_and_count(
    limits: RiskLimits, market: MarketRules, account: AccountRisk, order: OrderIntent
) -> Refusal | None:
    if (
        limits.max_orders_per_minute is not None
        and account.orders_last_minute >= limits.max_orders_per_minute
    ):
        return _refusal(
            RefusalCode.ORDER_RATE,
            limits.max_orders_per_minute,
            account.orders_last_minute + 1,
            f"{account.orders_last_minute} orders in the last minute already "
            f"(limit {limits.max_orders_per_minute} a minute)",
        )
    if limits.max_open_orders is not None and account.open_orders >= limits.max_open_orders:
        return _refusal(
            RefusalCode.MAX_OPEN_ORDERS,
            limits.max_open_orders,
            account.open_orders + 1,
            f"{account.open_orders} orders are open already (limit {limits.max_open_orders})",
        )
    return None


def _order_size(
    limits: RiskLimits, market: MarketRules, account: AccountRisk, order: OrderIntent
) -> Refusal | None:
    if limits.max_order_notional is not None and order.notional > limits.max_order_notional:
        return _refusal(
            RefusalCode.MAX_ORDER_NOTIONAL,
            limits.max_order_notional,
            order.notional,
            f"order notional {order.notional} is above the limit {limits.max_order_notional}",
        )
    return None


def _buy_limits(limits: RiskLimits, account: AccountRisk, order: OrderIntent) -> Refusal | None:
    position = account.instrument_position_value + account.instrument_open_buy_notional + order.notional
    if limits.max_position_notional is not None and position > limits.max_position_notional:
        return _refusal(
            RefusalCode.MAX_POSITION_NOTIONAL,
            limits.max_position_notional,
            position,
            f"the position would reach {position} (held, open buys and this order), "
            f"above the limit {limits.max_position_notional}",
        )
    share = ratio(position, account.equity)
    if limits.max_position_pct is not None and share > limits.max_position_pct:
        return _refusal(
            RefusalCode.MAX_POSITION_PCT,
            limits.max_position_pct,
            share,
            f"the position would be {share:.2%} of equity {account.equity} "
            f"(limit {limits.max_position_pct:.2%})",
        )
    exposure = ratio(account.positions_value + account.open_buy_notional + order.notional, account.equity)
    if limits.max_exposure_pct is not None and exposure > limits.max_exposure_pct:
        return _refusal(
            RefusalCode.MAX_EXPOSURE_PCT,
            limits.max_exposure_pct,
            exposure,
            f"total exposure would be {exposure:.2%} of equity (limit {limits.max_exposure_pct:.2%})",
        )
    opens_position = account.instrument_position_value == 0 and account.instrument_open_buy_notional == 0
    if (
        limits.max_open_positions is not None
        and opens_position
        and account.open_positions >= limits.max_open_positions
    ):
        return _refusal(
            RefusalCode.MAX_OPEN_POSITIONS,
            limits.max_open_positions,
            account.open_positions + 1,
            f"{account.open_positions} positions are open already (limit {limits.max_open_positions})",
        )
    return None


def _funds(account: AccountRisk, order: OrderIntent, check_cash: bool) -> Refusal | None:
    if order.side == Side.BUY:
        if not check_cash:
            return None
        cost = order.notional if order.cost is None else order.cost
        if cost > account.available_cash:
            return _refusal(
                RefusalCode.INSUFFICIENT_FUNDS,
                account.available_cash,
                cost,
                f"the order may cost {cost} with fees; {account.available_cash} is available",
            )
        return None
    if order.quantity > account.sellable_quantity:
        return _refusal(
            RefusalCode.INSUFFICIENT_POSITION,
            account.sellable_quantity,
            order.quantity,
            f"cannot sell {order.quantity}: {account.sellable_quantity} is held and not already offered",
        )
    return None
