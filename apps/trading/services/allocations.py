"""Strategy allocations: give a strategy a share of an account, change it, pause it, wind it down.

An allocation is refused when it could never trade: a draft or retired strategy, an instrument
quoted in a currency the account does not hold, another exchange than a live account's, or shares
of the account's enabled allocations that would add up to more than all of its equity. Every
change is recorded as a decision of the strategy, with who made it.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.db.models import Sum

from apps.strategies.models import DecisionKind, Strategy, StrategyStatus
from apps.strategies.services.strategies import decision_record
from apps.trading import selectors
from apps.trading.errors import TradingError
from apps.trading.models import LIVE_STATUSES, Account, StrategyAllocation

FULL_SHARE = Decimal(1)


class AllocationRefused(TradingError):
    """The allocation could never trade, or would over-commit the account; ``field`` names why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def tradeable_problem(*, strategy: Strategy, account: Account) -> AllocationRefused | None:
    """Why ``strategy`` could never trade on ``account`` (None: it could)."""
    if strategy.status in (StrategyStatus.DRAFT, StrategyStatus.RETIRED):
        return AllocationRefused(
            "strategy", f"{strategy.strategy_id} is {strategy.status}: only active or paused strategies trade"
        )
    instrument = strategy.instrument
    if instrument.quote != account.quote_currency:
        return AllocationRefused(
            "strategy",
            f"{strategy.strategy_id} trades {instrument.symbol}, quoted in {instrument.quote}; "
            f"account {account.pk} ({account.name}) holds {account.quote_currency}",
        )
    # A paper account may trade on any exchange's prices; a live one only on its own exchange.
    if account.is_live and instrument.exchange != account.exchange:
        return AllocationRefused(
            "strategy",
            f"{strategy.strategy_id} trades on {instrument.exchange}; "
            f"live account {account.pk} ({account.name}) is on {account.exchange}",
        )
    return None


def share_left(*, account: Account, excluding: StrategyAllocation | None = None) -> Decimal:
    """The part of the account's equity no enabled allocation (other than ``excluding``) claims."""
    enabled = StrategyAllocation.objects.filter(account=account, enabled=True)
    if excluding is not None:
        enabled = enabled.exclude(pk=excluding.pk)
    claimed = enabled.aggregate(total=Sum("capital_pct"))["total"] or Decimal(0)
    return max(FULL_SHARE - claimed, Decimal(0))


def _check_share(account: Account, capital_pct: Decimal, excluding: StrategyAllocation | None) -> None:
    left = share_left(account=account, excluding=excluding)
    if capital_pct > left:
        raise AllocationRefused(
            "capital_pct",
            f"account {account.pk}'s enabled allocations already claim {FULL_SHARE - left:.4f} of its "
            f"equity; at most {left:.4f} is left",
        )


def allocation_create(
    *,
    account: Account,
    strategy: Strategy,
    capital_pct: Decimal,
    enabled: bool = True,
    by: str,
    note: str = "",
) -> StrategyAllocation:
    """Allocate ``capital_pct`` of the account's equity to the strategy; AllocationRefused says why not.

    ``by`` is the user name or the job that decided it.
    """
    problem = tradeable_problem(strategy=strategy, account=account)
    if problem is not None:
        raise problem
    with transaction.atomic():
        Account.objects.select_for_update().get(pk=account.pk)  # one share check at a time per account
        if StrategyAllocation.objects.filter(account=account, strategy=strategy).exists():
            raise AllocationRefused(
                "strategy", f"{strategy.strategy_id} already has an allocation on account {account.pk}"
            )
        if enabled:
            _check_share(account, capital_pct, excluding=None)
        allocation = StrategyAllocation.objects.create(
            account=account,
            strategy=strategy,
            capital_pct=capital_pct,
            enabled=enabled,
            note=note[:300],
            created_by=by[:150],
        )
        decision_record(
            strategy,
            DecisionKind.ALLOCATED,
            f"allocated {capital_pct:.4f} of account {account.pk} ({account.name}) by {by}"
            + (f": {note}" if note else ""),
            {"allocation": allocation.pk, "account": account.pk, "capital_pct": str(capital_pct)},
            actor=by,
        )
    return allocation


def allocation_change(
    *,
    allocation: StrategyAllocation,
    by: str,
    capital_pct: Decimal | None = None,
    enabled: bool | None = None,
    note: str | None = None,
) -> StrategyAllocation:
    """Change an allocation's share, switch it on or off (off keeps its book as it is), or its note.

    Switching on checks again that it can trade; a winding-down allocation cannot be switched on.
    """
    with transaction.atomic():
        Account.objects.select_for_update().get(pk=allocation.account_id)
        current = StrategyAllocation.objects.select_related("strategy__instrument", "account").get(
            pk=allocation.pk
        )
        will_be_enabled = current.enabled if enabled is None else enabled
        if enabled and not current.enabled:
            if current.winding_down:
                raise AllocationRefused("enabled", "it is winding down; switch it on once its book is closed")
            problem = tradeable_problem(strategy=current.strategy, account=current.account)
            if problem is not None:
                raise problem
        share = current.capital_pct if capital_pct is None else capital_pct
        if will_be_enabled:
            _check_share(current.account, share, excluding=current)
        changes = []
        if share != current.capital_pct:
            changes.append(f"share {current.capital_pct:.4f} -> {share:.4f}")
        if will_be_enabled != current.enabled:
            changes.append("switched on" if will_be_enabled else "switched off (its book is kept as it is)")
        current.capital_pct, current.enabled = share, will_be_enabled
        if note is not None:
            current.note = note[:300]
        current.save(update_fields=["capital_pct", "enabled", "note"])
        if changes:
            decision_record(
                current.strategy,
                DecisionKind.ALLOCATED,
                f"allocation {current.pk} on account {current.account_id} changed by {by}: "
                + ", ".join(changes),
                {"allocation": current.pk, "account": current.account_id, "capital_pct": str(share)},
                actor=by,
            )
    return current


def allocation_wind_down(*, allocation: StrategyAllocation, by: str, reason: str) -> StrategyAllocation:
    """Close the allocation's book at its next closed candle (its orders canceled, its position sold),
    then switch it off. An allocation whose book is already flat is switched off now."""
    with transaction.atomic():
        current = (
            StrategyAllocation.objects.select_for_update().select_related("strategy").get(pk=allocation.pk)
        )
        if not current.enabled:
            return current
        holds = selectors.book_quantity(allocation=current) > 0
        open_orders = current.orders.filter(status__in=LIVE_STATUSES).exists()
        if holds or open_orders:
            current.winding_down, current.note = True, f"winding down: {reason}"[:300]
            message = f"allocation {current.pk} on account {current.account_id} winds down ({by}): {reason}"
        else:
            current.enabled, current.note = False, f"wound down: {reason}; its book was flat"[:300]
            message = (
                f"allocation {current.pk} on account {current.account_id} switched off ({by}): {reason}; "
                "its book was flat"
            )
        current.save(update_fields=["winding_down", "enabled", "note"])
        decision_record(
            current.strategy,
            DecisionKind.WOUND_DOWN,
            message,
            {"allocation": current.pk, "account": current.account_id, "winding_down": current.winding_down},
            actor=by,
        )
    return current


def allocations_pause(*, account: Account, note: str) -> int:
    """Switch the account's enabled allocations off, marked with ``note``, until
    :func:`allocations_resume` (a replay between runs: a running system's orchestrator would
    otherwise cycle over them on the wall clock and find their data years old). Returns how many."""
    return account.allocations.filter(enabled=True).update(enabled=False, note=note[:300])


def allocations_resume(*, account: Account, note: str) -> int:
    """Switch back on what :func:`allocations_pause` switched off with ``note``."""
    return account.allocations.filter(enabled=False, note=note[:300]).update(enabled=True, note="")
