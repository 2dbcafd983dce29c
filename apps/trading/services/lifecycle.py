"""The lifecycle policy: active strategies get a share of an account, retired ones are wound down.

It applies to an account whose owner turned on ``auto_allocate`` while the operator allows it
(``TRADING_AUTO_ALLOCATE``, on by default; the flag is off by default). Each orchestrator cycle
first carries out the policy's plan for those accounts: every active strategy that can trade on the
account, is its owner's or the system's, and has no allocation there gets
``TRADING_AUTO_ALLOCATE_CAPITAL_PCT`` of it while a share is left, and every enabled allocation of a
retired strategy winds down (its orders canceled, its position sold at the next closed candle, then
switched off). Active means the strategy passed its gate: the generation holdout (with
``GENERATION_AUTO_DEPLOY``) or an operator's activation; the daily update retires those that stop
working.

For an account without the policy the same plan says what the system is waiting for, and the API,
the admin and health show it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from decimal import Decimal

from django.conf import settings

from apps.strategies import selectors as strategy_selectors
from apps.strategies.models import Strategy, StrategyStatus
from apps.trading.models import Account, StrategyAllocation
from apps.trading.services.allocations import (
    AllocationRefused,
    allocation_create,
    allocation_wind_down,
    share_left,
    tradeable_problem,
)

POLICY = "lifecycle policy"
ALLOCATE, WIND_DOWN = "allocate", "wind_down"


@dataclass(frozen=True)
class Step:
    """One thing the policy does (or, while it is off, waits for) on an account."""

    account: int
    action: str  # allocate | wind_down
    strategy_id: str
    reason: str
    allocation: int | None = None
    blocked: str = ""  # why it cannot be done now (no share left); empty: it can

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def policy_on(account: Account) -> bool:
    """Whether the policy acts on the account (the operator allows it and the owner opted in)."""
    return bool(settings.TRADING_AUTO_ALLOCATE and account.auto_allocate)


def auto_share() -> Decimal:
    """The share of an account's equity the policy gives each strategy it allocates."""
    return Decimal(settings.TRADING_AUTO_ALLOCATE_CAPITAL_PCT)


def lifecycle_plan(*, account: Account) -> list[Step]:
    """What the policy would do on the account now: allocations to make, allocations to wind down."""
    allocations = list(account.allocations.select_related("strategy"))
    allocated = {allocation.strategy_id for allocation in allocations}
    steps = [
        Step(
            account=account.pk,
            action=WIND_DOWN,
            strategy_id=allocation.strategy.strategy_id,
            allocation=allocation.pk,
            reason=f"{allocation.strategy.strategy_id} is retired; "
            f"allocation {allocation.pk} is still enabled",
        )
        for allocation in allocations
        if allocation.enabled
        and not allocation.winding_down
        and allocation.strategy.status == StrategyStatus.RETIRED
    ]
    left, share = share_left(account=account), auto_share()
    # Only strategies the account's owner may see: another user's would let them steer this account.
    candidates = (
        strategy_selectors.strategies_visible(user=account.owner)
        .filter(status=StrategyStatus.ACTIVE)
        .exclude(pk__in=allocated)
        .order_by("created_at", "pk")
    )
    for strategy in candidates:
        if tradeable_problem(strategy=strategy, account=account) is not None:
            continue
        blocked = ""
        if share > left:
            blocked = f"no share left: the enabled allocations claim {1 - left:.4f} of the equity"
        else:
            left -= share
        steps.append(
            Step(
                account=account.pk,
                action=ALLOCATE,
                strategy_id=strategy.strategy_id,
                reason=f"{strategy.strategy_id} is active and trades {strategy.instrument.symbol} "
                f"{strategy.timeframe}; it has no allocation on this account",
                blocked=blocked,
            )
        )
    return steps


def lifecycle_apply(*, account: Account | None = None) -> list[Step]:
    """Carry out the plan on every account under the policy (only ``account`` when given); returns
    the steps done (each one also a recorded decision of its strategy)."""
    if not settings.TRADING_AUTO_ALLOCATE:
        return []
    accounts = Account.objects.filter(auto_allocate=True).order_by("pk")
    if account is not None:
        accounts = accounts.filter(pk=account.pk)
    done = []
    for each in accounts:
        for step in lifecycle_plan(account=each):
            if step.blocked:
                continue
            if step.action == WIND_DOWN:
                allocation = StrategyAllocation.objects.get(pk=step.allocation)
                allocation_wind_down(allocation=allocation, by=POLICY, reason=step.reason)
                done.append(step)
                continue
            strategy = Strategy.objects.select_related("instrument").get(strategy_id=step.strategy_id)
            try:
                made = allocation_create(
                    account=each, strategy=strategy, capital_pct=auto_share(), by=POLICY, note=step.reason
                )
            except AllocationRefused:  # changed since the plan was read (another cycle, a user): next cycle
                continue
            done.append(replace(step, allocation=made.pk))
    return done


def waiting(*, accounts: list[Account]) -> list[Step]:
    """What the policy would do on accounts that trade automatically without it: what they wait for."""
    return [
        step
        for account in accounts
        if account.auto_trading and not policy_on(account)
        for step in lifecycle_plan(account=account)
    ]
