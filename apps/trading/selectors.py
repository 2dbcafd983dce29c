"""Reads of the trading app: accounts, orders, positions, prices and the portfolio."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import DecimalField, Max, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.market import selectors as market
from apps.market.domain.candles import parse_timeframe
from apps.market.models import Instrument
from apps.strategies.models import Strategy, StrategyStatus
from apps.trading.domain.fills import Side
from apps.trading.domain.ledger import ZERO, PositionState, money
from apps.trading.domain.portfolio import MarkedPosition, PortfolioFigures, portfolio_figures, ratio
from apps.trading.domain.risk_rules import AccountRisk, TradingState
from apps.trading.errors import AccountNotFound
from apps.trading.models import (
    LIVE_STATUSES,
    Account,
    AccountKind,
    OrchestratorCycle,
    Order,
    OrderStatus,
    PortfolioSnapshot,
    Position,
    StrategyAction,
    StrategyAllocation,
    StrategyPerformance,
)

Prices = dict[int, Decimal | None]
# The trigger of a replay's orchestrator cycles starts with this (``replay:<account id>``).
REPLAY_TRIGGER = "replay:"
ZERO_QUANTITY = Value(Decimal(0), output_field=DecimalField(max_digits=28, decimal_places=8))


def account_list(*, user: AbstractBaseUser) -> QuerySet[Account]:
    return Account.objects.filter(owner=user).order_by("created_at")


def account_of(*, user: AbstractBaseUser, account_id: int) -> Account:
    """The user's account ``account_id``; AccountNotFound if they have none with that id."""
    account = Account.objects.filter(pk=account_id, owner=user).first()
    if account is None:
        raise AccountNotFound(f"you have no trading account {account_id}")
    return account


def wallet_account(*, user: AbstractBaseUser, quote_currency: str, exchange: str) -> Account | None:
    """The user's paper account on ``exchange`` in ``quote_currency`` (their oldest, if they made
    several); None before their first order in that currency."""
    accounts = account_list(user=user).filter(kind=AccountKind.PAPER, exchange=exchange)
    return accounts.filter(quote_currency=quote_currency).first()


def account_list_all() -> QuerySet[Account]:
    return Account.objects.order_by("pk")


def account_get(*, account_id: int) -> Account | None:
    return Account.objects.filter(pk=account_id).first()


def accounts_visible(*, user: AbstractBaseUser) -> QuerySet[Account]:
    """The accounts whose allocations and records the user may see and change: their own; staff, all."""
    accounts = Account.objects.order_by("created_at", "pk")
    return accounts if getattr(user, "is_staff", False) else accounts.filter(owner=user)


def live_trading_reason(strategy: Strategy) -> str | None:
    """Why only staff may change the strategy: an enabled allocation on a live account trades it
    (a change would change what real money does); None when no live account trades it."""
    allocation = (
        StrategyAllocation.objects.filter(strategy=strategy, enabled=True, account__kind=AccountKind.LIVE)
        .select_related("account")
        .order_by("pk")
        .first()
    )
    if allocation is None:
        return None
    return (
        f"strategy {strategy.strategy_id} is traded by live account {allocation.account_id} "
        f"({allocation.account.name}, allocation {allocation.pk}): only staff may change it"
    )


def auto_trading_accounts() -> list[Account]:
    """Accounts on which strategies trade automatically."""
    return list(Account.objects.filter(auto_trading=True).order_by("pk"))


def allocation_list(*, accounts: QuerySet[Account]) -> QuerySet[StrategyAllocation]:
    """Allocations on these accounts, each with ``book_quantity``: what its own book holds."""
    held = Position.objects.filter(
        allocation=OuterRef("pk"), instrument=OuterRef("strategy__instrument")
    ).values("quantity")[:1]
    return (
        StrategyAllocation.objects.filter(account__in=accounts)
        .select_related("account", "strategy__instrument")
        .annotate(book_quantity=Coalesce(Subquery(held), ZERO_QUANTITY))
        .order_by("account_id", "pk")
    )


def book_quantity(*, allocation: StrategyAllocation) -> Decimal:
    """What the allocation's own book holds of its strategy's instrument."""
    held = (
        Position.objects.filter(
            account_id=allocation.account_id,
            instrument_id=allocation.strategy.instrument_id,
            allocation=allocation,
        )
        .values_list("quantity", flat=True)
        .first()
    )
    return held or Decimal(0)


def action_list(*, accounts: QuerySet[Account]) -> QuerySet[StrategyAction]:
    """What strategies did on each candle on these accounts, newest candle first."""
    return (
        StrategyAction.objects.filter(allocation__account__in=accounts)
        .select_related("allocation__strategy", "order")
        .order_by("-candle_time", "-pk")
    )


def performance_list(*, accounts: QuerySet[Account]) -> QuerySet[StrategyPerformance]:
    """Per-allocation performance records on these accounts, newest first."""
    return (
        StrategyPerformance.objects.filter(allocation__account__in=accounts)
        .select_related("allocation__strategy")
        .order_by("-time", "allocation_id")
    )


def cycle_list() -> QuerySet[OrchestratorCycle]:
    return OrchestratorCycle.objects.order_by("-created_at", "-pk")


def order_list(*, accounts: QuerySet[Account] | list[Account]) -> QuerySet[Order]:
    return Order.objects.filter(account__in=accounts).select_related("instrument", "account")


def order_get(*, user: AbstractBaseUser, order_id: int) -> Order:
    """The user's order with its fills; raises ``Order.DoesNotExist``."""
    return (
        Order.objects.select_related("instrument", "account")
        .prefetch_related("fills")
        .get(pk=order_id, account__owner=user)
    )


def open_orders(*, account: Account) -> QuerySet[Order]:
    return account.orders.filter(status__in=LIVE_STATUSES).select_related("instrument")


def position_list(*, account: Account, include_closed: bool = False) -> QuerySet[Position]:
    positions = account.positions.select_related("instrument").order_by("instrument__symbol")
    return positions if include_closed else positions.filter(quantity__gt=0)


def snapshot_list(
    *, account: Account, start: datetime | None = None, end: datetime | None = None
) -> QuerySet[PortfolioSnapshot]:
    return snapshots_of(accounts=Account.objects.filter(pk=account.pk), start=start, end=end)


def snapshots_of(
    *, accounts: QuerySet[Account], start: datetime | None = None, end: datetime | None = None
) -> QuerySet[PortfolioSnapshot]:
    """The accounts' portfolio snapshots, oldest first (one moment's: by account)."""
    snapshots = PortfolioSnapshot.objects.filter(account__in=accounts).order_by("time", "account_id")
    if start is not None:
        snapshots = snapshots.filter(time__gte=start)
    if end is not None:
        snapshots = snapshots.filter(time__lte=end)
    return snapshots


def last_price(*, instrument: Instrument) -> Decimal | None:
    """The latest price known: the close of the stored candle that closed last, over every timeframe.

    Candles are stored once final, so this is the last trade price of the newest closed bar.
    """
    newest: tuple[datetime, float] | None = None
    for timeframe in market.candle_timeframes(instrument=instrument):
        frame = market.candles_frame(instrument=instrument, timeframe=timeframe, limit=1)
        if frame.empty:
            continue
        closes_at = frame.index[-1].to_pydatetime() + parse_timeframe(timeframe).duration.to_pytimedelta()
        if newest is None or closes_at > newest[0]:
            newest = (closes_at, float(frame["close"].iloc[-1]))
    return None if newest is None else Decimal(str(newest[1]))


def _marks(positions: list[Position], prices: Prices) -> list[MarkedPosition]:
    for position in positions:
        if position.instrument_id not in prices:
            prices[position.instrument_id] = last_price(instrument=position.instrument)
    return [
        MarkedPosition(
            symbol=p.instrument.symbol,
            state=PositionState(p.quantity, p.cost_basis, p.realised_pnl),
            mark=prices[p.instrument_id],
        )
        for p in positions
    ]


@dataclass(frozen=True)
class PositionRow:
    position: Position
    marked: MarkedPosition
    weight: Decimal

    @property
    def unrealised_pct(self) -> Decimal:
        return ratio(self.marked.unrealised, self.position.cost_basis)


@dataclass(frozen=True)
class Portfolio:
    account: Account
    figures: PortfolioFigures
    rows: list[PositionRow]


def portfolio(*, account: Account, prices: Prices | None = None) -> Portfolio:
    """The account's value now: cash, positions at their last prices, PnL, exposure, drawdown."""
    prices = {} if prices is None else prices
    held = list(position_list(account=account))
    marked = _marks(held, prices)
    realised = account.positions.aggregate(total=Sum("realised_pnl"))["total"] or ZERO
    figures = portfolio_figures(
        cash=account.cash,
        positions=marked,
        starting_cash=account.starting_cash,
        peak_equity=account.peak_equity,
        day_start_equity=account.day_start_equity,
        realised_pnl=realised,
    )
    rows = [PositionRow(p, m, ratio(m.value, figures.equity)) for p, m in zip(held, marked, strict=True)]
    return Portfolio(account=account, figures=figures, rows=rows)


@dataclass(frozen=True)
class Wallet:
    """The user's accounts valued now, oldest first, and the one a request without ``account`` shows
    in full (``shown``: the one named, else the oldest; None while the user has no account)."""

    portfolios: list[Portfolio]
    shown: Portfolio | None


def wallet(*, user: AbstractBaseUser, account_id: int | None = None) -> Wallet:
    """Every account of the user at its last prices; ``account_id`` (AccountNotFound if not theirs)
    chooses the one shown in full. Creates nothing: a user without accounts has an empty wallet."""
    named = None if account_id is None else account_of(user=user, account_id=account_id)
    prices: Prices = {}  # one last price per instrument, whichever accounts hold it
    portfolios = [portfolio(account=account, prices=prices) for account in account_list(user=user)]
    if named is None:
        return Wallet(portfolios=portfolios, shown=portfolios[0] if portfolios else None)
    return Wallet(portfolios=portfolios, shown=next(p for p in portfolios if p.account.pk == named.pk))


def wallet_positions(*, user: AbstractBaseUser, account_id: int | None = None) -> list[PositionRow]:
    """Open positions of the account ``account_id`` (AccountNotFound if not theirs), or of every
    account of the user (oldest account first), at their last prices."""
    if account_id is not None:
        return portfolio(account=account_of(user=user, account_id=account_id)).rows
    prices: Prices = {}
    return [
        row for account in account_list(user=user) for row in portfolio(account=account, prices=prices).rows
    ]


def _open_buy_notional(orders: list[Order], prices: Prices) -> dict[int, Decimal]:
    """What each instrument's open buy orders may still spend, at their own price or the last one."""
    spend: dict[int, Decimal] = {}
    for order in orders:
        if order.side != Side.BUY:
            continue
        if order.instrument_id not in prices:
            prices[order.instrument_id] = last_price(instrument=order.instrument)
        price = order.price or order.stop_price or prices[order.instrument_id] or ZERO
        spend[order.instrument_id] = spend.get(order.instrument_id, ZERO) + money(
            order.remaining_quantity * price
        )
    return spend


def _offered_quantity(
    orders: list[Order], instrument_id: int, oco_group: str, allocation_id: int | None
) -> Decimal:
    """What open sells of one book already offer of the instrument; the orders of one OCO group
    offer it once, and those of ``oco_group`` (the group of the order being checked) not at all."""
    by_group: dict[str, Decimal] = {}
    for order in orders:
        if (
            order.side == Side.SELL
            and order.instrument_id == instrument_id
            and order.allocation_id == allocation_id
            and not (oco_group and order.oco_group == oco_group)
        ):
            key = order.oco_group or f"order-{order.pk}"
            by_group[key] = max(by_group.get(key, ZERO), order.remaining_quantity)
    return sum(by_group.values(), ZERO)


def account_risk(
    *,
    account: Account,
    instrument: Instrument,
    now: datetime,
    prices: Prices,
    exclude_order: Order | None = None,
    allocation_id: int | None = None,
) -> tuple[AccountRisk, PortfolioFigures]:
    """The account as the risk manager sees it for an order in ``instrument`` (read under its lock).

    ``exclude_order`` is the order being checked, already stored: it must not count against itself.
    Limits apply to the account's sum: the instrument's position is every book's together; what a
    sell may sell is its own book's holding (``allocation_id``: an allocation's, or the manual book).
    """
    orders = list(open_orders(account=account).exclude(pk=exclude_order.pk if exclude_order else None))
    figures = portfolio(account=account, prices=prices).figures
    spend = _open_buy_notional(orders, prices)
    books = list(Position.objects.filter(account=account, instrument=instrument))
    quantity = sum((book.quantity for book in books), ZERO)
    cost_basis = sum((book.cost_basis for book in books), ZERO)
    own = next((book.quantity for book in books if book.allocation_id == allocation_id), ZERO)
    mark = prices.get(instrument.pk) if instrument.pk in prices else last_price(instrument=instrument)
    prices[instrument.pk] = mark
    recent = account.orders.filter(created_at__gte=now - timedelta(minutes=1)).exclude(
        Q(status=OrderStatus.REJECTED) | Q(pk=exclude_order.pk if exclude_order else None)
    )
    open_buy = sum(spend.values(), ZERO)
    oco_group = exclude_order.oco_group if exclude_order else ""
    risk = AccountRisk(
        state=TradingState(account.trading_state),
        equity=figures.equity,
        peak_equity=figures.peak_equity,
        day_start_equity=account.day_start_equity,
        positions_value=figures.positions_value,
        open_buy_notional=open_buy,
        available_cash=account.cash - money(open_buy * (1 + account.paper_fee_rate)),
        instrument_position_value=money(quantity * mark) if mark is not None else cost_basis,
        instrument_open_buy_notional=spend.get(instrument.pk, ZERO),
        position_quantity=own,
        sellable_quantity=own - _offered_quantity(orders, instrument.pk, oco_group, allocation_id),
        open_orders=len(orders),
        open_positions=account.positions.filter(quantity__gt=0).values("instrument").distinct().count(),
        orders_last_minute=recent.count(),
    )
    return risk, figures


def live_accounts_to_reconcile() -> list[Account]:
    """Live accounts with keys, when live trading is on; none otherwise."""
    if not settings.LIVE_TRADING_ENABLED:
        return []
    return [a for a in Account.objects.filter(kind=AccountKind.LIVE) if a.has_api_keys]


def orders_awaiting_submission(
    *, account: Account | None = None, min_age_seconds: int | None = None
) -> list[int]:
    """Live orders still NEW after ``min_age_seconds`` (default ``TRADING_SUBMIT_STALE_SECONDS``: their
    submit message was lost). Enqueuing a submission twice is harmless: only one claims the order."""
    age = settings.TRADING_SUBMIT_STALE_SECONDS if min_age_seconds is None else min_age_seconds
    orders = Order.objects.filter(
        status=OrderStatus.NEW,
        account__kind=AccountKind.LIVE,
        created_at__lte=timezone.now() - timedelta(seconds=age),
    )
    if account is not None:
        orders = orders.filter(account=account)
    return list(orders.values_list("pk", flat=True))


# -- facts for the health document's trading components (apps.health classifies them) -------------


def allocations_to_trade_count() -> int:
    """How many enabled allocations of active strategies are on accounts with auto-trading on."""
    return StrategyAllocation.objects.filter(
        enabled=True, account__auto_trading=True, strategy__status=StrategyStatus.ACTIVE
    ).count()


def orchestrator_cycle_last() -> OrchestratorCycle | None:
    """The live orchestrator's newest cycle, whatever its status (a replay's cycles are history)."""
    return (
        OrchestratorCycle.objects.exclude(trigger__startswith=REPLAY_TRIGGER).order_by("-created_at").first()
    )


def snapshot_newest_time() -> datetime | None:
    """When the newest portfolio snapshot of any account was taken."""
    return PortfolioSnapshot.objects.aggregate(newest=Max("time"))["newest"]


def halted_account_names() -> list[str]:
    """The accounts whose trading is halted (by an operator or the drawdown limit), by name."""
    return list(Account.objects.filter(trading_state=TradingState.HALTED).values_list("name", flat=True))


@dataclass(frozen=True)
class AllocationResult:
    """An enabled allocation's newest performance record, and the backtest return of its newest record
    that has one (None: no record has a backtest yet)."""

    allocation: StrategyAllocation
    latest: StrategyPerformance
    backtest_return_pct: Decimal | None


def allocation_results_latest() -> list[AllocationResult]:
    """Each enabled allocation with a performance record, in the allocations' order; two queries in all."""
    newest_first = StrategyPerformance.objects.filter(allocation=OuterRef("pk")).order_by("-time")
    allocations = list(
        StrategyAllocation.objects.filter(enabled=True)
        .annotate(
            latest_id=Subquery(newest_first.values("pk")[:1]),
            compared_id=Subquery(newest_first.exclude(backtest_return_pct=None).values("pk")[:1]),
        )
        .filter(latest_id__isnull=False)
        .select_related("strategy", "account")
    )
    wanted = {a.latest_id for a in allocations} | {
        a.compared_id for a in allocations if a.compared_id is not None
    }
    records = StrategyPerformance.objects.in_bulk(wanted)
    return [
        AllocationResult(
            allocation=allocation,
            latest=records[allocation.latest_id],
            backtest_return_pct=records[allocation.compared_id].backtest_return_pct
            if allocation.compared_id is not None
            else None,
        )
        for allocation in allocations
    ]
