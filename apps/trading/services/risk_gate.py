"""The risk gate: the pure risk rules applied to an account's facts under its lock, refusals stored.

The rules themselves are pure (:mod:`apps.trading.domain.risk_rules`); this module reads what they need
under the account's row lock, moves the account's trading state when a loss limit is reached, and
records every refusal. Callers: :func:`apps.trading.services.orders.order_place` (every order,
whatever its source), :func:`apps.trading.services.submission.order_submit` (the last word before a
live order is sent), the kill switch and the portfolio snapshots.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from apps.core import clock
from apps.market.models import Instrument
from apps.trading import selectors
from apps.trading.accounting import order_finish
from apps.trading.brokers import paper
from apps.trading.domain.fills import OrderType, Side
from apps.trading.domain.portfolio import PortfolioFigures
from apps.trading.domain.risk_rules import (
    AccountRisk,
    MarketRules,
    OrderIntent,
    Refusal,
    RefusalCode,
    RiskLimits,
    TradingState,
    check_order,
    next_state,
)
from apps.trading.models import Account, AccountStateChange, Order, OrderSource, OrderStatus, RiskRefusal

logger = logging.getLogger(__name__)

DAILY_LOSS_PREFIX = "max_daily_loss_pct"


def limits_of(account: Account) -> RiskLimits:
    return RiskLimits(
        max_order_notional=account.max_order_notional,
        max_position_notional=account.max_position_notional,
        max_position_pct=account.max_position_pct,
        max_exposure_pct=account.max_exposure_pct,
        max_open_orders=account.max_open_orders,
        max_open_positions=account.max_open_positions,
        price_band_pct=account.price_band_pct,
        max_orders_per_minute=account.max_orders_per_minute,
        max_daily_loss_pct=account.max_daily_loss_pct,
        max_drawdown_pct=account.max_drawdown_pct,
    )


def market_rules_of(instrument: Instrument) -> MarketRules:
    return MarketRules(min_amount=instrument.min_amount, min_notional=instrument.min_notional)


def state_set(
    *, account: Account, state: TradingState, reason: str, by: AbstractBaseUser | None = None
) -> AccountStateChange | None:
    """Move the (locked) account to ``state`` and record why; None if it is in that state already."""
    if account.trading_state == state:
        return None
    change = AccountStateChange.objects.create(
        account=account, previous=account.trading_state, state=state, reason=reason[:300], changed_by=by
    )
    account.trading_state, account.state_reason, account.state_changed_at = (
        state,
        reason[:300],
        timezone.now(),
    )
    account.save(update_fields=["trading_state", "state_reason", "state_changed_at"])
    logger.warning("account %s: trading state %s -> %s (%s)", account.pk, change.previous, state, reason)
    return change


def state_refresh(*, account: Account, figures: PortfolioFigures, now: datetime) -> None:
    """Keep the loss limits' reference points and apply them (the account is locked).

    A new UTC day starts from the equity now and lifts a ``reducing`` state the daily loss limit set;
    the peak follows the equity up; :func:`~apps.trading.domain.risk_rules.next_state` then tightens the
    state if a limit is reached.
    """
    today = now.date()
    fields = []
    if account.day_start != today:
        account.day_start, account.day_start_equity = today, figures.equity
        fields += ["day_start", "day_start_equity"]
        if account.trading_state == TradingState.REDUCING and account.state_reason.startswith(
            DAILY_LOSS_PREFIX
        ):
            state_set(
                account=account, state=TradingState.ACTIVE, reason="a new day: the daily loss limit is reset"
            )
    if figures.peak_equity > account.peak_equity:
        account.peak_equity = figures.peak_equity
        fields.append("peak_equity")
    if fields:
        account.save(update_fields=fields)
    risk = AccountRisk(
        state=TradingState(account.trading_state),
        equity=figures.equity,
        peak_equity=account.peak_equity,
        day_start_equity=account.day_start_equity,
        positions_value=figures.positions_value,
        open_buy_notional=Decimal(0),
        available_cash=account.cash,
        instrument_position_value=Decimal(0),
        instrument_open_buy_notional=Decimal(0),
        position_quantity=Decimal(0),
        sellable_quantity=Decimal(0),
        open_orders=0,
        open_positions=0,
        orders_last_minute=0,
    )
    state, reason = next_state(limits_of(account), risk)
    if reason:
        state_set(account=account, state=state, reason=reason)


def order_check(
    *,
    account: Account,
    order: Order,
    expected_price: Decimal | None,
    now: datetime,
) -> tuple[Refusal | None, Decimal | None]:
    """The risk manager's decision on a stored NEW ``order`` of the locked ``account``, and the last price.

    Updates the account's loss limit state first, so an order arriving after a limit was reached
    meets the new state. ``now`` is the wall clock the order rate is counted on (orders are stamped
    with it); the loss limits' UTC day is the market clock's, as in the portfolio snapshots.
    """
    prices: selectors.Prices = {}
    risk, figures = selectors.account_risk(
        account=account,
        instrument=order.instrument,
        now=now,
        prices=prices,
        exclude_order=order,
        allocation_id=order.allocation_id,
    )
    # The market's day, not the wall clock's: during a replay the two differ, and the snapshots
    # (on the market clock) and the orders would otherwise restart the day at each other's turn.
    state_refresh(account=account, figures=figures, now=clock.now())
    risk = replace(risk, state=TradingState(account.trading_state), peak_equity=account.peak_equity)
    last = prices.get(order.instrument_id)
    if account.is_live and not (settings.LIVE_TRADING_ENABLED and account.has_api_keys):
        return _live_disabled(account), last
    intent = OrderIntent(
        side=Side(order.side),
        type=OrderType(order.type),
        quantity=order.quantity,
        price=order.price,
        stop_price=order.stop_price,
        last_price=last,
        expected_price=expected_price,
        cost=None if account.is_live or last is None else paper.buy_cost(account, order, last),
        check_price_band=order.source != OrderSource.PROTECTIVE,
    )
    refusal = check_order(
        limits_of(account), market_rules_of(order.instrument), risk, intent, check_cash=not account.is_live
    )
    return refusal, last


def _live_disabled(account: Account) -> Refusal:
    missing = (
        "LIVE_TRADING_ENABLED is off" if not settings.LIVE_TRADING_ENABLED else "the account has no API keys"
    )
    return Refusal(
        code=RefusalCode.LIVE_TRADING_DISABLED,
        limit="live_trading",
        limit_value="LIVE_TRADING_ENABLED and API keys",
        actual=missing,
        message=f"live orders are off for this account: {missing}",
    )


def submit_check(*, account: Account) -> Refusal | None:
    """The last word before a live order is sent: a halt or live trading switched off since it was
    accepted stops it."""
    if account.trading_state == TradingState.HALTED:
        return Refusal(
            code=RefusalCode.TRADING_HALTED,
            limit="halted",
            limit_value="halted",
            actual="sending",
            message="trading was halted after the order was accepted: it was not sent",
        )
    if not (settings.LIVE_TRADING_ENABLED and account.has_api_keys):
        return _live_disabled(account)
    return None


def refusal_record(*, order: Order, refusal: Refusal) -> RiskRefusal:
    """Store the refused order as REJECTED with the refusal's code, and the refusal itself."""
    order_finish(order, OrderStatus.REJECTED, code=refusal.code, reason=refusal.message)
    logger.info("order %s refused: %s (%s)", order.client_order_id, refusal.code, refusal.message)
    return RiskRefusal.objects.create(
        account_id=order.account_id,
        order=order,
        code=refusal.code,
        limit=refusal.limit,
        limit_value=refusal.limit_value[:100],
        actual=refusal.actual[:100],
        message=refusal.message[:500],
        source=order.source,
    )
