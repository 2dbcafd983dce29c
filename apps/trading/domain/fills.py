"""Where an order fills against a candle: the one set of fill rules of the paper broker and the backtester.

The rules (ARCHITECTURE.md, "Backtest and paper conventions", and
``apps.strategies.engine.backtest``):

* A **market** order fills at the price of the moment, moved against the trader by the slippage:
  buys at ``price * (1 + slippage)``, sells at ``price * (1 - slippage)``. The backtester's moment
  is the open of the bar after the signal; the paper broker's is the latest price it knows.
* A **resting** order is checked against each bar's range. An order that waits for the price to
  fall to its level (a buy limit, a sell stop, a buy take-profit) is reached when ``low <= level``;
  one that waits for a rise (a sell limit, a buy stop, a sell take-profit) when ``high >= level``.
  A bar that opens beyond the level fills at the open (a gap: the open is the first price of the
  bar); otherwise at the level itself. Stops and take-profits are market orders once triggered, so
  they slip; limit orders fill at their price or better and do not.
* A **bracket** (a stop-loss and a take-profit protecting one position, one cancelling the other)
  follows the backtester exactly: a gap through the stop fills the stop at the open; else a gap
  through the target fills the target at the open; else if the bar touches the stop, the stop fills
  at its level, even when the target was touched too (the order of high and low inside a bar is
  unknown, so the worse outcome is assumed); else the target at its level.
* A **stop-limit** order is triggered like a stop; at the trigger price it is a limit order, filled
  at once if the trigger price is at or better than its limit, else left resting at its limit from
  the next bar on (inside the trigger bar the order of later prices is unknown).

Prices may be ``Decimal`` (the paper ledger) or ``float`` (the backtester): only comparisons and
products are used, so the same function serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Generic, TypeVar

P = TypeVar("P", float, Decimal)


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP_LOSS = "STOP_LOSS"
    STOP_LOSS_LIMIT = "STOP_LOSS_LIMIT"
    TAKE_PROFIT = "TAKE_PROFIT"


# Order types whose fill is a market order once the price reaches their level: they slip.
SLIPPING_TYPES = frozenset({OrderType.MARKET, OrderType.STOP_LOSS, OrderType.TAKE_PROFIT})
STOP_TYPES = frozenset({OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT})


class ExitReason(StrEnum):
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"


@dataclass(frozen=True)
class Bar(Generic[P]):
    """One candle's prices."""

    open: P
    high: P
    low: P
    close: P


@dataclass(frozen=True)
class StopLimitOutcome(Generic[P]):
    """A stop-limit order on one bar: whether it triggered, and the fill price if it also filled."""

    triggered: bool
    fill_price: P | None = None


def with_slippage(price: P, side: Side, slippage: P) -> P:
    """The price moved against the trader: up for a buy, down for a sell."""
    return price * (1 + slippage) if side == Side.BUY else price * (1 - slippage)


def waits_for_fall(side: Side, order_type: OrderType) -> bool:
    """True for orders reached when the price falls to their level: buy limit/take-profit, sell stop."""
    return (order_type in STOP_TYPES) != (side == Side.BUY)


def touch_price(side: Side, order_type: OrderType, level: P, bar: Bar[P]) -> P | None:
    """The price at which a resting LIMIT, STOP_LOSS or TAKE_PROFIT order at ``level`` fills on
    ``bar`` (before slippage), or None if the bar does not reach it."""
    if waits_for_fall(side, order_type):
        if bar.open <= level:
            return bar.open
        return level if bar.low <= level else None
    if bar.open >= level:
        return bar.open
    return level if bar.high >= level else None


def opens_beyond(side: Side, order_type: OrderType, level: P, bar: Bar[P]) -> bool:
    """Whether the bar opens at or through ``level`` (a gap fill at the open)."""
    return bar.open <= level if waits_for_fall(side, order_type) else bar.open >= level


def triggers_at(side: Side, order_type: OrderType, level: P, price: P) -> bool:
    """Whether an order at ``level`` would fill at once at ``price`` (a limit crossing the market, a
    stop or take-profit already beyond its level)."""
    return price <= level if waits_for_fall(side, order_type) else price >= level


def bracket_exit(
    bar: Bar[P], exit_side: Side, stop: P | None, target: P | None
) -> tuple[P, ExitReason] | None:
    """The exit of a position protected by a stop-loss and a take-profit on ``bar`` (before slippage),
    with which of the two filled, or None. ``exit_side`` is SELL for a long position."""
    if stop is not None and opens_beyond(exit_side, OrderType.STOP_LOSS, stop, bar):
        return bar.open, ExitReason.STOP_LOSS
    if target is not None and opens_beyond(exit_side, OrderType.TAKE_PROFIT, target, bar):
        return bar.open, ExitReason.TAKE_PROFIT
    if stop is not None and touch_price(exit_side, OrderType.STOP_LOSS, stop, bar) is not None:
        return stop, ExitReason.STOP_LOSS
    if target is not None and touch_price(exit_side, OrderType.TAKE_PROFIT, target, bar) is not None:
        return target, ExitReason.TAKE_PROFIT
    return None


def stop_limit_outcome(side: Side, stop: P, limit: P, bar: Bar[P]) -> StopLimitOutcome[P]:
    """A STOP_LOSS_LIMIT order on ``bar``: triggered at its stop, filled at the trigger price when that
    is at or better than its limit (a buy: at or below; a sell: at or above)."""
    trigger = touch_price(side, OrderType.STOP_LOSS, stop, bar)
    if trigger is None:
        return StopLimitOutcome(triggered=False)
    marketable = trigger <= limit if side == Side.BUY else trigger >= limit
    return StopLimitOutcome(triggered=True, fill_price=trigger if marketable else None)
