"""The performance monitor: each allocation's live PnL and drawdown, beside its backtest.

An allocation's live PnL is replayed from the fills of its own book's orders (average cost, fees
included: another strategy's trades on the same account and instrument never count) and marked at
the last price; its return and drawdown are measured on the capital it was allocated (the account's
starting cash times the allocation's share). Each record also backtests the strategy's current
version over the same period with the account's costs, so live and backtest returns sit side by
side.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from django.db.models import Exists, Max, OuterRef, Q, Subquery

from apps.core import clock
from apps.core.jobs import Interrupted
from apps.strategies import documents
from apps.strategies import selectors as strategy_selectors
from apps.strategies.services.backtests import strategy_report
from apps.trading import selectors
from apps.trading.accounting import fee_asset
from apps.trading.domain.fills import Side
from apps.trading.domain.ledger import ZERO, PositionState, apply_fill
from apps.trading.domain.portfolio import ratio
from apps.trading.models import Account, Fill, StrategyAllocation, StrategyPerformance
from apps.trading.services.snapshots import snapshot_slot

logger = logging.getLogger(__name__)
PERCENT = Decimal(100)


def strategy_position(*, allocation: StrategyAllocation) -> tuple[PositionState, int]:
    """The position the allocation's own fills add up to, and how many fills it took."""
    fills = Fill.objects.filter(order__allocation=allocation).order_by("executed_at", "pk")
    state = PositionState()
    count = 0
    for fill in fills:
        quantity = fill.quantity if fill.side == Side.BUY else min(fill.quantity, state.quantity)
        if quantity <= 0:
            continue
        state = apply_fill(
            state,
            side=Side(fill.side),
            quantity=quantity,
            price=fill.price,
            fee=fill.fee,
            fee_asset=fee_asset(allocation.strategy.instrument, fill.fee_currency),
        ).position
        count += 1
    return state, count


def performance_record(*, allocation: StrategyAllocation, now: datetime | None = None) -> StrategyPerformance:
    """Store the strategy's live figures for the current slot (once per slot)."""
    now = now or clock.now()
    slot = snapshot_slot(now)
    existing = StrategyPerformance.objects.filter(allocation=allocation, time=slot).first()
    if existing is not None:
        return existing
    state, trades = strategy_position(allocation=allocation)
    mark = selectors.last_price(instrument=allocation.strategy.instrument)
    unrealised = state.unrealised_pnl(mark) if mark is not None and state.quantity else ZERO
    total = state.realised_pnl + unrealised
    capital = allocation.account.starting_cash * allocation.capital_pct
    best = allocation.performance.aggregate(best=Max("total_pnl"))["best"]
    peak = capital + max(total, best if best is not None else ZERO, ZERO)
    record, _ = StrategyPerformance.objects.get_or_create(
        allocation=allocation,
        time=slot,
        defaults={
            "realised_pnl": state.realised_pnl,
            "unrealised_pnl": unrealised,
            "total_pnl": total,
            "return_pct": ratio(total, capital) * PERCENT,
            "drawdown_pct": ratio(peak - (capital + total), peak) * PERCENT,
            "trades": trades,
            "backtest_return_pct": _backtest_return_pct(allocation, capital, now),
        },
    )
    return record


def _backtest_return_pct(allocation: StrategyAllocation, capital: Decimal, now: datetime) -> Decimal | None:
    """The current version's backtest return over the period the allocation has traded (since it was
    made, or since the first candle it acted on when that is earlier: a replay makes allocations in
    the present for candles of the past), or None while that is under two bars."""
    strategy, version = allocation.strategy, allocation.strategy.current_version
    acted = allocation.actions.order_by("candle_time").values_list("candle_time", flat=True).first()
    if version is None or capital <= 0:
        return None
    first = min(allocation.created_at, acted) if acted else allocation.created_at
    window = strategy_selectors.candle_window(
        instrument=strategy.instrument,
        timeframe=strategy.timeframe,
        warmup_bars=documents.warmup_bars(version.rules, [version.parameters]),
        start=first,
        end=now,
    )
    if window.bars < 2:
        return None
    report = strategy_report(
        strategy=strategy,
        version=version,
        window=window,
        initial_capital=float(capital),
        commission=float(allocation.account.paper_fee_rate),
        slippage=float(allocation.account.paper_slippage),
    )
    return Decimal(str(round(report.total_return_pct, 6)))


def performance_record_all(*, now: datetime | None = None, account: Account | None = None) -> int:
    """Record every enabled allocation (of ``account`` when given), and once more each switched-off
    one that traded since its last record (a wound-down book's exit); a failing one is logged and the
    others still recorded."""
    last_record = StrategyPerformance.objects.filter(allocation=OuterRef("pk")).order_by("-time")
    traded_since = Exists(
        Fill.objects.filter(
            order__allocation=OuterRef("pk"), executed_at__gt=Subquery(last_record.values("time")[:1])
        )
    )
    allocations = StrategyAllocation.objects.filter(Q(enabled=True) | Q(traded_since))
    if account is not None:
        allocations = allocations.filter(account=account)
    count = 0
    for allocation in allocations.select_related(
        "account", "strategy__instrument", "strategy__current_version"
    ):
        try:
            performance_record(allocation=allocation, now=now)
        except Interrupted:
            raise
        except Exception:  # one broken strategy must not stop the monitor
            logger.exception("performance monitor: %s failed", allocation)
            continue
        count += 1
    return count
