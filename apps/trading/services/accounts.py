"""Trading accounts: create one, switch auto-trading and the lifecycle policy, halt and resume trading.

A user's paper wallet (an account per quote currency, opened on first use) is :mod:`.wallet`.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from apps.trading import selectors
from apps.trading.accounting import lock_account
from apps.trading.domain.risk_rules import TradingState
from apps.trading.models import Account, AccountKind, AccountStateChange
from apps.trading.services import risk_gate

logger = logging.getLogger(__name__)


def account_create(
    *,
    owner: AbstractBaseUser,
    name: str,
    kind: str = AccountKind.PAPER,
    starting_cash: Decimal,
    quote_currency: str | None = None,
    exchange: str = "binance",
    api_key: str = "",
    secret: str = "",
    **fields: object,
) -> Account:
    """Create an account holding ``starting_cash``; ``fields`` set other Account fields by name (risk
    limits, paper costs, ``auto_trading``). Paper costs default to ``TRADING_PAPER_*``."""
    account = Account(
        owner=owner,
        name=name,
        kind=kind,
        exchange=exchange,
        quote_currency=quote_currency or settings.TRADING_DEFAULT_QUOTE_CURRENCY,
        starting_cash=starting_cash,
        cash=starting_cash,
        peak_equity=starting_cash,
        day_start_equity=starting_cash,
        **{
            "paper_fee_rate": Decimal(settings.TRADING_PAPER_FEE_RATE),
            "paper_slippage": Decimal(settings.TRADING_PAPER_SLIPPAGE),
            **fields,
        },
    )
    account.set_api_keys(api_key=api_key, secret=secret)
    account.full_clean(exclude=["owner"])
    account.save()
    return account


def account_change(
    *,
    account: Account,
    by: AbstractBaseUser,
    auto_trading: bool | None = None,
    auto_allocate: bool | None = None,
) -> Account:
    """Switch the account's auto-trading (its allocations trade) and lifecycle policy on or off."""
    changes = {
        name: value
        for name, value in (("auto_trading", auto_trading), ("auto_allocate", auto_allocate))
        if value is not None
    }
    Account.objects.filter(pk=account.pk).update(**changes)
    logger.info("account %s: %s set by %s", account.pk, changes, by.get_username())
    account.refresh_from_db()
    return account


def account_halt(
    *, account: Account, by: AbstractBaseUser | None, reason: str = ""
) -> AccountStateChange | None:
    """The kill switch: nothing new reaches the broker until the account is resumed. Cancels still work."""
    with transaction.atomic():
        locked = lock_account(account.pk)
        return risk_gate.state_set(
            account=locked, state=TradingState.HALTED, reason=reason or "halted by an operator", by=by
        )


def account_resume(
    *, account: Account, by: AbstractBaseUser | None, reason: str = ""
) -> AccountStateChange | None:
    """Back to active; the drawdown peak restarts from the equity now, so the limit that halted it
    does not halt it again at once."""
    with transaction.atomic():
        locked = lock_account(account.pk)
        locked.peak_equity = selectors.portfolio(account=locked).figures.equity
        locked.save(update_fields=["peak_equity"])
        return risk_gate.state_set(
            account=locked, state=TradingState.ACTIVE, reason=reason or "resumed by an operator", by=by
        )
