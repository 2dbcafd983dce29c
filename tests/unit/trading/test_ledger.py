"""Ledger arithmetic: fills on a position, rounding to market steps, and the accounting identity."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.trading.domain.fills import Side
from apps.trading.domain.ledger import (
    FeeAsset,
    LedgerError,
    PositionState,
    apply_fill,
    buy_quantity_for,
    money,
    round_price,
    round_quantity,
)

D = Decimal


def test_a_buy_adds_its_cost_to_the_basis_and_pays_the_quote_fee_as_realised_loss():
    effect = apply_fill(PositionState(), side=Side.BUY, quantity=D("0.5"), price=D(100), fee=D("0.05"))

    assert effect.position == PositionState(quantity=D("0.5"), cost_basis=D(50), realised_pnl=D("-0.05"))
    assert effect.cash_change == D("-50.05")


def test_a_fee_taken_in_the_base_asset_leaves_less_to_hold_and_the_full_price_in_the_basis():
    effect = apply_fill(
        PositionState(),
        side=Side.BUY,
        quantity=D("0.5"),
        price=D(100),
        fee=D("0.0005"),
        fee_asset=FeeAsset.BASE,
    )

    assert (effect.position.quantity, effect.position.cost_basis, effect.cash_change) == (
        D("0.4995"),
        D(50),
        D(-50),
    )


def test_a_partial_sell_releases_its_share_of_the_basis_and_realises_the_difference():
    held = PositionState(quantity=D(2), cost_basis=D(200), realised_pnl=D(0))

    effect = apply_fill(held, side=Side.SELL, quantity=D("0.5"), price=D(120), fee=D("0.06"))

    assert effect.position == PositionState(quantity=D("1.5"), cost_basis=D(150), realised_pnl=D("9.94"))
    assert (effect.realised, effect.cash_change) == (D("9.94"), D("59.94"))


def test_selling_more_than_is_held_is_refused():
    with pytest.raises(LedgerError, match="holds 1"):
        apply_fill(
            PositionState(quantity=D(1), cost_basis=D(100)),
            side=Side.SELL,
            quantity=D(2),
            price=D(1),
            fee=D(0),
        )


def test_quantities_round_down_to_the_step_and_prices_to_the_nearest_tick():
    assert round_quantity(D("0.123456789"), D("0.001")) == D("0.123")
    assert round_quantity(D("0.0009"), D("0.001")) == D(0)
    assert round_price(D("100.005"), D("0.01")) == D("100.01")
    assert round_price(D("100.004"), D("0.01")) == D("100.00")
    assert round_quantity(D("1.123456789"), None) == D("1.12345678")


def test_the_most_cash_can_buy_includes_the_fee():
    quantity = buy_quantity_for(D(1000), D(100), D("0.001"), D("0.0001"))

    assert quantity == D("9.99")
    assert money(quantity * 100) * D("1.001") <= 1000


fills = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.decimals(min_value=D("0.00000001"), max_value=D(50), places=8),
        st.decimals(min_value=D("0.01"), max_value=D(100000), places=2),
        st.sampled_from([FeeAsset.QUOTE, FeeAsset.BASE]),
    ),
    max_size=40,
)


@given(fills)
def test_cash_is_always_starting_cash_plus_realised_pnl_minus_the_basis_to_the_last_digit(sequence):
    start = D(100000)
    cash, position = start, PositionState()
    for side, quantity, price, fee_asset in sequence:
        if side == Side.SELL:
            quantity = min(quantity, position.quantity)
            fee_asset = FeeAsset.QUOTE
            if quantity == 0:
                continue
        fee = money((quantity if fee_asset == FeeAsset.BASE else quantity * price) * D("0.001"))
        effect = apply_fill(position, side=side, quantity=quantity, price=price, fee=fee, fee_asset=fee_asset)
        cash += effect.cash_change
        position = effect.position
        assert position.quantity >= 0 and position.cost_basis >= 0
    assert cash == start + position.realised_pnl - position.cost_basis
