"""Setting a replay up: its own instrument, its paper account and copies of the strategies it trades."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser

from apps.core import clock
from apps.market import selectors as market
from apps.market.models import Instrument
from apps.market.services import candles as market_candles
from apps.market.services import instruments as market_instruments
from apps.strategies.models import Strategy, StrategyStatus
from apps.strategies.services.strategies import strategy_create, strategy_status_set
from apps.trading.models import Account, AccountKind
from apps.trading.replay.plan import NOTE_TIME, ReplayPlan, series_note
from apps.trading.services.accounts import account_create


def replay_target_create(*, plan: ReplayPlan) -> Instrument:
    """Create the target and store the warm-up bars, on the clock of the last one's close."""
    target = market_instruments.instrument_copy_create(
        source=plan.source,
        exchange=plan.target_exchange,
        timeframes=[plan.timeframe],
        note=f"{series_note(plan.source, plan.timeframe)}{plan.bars[0].to_pydatetime():{NOTE_TIME}}",
    )
    if len(plan.warmup):
        frame = market.candles_frame(
            instrument=plan.source, timeframe=plan.timeframe, start=plan.warmup[0], end=plan.warmup[-1]
        )
        with clock.replaying(plan.close_of(plan.warmup[-1])):
            market_candles.candles_store(instrument=target, timeframe=plan.timeframe, frame=frame)
    return target


def replay_account_create(
    *, owner: AbstractBaseUser, name: str, target: Instrument, cash: Decimal
) -> Account:
    """The replay's paper account: the target's exchange and currency, auto-trading on and no order
    rate limit (a replay places hours of orders in seconds of wall clock)."""
    return account_create(
        owner=owner,
        name=name,
        kind=AccountKind.PAPER,
        starting_cash=cash,
        quote_currency=target.quote,
        exchange=target.exchange,
        auto_trading=True,
        max_orders_per_minute=None,
    )


def strategy_copy(*, original: Strategy, target: Instrument, timeframe: str) -> Strategy:
    """An active copy of the strategy's current version trading the target, owned by the original's
    owner (a copy of the system's is the system's), with an ``activated`` decision saying where it
    comes from.

    The copy is active whatever the original's status, without the activation gate: the replay is
    a simulation on stored history, trading a paper account on a market of its own, not a
    deployment; it exists to show what the loop would have done with these strategies."""
    version = original.current_version
    copy = strategy_create(
        name=f"{original.name} (replay)"[:100],
        type=original.type,
        instrument=target,
        timeframe=timeframe,
        parameters=version.parameters,
        indicators=version.indicators,
        rules=version.rules,
        owner=original.owner,
    )
    strategy_status_set(
        copy,
        StrategyStatus.ACTIVE,
        f"copied from {original.strategy_id} v{version.number} to trade {target} (a replay: no gate)",
        {"original": original.strategy_id, "version": version.number},
        actor="replay",
    )
    copy.save(update_fields=["status", "updated_at"])
    return copy
