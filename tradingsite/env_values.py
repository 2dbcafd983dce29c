"""Checks of environment values the settings read: each returns the value, or refuses it at start-up
with ImproperlyConfigured naming the variable."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ImproperlyConfigured


def paper_balance(name: str, text: str) -> str:
    """``text`` if it is a ledger amount above 0 (20 digits before the point, 8 after), else refuse."""
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount <= 0 or amount.adjusted() >= 20 or amount != round(amount, 8):
        raise ImproperlyConfigured(
            f"{name} must be an amount above 0 with at most 20 digits before the point and 8 after, "
            f"not {text!r}"
        )
    return text.strip()


def paper_balances(name: str, text: str) -> dict[str, str]:
    """``"USD=10000,USDT=5000"`` as ``{"USD": "10000", "USDT": "5000"}``; anything else is refused."""
    balances: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        currency, equals, amount = (piece.strip() for piece in entry.partition("="))
        currency = currency.upper()
        if not equals or not re.fullmatch(r"[A-Z0-9]{1,16}", currency):
            raise ImproperlyConfigured(
                f"{name} must be CURRENCY=AMOUNT pairs separated by commas (USD=10000,USDT=5000), "
                f"not {entry!r}"
            )
        if currency in balances:
            raise ImproperlyConfigured(f"{name} names {currency} twice")
        balances[currency] = paper_balance(f"{name}[{currency}]", amount)
    return balances


def utc_day(name: str, text: str) -> datetime | None:
    """A date like 2023-01-01 as midnight UTC; empty is None."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={text!r} is not a date like 2023-01-01") from None


def price_table(name: str, table: dict[str, Any]) -> dict[str, Any]:
    """Prices per model, each ``{"input": USD, "output": USD}`` per million tokens."""
    for model, price in table.items():
        if not (isinstance(price, dict) and {"input", "output"} <= price.keys()):
            raise ImproperlyConfigured(f'{name}[{model!r}] must be {{"input": USD, "output": USD}}')
    return table
