"""The user's paper wallet: one paper account per quote currency, opened by the first order (or
allocation) in that currency, like the balances of an exchange wallet. Its accounts are the user's
paper accounts on :data:`WALLET_EXCHANGE`, the oldest in each currency.

An order or allocation that names no account goes to the wallet account of its market's quote
currency: BTCUSD to "Paper USD", BTCUSDT to "Paper USDT". A new one holds
``TRADING_PAPER_STARTING_BALANCES[currency]``, else ``TRADING_PAPER_STARTING_CASH``. It is opened in
the same transaction as the order or allocation, so a request refused for its input opens nothing.
Reads never open one (:func:`apps.trading.selectors.wallet`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from apps.strategies.models import Strategy
from apps.trading import selectors
from apps.trading.errors import AccountNotFound
from apps.trading.models import Account, AccountKind, StrategyAllocation
from apps.trading.services.accounts import account_create
from apps.trading.services.allocations import allocation_create
from apps.trading.services.orders import Placement, order_instrument, order_place

# The exchange label of the wallet's accounts (every account's default): an order takes this
# exchange's listing of a symbol listed on several. A paper account elsewhere (a replay's, on its
# own instrument's exchange) is never the wallet's.
WALLET_EXCHANGE = "binance"


def starting_balance(*, quote_currency: str) -> Decimal:
    """What a new wallet account in ``quote_currency`` holds."""
    balances = settings.TRADING_PAPER_STARTING_BALANCES
    return Decimal(balances.get(quote_currency, settings.TRADING_PAPER_STARTING_CASH))


def wallet_account_open(*, user: AbstractBaseUser, quote_currency: str) -> Account:
    """The user's wallet account in ``quote_currency``, opened with its starting balance if they have none.

    Raises AccountNotFound when the name it would take (``Paper USD``) is taken by another account.
    """
    existing = selectors.wallet_account(user=user, quote_currency=quote_currency, exchange=WALLET_EXCHANGE)
    if existing is not None:
        return existing
    name = f"Paper {quote_currency}"
    try:
        with transaction.atomic():
            return account_create(
                owner=user,
                name=name,
                kind=AccountKind.PAPER,
                quote_currency=quote_currency,
                exchange=WALLET_EXCHANGE,
                starting_cash=starting_balance(quote_currency=quote_currency),
            )
    except IntegrityError:  # the name is taken: by a concurrent first order, or by another account
        opened = selectors.wallet_account(user=user, quote_currency=quote_currency, exchange=WALLET_EXCHANGE)
        if opened is None:
            raise AccountNotFound(
                f"your account {name!r} is not a paper account in {quote_currency} on {WALLET_EXCHANGE}: "
                "name the account to use"
            ) from None
        return opened


def wallet_order_place(
    *, user: AbstractBaseUser, symbol: str, listing: str | None = None, **order: Any
) -> Placement:
    """Place an order on the wallet account of the symbol's quote currency (see the module docstring);
    ``listing`` names the exchange whose listing to trade; ``order`` is :func:`order_place`'s other
    arguments. Raises what it raises, and AccountNotFound."""
    instrument = order_instrument(symbol=symbol, exchange=WALLET_EXCHANGE, listing=listing)
    with transaction.atomic():
        account = wallet_account_open(user=user, quote_currency=instrument.quote)
        return order_place(account=account, instrument=instrument, user=user, **order)


def wallet_allocation_create(
    *, user: AbstractBaseUser, strategy: Strategy, **allocation: Any
) -> StrategyAllocation:
    """Allocate a share of the wallet account of the strategy's quote currency; ``allocation`` is
    :func:`allocation_create`'s other arguments. Raises AllocationRefused, and AccountNotFound."""
    with transaction.atomic():
        account = wallet_account_open(user=user, quote_currency=strategy.instrument.quote)
        return allocation_create(account=account, strategy=strategy, **allocation)
