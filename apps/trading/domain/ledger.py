"""Ledger arithmetic in Decimal: rounding to a market's steps, a fill applied to a position, PnL.

Every amount the ledger stores has :data:`PLACES` decimal places (what the database holds and what
exchanges report). Each computed amount is quantized once, before it is added anywhere, so sums of
stored values are exact and the accounting identity holds to the last digit::

    cash = starting cash + realised PnL - cost basis of what is held
    equity = cash + sum(quantity * mark) = starting cash + realised PnL + unrealised PnL

A position is valued at average cost: its ``cost_basis`` is what its quantity cost (fees apart);
selling part of it releases the same share of the basis, and realised PnL is the proceeds minus the
released basis minus the fee. Fees paid in the quote currency are realised losses when paid; a fee
taken from the base asset (Binance's commission on a buy) leaves the full price in the basis of the
smaller quantity received. Spot only: a position never goes below zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from enum import StrEnum

from .fills import Side

PLACES = 8
QUANTUM = Decimal(1).scaleb(-PLACES)
ZERO = Decimal(0)


class FeeAsset(StrEnum):
    """Which asset a fee was paid in, relative to the market traded."""

    QUOTE = "quote"
    BASE = "base"
    OTHER = "other"  # e.g. BNB: not in this ledger's currencies; the balance reconciliation sees it


class LedgerError(ValueError):
    """A fill the ledger cannot apply (selling more than is held, a non-positive quantity)."""


def money(value: Decimal) -> Decimal:
    """``value`` to the ledger's places, half to even."""
    return value.quantize(QUANTUM, rounding=ROUND_HALF_EVEN)


def round_quantity(quantity: Decimal, step: Decimal | None) -> Decimal:
    """Down to a whole number of ``step`` (never more than asked, never more than held)."""
    step = step or QUANTUM
    return ((quantity / step).to_integral_value(rounding=ROUND_DOWN) * step).quantize(QUANTUM)


def round_price(price: Decimal, step: Decimal | None) -> Decimal:
    """To the nearest tick of ``step``, halves up."""
    step = step or QUANTUM
    return ((price / step).to_integral_value(rounding=ROUND_HALF_UP) * step).quantize(QUANTUM)


def fee_for(notional: Decimal, rate: Decimal) -> Decimal:
    return money(notional * rate)


@dataclass(frozen=True)
class PositionState:
    """A spot position: quantity held, what it cost, and the PnL realised so far."""

    quantity: Decimal = ZERO
    cost_basis: Decimal = ZERO
    realised_pnl: Decimal = ZERO

    @property
    def average_entry(self) -> Decimal | None:
        return money(self.cost_basis / self.quantity) if self.quantity else None

    def market_value(self, mark: Decimal) -> Decimal:
        return money(self.quantity * mark)

    def unrealised_pnl(self, mark: Decimal) -> Decimal:
        return self.market_value(mark) - self.cost_basis


@dataclass(frozen=True)
class FillEffect:
    """What one fill does: the position after it, the change of cash, the PnL it realised."""

    position: PositionState
    cash_change: Decimal
    realised: Decimal


def apply_fill(
    position: PositionState,
    *,
    side: Side,
    quantity: Decimal,
    price: Decimal,
    fee: Decimal,
    fee_asset: FeeAsset = FeeAsset.QUOTE,
) -> FillEffect:
    """The effect of buying or selling ``quantity`` at ``price`` and paying ``fee``."""
    if quantity <= 0 or price <= 0 or fee < 0:
        raise LedgerError(f"a fill needs a positive quantity and price, got {quantity} @ {price} (fee {fee})")
    notional = money(quantity * price)
    quote_fee = fee if fee_asset == FeeAsset.QUOTE else ZERO
    if side == Side.BUY:
        received = quantity - (fee if fee_asset == FeeAsset.BASE else ZERO)
        after = PositionState(
            quantity=position.quantity + received,
            cost_basis=position.cost_basis + notional,
            realised_pnl=position.realised_pnl - quote_fee,
        )
        return FillEffect(after, -(notional + quote_fee), -quote_fee)
    if quantity > position.quantity:
        raise LedgerError(f"cannot sell {quantity}: the position holds {position.quantity}")
    if fee_asset == FeeAsset.BASE:
        raise LedgerError("a sell pays its fee in the quote currency it receives, not in the base asset")
    remaining = position.quantity - quantity
    released = (
        position.cost_basis if remaining == 0 else money(position.cost_basis * quantity / position.quantity)
    )
    realised = notional - released - quote_fee
    after = PositionState(
        quantity=remaining,
        cost_basis=position.cost_basis - released,
        realised_pnl=position.realised_pnl + realised,
    )
    return FillEffect(after, notional - quote_fee, realised)


def buy_quantity_for(cash: Decimal, price: Decimal, fee_rate: Decimal, step: Decimal | None) -> Decimal:
    """The most that ``cash`` buys at ``price`` with the fee on top, rounded down to ``step``."""
    if price <= 0:
        return ZERO
    return round_quantity(cash / (price * (1 + fee_rate)), step)
