"""The trading orchestrator: each active strategy on an auto-trading account acts on its newest candle.

A cycle (after each market analysis slot, and whenever new candles may have arrived) goes over the
enabled allocations. For each, the strategy's rules are evaluated on the newest closed candle, as
the backtester evaluates them on every bar, and the signal becomes orders the way the backtester
trades (spot, long only):

* ``buy`` while flat: a market buy sized like the backtester's entry (equity times the allocation's
  share times ``position_size_pct``, slippage and fee included), protected once filled by the
  strategy's ``stop_loss_pct`` and ``take_profit_pct`` (one cancels the other);
* ``sell`` while holding: the protective orders are canceled, then the position is sold at market;
* anything else: nothing (``buy`` while holding does not add; ``short``/``cover`` need a margin
  account, which this broker does not trade).

Every order goes through the risk manager. A strategy acts at most once per candle, however often
the cycle runs: its action is a row unique per (allocation, candle) and its orders' client order ids
derive from the candle. Trailing stops and ``max_holding_bars`` are backtest settings the
orchestrator does not apply.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.jobs import Interrupted, job_claimed, job_complete
from apps.market.domain.candles import parse_timeframe
from apps.strategies import selectors as strategy_selectors
from apps.strategies.engine import Action, RiskSettings, signals
from apps.strategies.models import StrategyStatus, StrategyVersion
from apps.strategies.services.backtests import external_series_stored
from apps.trading import selectors
from apps.trading.accounting import lock_account
from apps.trading.brokers import paper
from apps.trading.domain.fills import OrderType, Side
from apps.trading.models import (
    Account,
    OrchestratorCycle,
    Order,
    OrderSource,
    OrderStatus,
    Position,
    StrategyAction,
    StrategyAllocation,
)
from apps.trading.services.orders import Placement, order_cancel, order_place

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CycleResult:
    cycle: OrchestratorCycle
    live_orders: list[int]  # NEW live orders for the caller to submit
    series_needed: list[int]  # strategies waiting for model series the caller asks the training side for


class SeriesNotReady(Exception):
    """The strategy reads model series (``ML_PROBA``/``ML_RETURN``) not computed for its bar yet."""


def allocations_to_run() -> list[StrategyAllocation]:
    """Enabled allocations of active strategies on accounts with auto-trading on."""
    return list(
        StrategyAllocation.objects.filter(
            enabled=True, account__auto_trading=True, strategy__status=StrategyStatus.ACTIVE
        ).select_related("account", "strategy__instrument", "strategy__current_version")
    )


def orchestrator_run(*, trigger: str = "beat", now: datetime | None = None) -> CycleResult:
    """One cycle over every allocation; a failing strategy is recorded and the others still act."""
    now = now or timezone.now()
    created = OrchestratorCycle.objects.create(trigger=trigger)
    with job_claimed(model=OrchestratorCycle, pk=created.pk) as cycle:
        if cycle is None:  # only if the sweeper failed it between our insert and claim
            return CycleResult(cycle=created, live_orders=[], series_needed=[])
        summary, live_orders, series_needed = [], [], []
        placed = refused = acted = 0
        for allocation in allocations_to_run():
            try:
                action = strategy_act(allocation=allocation, cycle=cycle, now=now)
            except SeriesNotReady:
                series_needed.append(allocation.strategy_id)
                summary.append({"allocation": allocation.pk, "skipped": "waiting for its model series"})
                continue
            except Interrupted:
                raise
            except Exception as error:  # one broken strategy must not stop the others
                logger.exception("orchestrator: %s failed", allocation)
                summary.append(
                    {"allocation": allocation.pk, "error": f"{type(error).__name__}: {error}"[:300]}
                )
                continue
            if action is None:
                continue
            acted += 1
            order = action.order
            if order is not None:
                refused += order.status == OrderStatus.REJECTED
                placed += order.status != OrderStatus.REJECTED
                if order.account.is_live and order.status == OrderStatus.NEW:
                    live_orders.append(order.pk)
            summary.append(
                {"allocation": allocation.pk, "signal": action.signal, "decision": action.decision}
            )
        cycle = job_complete(
            job=cycle, acted=acted, orders_placed=placed, orders_refused=refused, summary=summary
        )
        return CycleResult(cycle=cycle, live_orders=live_orders, series_needed=series_needed)


def strategy_act(
    *, allocation: StrategyAllocation, cycle: OrchestratorCycle | None = None, now: datetime | None = None
) -> StrategyAction | None:
    """Evaluate the strategy on its newest closed candle and act on the signal; None when there is
    nothing new to act on (no candle, already acted on it, or the candle is stale)."""
    strategy, version = allocation.strategy, allocation.strategy.current_version
    if version is None:
        return None
    window = strategy_selectors.newest_window(strategy=strategy, version=version)
    if window.bars == 0:
        return None
    candle_time = window.frame.index[-1].to_pydatetime()
    closes_at = candle_time + parse_timeframe(strategy.timeframe).duration.to_pytimedelta()
    if (now or timezone.now()) - closes_at > closes_at - candle_time:
        return None  # the newest candle is more than a bar old: the market data is behind
    if StrategyAction.objects.filter(allocation=allocation, candle_time=candle_time).exists():
        return None
    # Computing model series takes minutes: the training side does it; this side only reads them.
    ready, external = external_series_stored(strategy=strategy, rules=version.rules, frame=window.frame)
    if not ready:
        raise SeriesNotReady(strategy.strategy_id)
    codes = signals(version.rules, window.frame, version.parameters, external)
    return signal_apply(
        allocation=allocation,
        version=version,
        signal=Action(int(codes[-1])),
        candle_time=candle_time,
        cycle=cycle,
    )


def signal_apply(
    *,
    allocation: StrategyAllocation,
    version: StrategyVersion,
    signal: Action,
    candle_time: datetime,
    cycle: OrchestratorCycle | None = None,
    at: datetime | None = None,
) -> StrategyAction | None:
    """Turn the strategy's signal on the candle opening at ``candle_time`` into orders, once.

    ``at`` is the moment of the orders (default now). Returns None if this allocation already acted
    on that candle.
    """
    if signal == Action.SELL:
        _cancel_protection(allocation)
    try:
        with transaction.atomic():
            action = StrategyAction.objects.create(
                allocation=allocation,
                candle_time=candle_time,
                signal=signal.name.lower(),
                decision="",
                cycle=cycle,
            )
            decision, order = _act(allocation, version, signal, candle_time, at)
            action.decision, action.order = decision[:200], order
            action.save(update_fields=["decision", "order"])
    except IntegrityError:  # another cycle acted on this candle first
        return None
    return action


def _act(
    allocation: StrategyAllocation,
    version: StrategyVersion,
    signal: Action,
    candle_time: datetime,
    at: datetime | None,
) -> tuple[str, Order | None]:
    account = lock_account(allocation.account_id)
    instrument = allocation.strategy.instrument
    position = Position.objects.filter(account=account, instrument=instrument).first()
    held = position.quantity if position else Decimal(0)
    client_order_id = f"s{allocation.pk}-{int(candle_time.timestamp())}"
    common = {
        "account": account,
        "instrument": instrument,
        "type": OrderType.MARKET,
        "client_order_id": client_order_id,
        "source": OrderSource.STRATEGY,
        "strategy": allocation.strategy,
        "at": at,
    }
    if signal == Action.BUY and held == 0:
        quantity = _entry_quantity(account, allocation, version)
        if quantity <= 0:
            return "buy: nothing to buy with (no cash or no price)", None
        settings = RiskSettings.from_parameters(version.parameters)
        placement = order_place(
            side=Side.BUY,
            quantity=quantity,
            attach_stop_loss_pct=_decimal(settings.stop_loss_pct),
            attach_take_profit_pct=_decimal(settings.take_profit_pct),
            **common,
        )
        return _decision("buy", placement), placement.order
    if signal == Action.SELL and held > 0:
        placement = order_place(side=Side.SELL, quantity=held, **common)
        return _decision("sell", placement), placement.order
    return f"{signal.name.lower()} while holding {held}: nothing to do", None


def _entry_quantity(account: Account, allocation: StrategyAllocation, version: StrategyVersion) -> Decimal:
    """The backtester's entry size: a share of equity, slippage and fee included, within the cash.
    ``account`` is the locked row."""
    instrument = allocation.strategy.instrument
    last = selectors.last_price(instrument=instrument)
    if last is None:
        return Decimal(0)
    figures = selectors.portfolio(account=account).figures
    share = Decimal(str(RiskSettings.from_parameters(version.parameters).position_size_pct))
    budget = min(figures.equity * allocation.capital_pct * share, account.cash)
    return paper.affordable_quantity(account, budget, last, instrument.amount_step)


def _cancel_protection(allocation: StrategyAllocation) -> None:
    """Cancel the open protective orders on the strategy's instrument, so the exit can sell it all."""
    protective = Order.objects.filter(
        account=allocation.account,
        instrument=allocation.strategy.instrument,
        source=OrderSource.PROTECTIVE,
        status__in=(OrderStatus.NEW, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED),
    ).select_related("account", "instrument")
    for order in protective:
        order_cancel(order=order)


def _decision(verb: str, placement: Placement) -> str:
    if placement.refusal is not None:
        return f"{verb}: refused by the risk manager ({placement.refusal.code})"
    order = placement.order
    return f"{verb} {order.quantity}: order {order.pk} {order.status}"


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))
