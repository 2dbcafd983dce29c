"""The trading orchestrator: each enabled strategy allocation acts on its newest closed candle.

A cycle first carries out the lifecycle policy on the accounts that opted in (allocations for
active strategies, wind-downs for retired ones: :mod:`apps.trading.services.lifecycle`), then goes
over every enabled allocation and records, for each, what it did or why it did not
act (the account's auto-trading is off, the strategy is not active, the account is halted, the
data is stale, no model series yet, already acted on this candle). For an allocation that can act,
the strategy's rules are evaluated on the newest closed candle, as the backtester evaluates them on
every bar, and the signal becomes orders of the allocation's own book the way the backtester
trades (spot, long only):

* ``buy`` while its book is flat: a market buy sized like the backtester's entry (equity times the
  allocation's share times ``position_size_pct``, slippage and fee included), protected once filled
  by the strategy's ``stop_loss_pct`` and ``take_profit_pct`` (one cancels the other);
* ``sell`` while its book holds: its own protective orders are canceled, then its own position is
  sold at market; another strategy's position on the same instrument is never touched;
* anything else: nothing (``buy`` while holding does not add; ``short``/``cover`` need a margin
  account, which this broker does not trade).

A winding-down allocation (its strategy was retired) cancels its open orders, sells its book at
the next closed candle and is then disabled. Every order goes through the risk manager, whose
limits apply to the account's sum. A strategy acts at most once per candle, however often the cycle
runs: its action is a row unique per (allocation, candle) and its orders' client order ids derive
from the candle. Trailing stops and ``max_holding_bars`` are backtest settings the orchestrator
does not apply.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from apps.core import clock
from apps.core.jobs import Interrupted, job_claimed, job_complete
from apps.market import selectors as market_selectors
from apps.strategies import selectors as strategy_selectors
from apps.strategies.engine import Action, RiskSettings, signals
from apps.strategies.models import DecisionKind, StrategyStatus, StrategyVersion
from apps.strategies.services.backtests import external_series_stored
from apps.strategies.services.strategies import decision_record
from apps.trading import selectors
from apps.trading.accounting import lock_account
from apps.trading.brokers import paper
from apps.trading.domain.fills import OrderType, Side
from apps.trading.domain.risk_rules import TradingState
from apps.trading.models import (
    Account,
    OrchestratorCycle,
    Order,
    OrderSource,
    OrderStatus,
    StrategyAction,
    StrategyAllocation,
)
from apps.trading.services.lifecycle import lifecycle_apply
from apps.trading.services.orders import Placement, order_cancel, order_place

logger = logging.getLogger(__name__)

OPEN_STATUSES = (OrderStatus.NEW, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)
ACTOR = "orchestrator"  # who its orders and decisions name


class Skip:
    """Why an enabled allocation did not act in a cycle. Blocking ones need someone (or fresh data)
    before it can act again; the others are the normal rhythm of a cycle."""

    AUTO_TRADING_OFF = "auto_trading_off"
    STRATEGY_INACTIVE = "strategy_inactive"
    HALTED = "halted"
    NO_CANDLES = "no_candles"
    STALE_DATA = "stale_data"
    ERROR = "error"
    SERIES_PENDING = "series_pending"
    ALREADY_ACTED = "already_acted"

    BLOCKING = frozenset({AUTO_TRADING_OFF, STRATEGY_INACTIVE, HALTED, NO_CANDLES, STALE_DATA, ERROR})


@dataclass(frozen=True)
class CycleResult:
    cycle: OrchestratorCycle
    live_orders: list[int]  # NEW live orders for the caller to submit
    series_needed: list[int]  # strategies waiting for model series the caller asks the training side for


@dataclass
class _Cycle:
    """What a cycle has done so far."""

    summary: list[dict[str, Any]] = field(default_factory=list)
    live_orders: list[int] = field(default_factory=list)
    series_needed: list[int] = field(default_factory=list)
    placed: int = 0
    refused: int = 0
    acted: int = 0

    def skip(self, allocation: StrategyAllocation, code: str, reason: str) -> None:
        self.summary.append({**_who(allocation), "outcome": "skipped", "code": code, "reason": reason[:300]})

    def act(self, allocation: StrategyAllocation, action: StrategyAction) -> None:
        self.acted += 1
        order = action.order
        if order is not None:
            self.refused += order.status == OrderStatus.REJECTED
            self.placed += order.status != OrderStatus.REJECTED
            if order.account.is_live and order.status == OrderStatus.NEW:
                self.live_orders.append(order.pk)
        self.summary.append(
            {**_who(allocation), "outcome": "acted", "signal": action.signal, "decision": action.decision}
        )


def _who(allocation: StrategyAllocation) -> dict[str, Any]:
    return {
        "account": allocation.account_id,
        "allocation": allocation.pk,
        "strategy_id": allocation.strategy.strategy_id,
    }


class _NotActing(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def allocations_enabled(*, account: Account | None = None) -> list[StrategyAllocation]:
    """Every enabled allocation (of ``account`` when given), with what a cycle reads of it."""
    allocations = StrategyAllocation.objects.filter(enabled=True)
    if account is not None:
        allocations = allocations.filter(account=account)
    return list(allocations.select_related("account", "strategy__instrument", "strategy__current_version"))


def orchestrator_run(
    *, trigger: str = "beat", now: datetime | None = None, account: Account | None = None
) -> CycleResult:
    """One cycle over every enabled allocation (only ``account``'s when given: a replay acts for its
    own account alone); each gets an outcome in the cycle's summary, and a failing one is recorded
    while the others still act."""
    now = now or clock.now()
    created = OrchestratorCycle.objects.create(trigger=trigger)
    with job_claimed(model=OrchestratorCycle, pk=created.pk) as cycle:
        if cycle is None:  # only if the sweeper failed it between our insert and claim
            return CycleResult(cycle=created, live_orders=[], series_needed=[])
        done = _Cycle()
        for step in lifecycle_apply(account=account):
            done.summary.append({**step.to_dict(), "outcome": "lifecycle"})
        for allocation in allocations_enabled(account=account):
            try:
                action = strategy_act(allocation=allocation, cycle=cycle, now=now)
            except _NotActing as why:
                if why.code == Skip.SERIES_PENDING:
                    done.series_needed.append(allocation.strategy_id)
                done.skip(allocation, why.code, why.reason)
                continue
            except Interrupted:
                raise
            except Exception as error:  # one broken strategy must not stop the others
                logger.exception("orchestrator: %s failed", allocation)
                done.skip(allocation, Skip.ERROR, f"{type(error).__name__}: {error}")
                continue
            done.act(allocation, action)
        cycle = job_complete(
            job=cycle,
            acted=done.acted,
            orders_placed=done.placed,
            orders_refused=done.refused,
            summary=done.summary,
        )
        return CycleResult(cycle=cycle, live_orders=done.live_orders, series_needed=done.series_needed)


def strategy_act(
    *, allocation: StrategyAllocation, cycle: OrchestratorCycle | None = None, now: datetime | None = None
) -> StrategyAction:
    """Evaluate the strategy on its newest closed candle and act on the signal in its own book (a
    winding-down allocation closes its book instead). Raises ``_NotActing`` with the reason when it
    does not act."""
    now = now or clock.now()
    account, strategy = allocation.account, allocation.strategy
    if not account.auto_trading:
        raise _NotActing(
            Skip.AUTO_TRADING_OFF, f"auto-trading is off on account {account.pk} ({account.name})"
        )
    if strategy.status != StrategyStatus.ACTIVE and not allocation.winding_down:
        waiting = ""
        if strategy.status == StrategyStatus.RETIRED:
            waiting = (
                f"; its book holds {selectors.book_quantity(allocation=allocation)}: wind it down "
                f"(DELETE /api/trading/allocations/{allocation.pk}) or turn on the account's lifecycle policy"
            )
        raise _NotActing(Skip.STRATEGY_INACTIVE, f"the strategy is {strategy.status}{waiting}")
    if account.trading_state == TradingState.HALTED:
        raise _NotActing(Skip.HALTED, f"the account is halted: {account.state_reason}")
    version = strategy.current_version
    if version is None:
        raise _NotActing(Skip.STRATEGY_INACTIVE, "the strategy has no version")
    window = strategy_selectors.newest_window(strategy=strategy, version=version)
    if window.bars == 0:
        raise _NotActing(
            Skip.NO_CANDLES, f"no {strategy.timeframe} candles of {strategy.instrument.symbol} are stored"
        )
    freshness = market_selectors.series_freshness(
        instrument=strategy.instrument, timeframe=strategy.timeframe, now=now
    )
    if freshness.stale:
        raise _NotActing(Skip.STALE_DATA, f"stale data: {freshness.describe(strategy.timeframe)}")
    candle_time = window.frame.index[-1].to_pydatetime()
    if StrategyAction.objects.filter(allocation=allocation, candle_time=candle_time).exists():
        raise _NotActing(
            Skip.ALREADY_ACTED, f"already acted on the candle of {candle_time:%Y-%m-%d %H:%M} UTC"
        )
    if allocation.winding_down:
        signal = Action.SELL
    else:
        # Computing model series takes minutes: the training side does it; this side only reads them.
        ready, external = external_series_stored(strategy=strategy, rules=version.rules, frame=window.frame)
        if not ready:
            raise _NotActing(
                Skip.SERIES_PENDING, "waiting for its model series (computed on the training queue)"
            )
        signal = Action(int(signals(version.rules, window.frame, version.parameters, external)[-1]))
    action = signal_apply(
        allocation=allocation, version=version, signal=signal, candle_time=candle_time, cycle=cycle, at=now
    )
    if action is None:  # another cycle acted on this candle between our check and our insert
        raise _NotActing(
            Skip.ALREADY_ACTED, f"already acted on the candle of {candle_time:%Y-%m-%d %H:%M} UTC"
        )
    if allocation.winding_down:
        _wound_down(allocation, action)
    return action


def signal_apply(
    *,
    allocation: StrategyAllocation,
    version: StrategyVersion,
    signal: Action,
    candle_time: datetime,
    cycle: OrchestratorCycle | None = None,
    at: datetime | None = None,
) -> StrategyAction | None:
    """Turn the strategy's signal on the candle opening at ``candle_time`` into orders of the
    allocation's book, once.

    ``at`` is the moment of the orders (default now). Returns None if this allocation already acted
    on that candle.
    """
    if signal == Action.SELL:
        _cancel_open_orders(allocation)
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
    held = selectors.book_quantity(allocation=allocation)
    client_order_id = f"s{allocation.pk}-{int(candle_time.timestamp())}"
    common = {
        "account": account,
        "instrument": instrument,
        "type": OrderType.MARKET,
        "client_order_id": client_order_id,
        "source": OrderSource.STRATEGY,
        "created_by": ACTOR,
        "strategy": allocation.strategy,
        "allocation": allocation,
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
    return f"{signal.name.lower()} while its book holds {held}: nothing to do", None


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


def _cancel_open_orders(allocation: StrategyAllocation) -> None:
    """Cancel the allocation's own open orders (its stop and target among them), so its exit can sell
    its whole book; other books' orders are left alone."""
    mine = Order.objects.filter(allocation=allocation, status__in=OPEN_STATUSES).select_related(
        "account", "instrument"
    )
    for order in mine:
        order_cancel(order=order)


def _wound_down(allocation: StrategyAllocation, action: StrategyAction) -> None:
    """Disable a winding-down allocation once its book is flat (or it had nothing left to sell)."""
    if selectors.book_quantity(allocation=allocation) > 0:
        return  # its exit did not fill yet (live, or refused): the next candle tries again
    reason = f"wound down: its book is closed ({action.decision})"
    StrategyAllocation.objects.filter(pk=allocation.pk).update(enabled=False, winding_down=False, note=reason)
    decision_record(
        allocation.strategy,
        DecisionKind.WOUND_DOWN,
        f"allocation {allocation.pk} on account {allocation.account_id} {reason}",
        {"allocation": allocation.pk, "account": allocation.account_id},
        actor=ACTOR,
    )


def _decision(verb: str, placement: Placement) -> str:
    if placement.refusal is not None:
        return f"{verb}: refused by the risk manager ({placement.refusal.code})"
    order = placement.order
    return f"{verb} {order.quantity}: order {order.pk} {order.status}"


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))
