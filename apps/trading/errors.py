"""The trading app's exceptions: what its services raise and the exchange adapter translates into."""

from __future__ import annotations

from apps.core.errors import PermanentError, TemporaryError


class TradingError(Exception):
    """Base of the errors a trading service raises on purpose."""


class OrderInputError(TradingError):
    """A malformed order, named by its field (``symbol``, ``quantity``...); nothing was stored."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class AccountNotFound(TradingError, LookupError):
    """No account with that id belongs to the user."""


class OrderNotCancelable(TradingError):
    """The order is final, or its outcome on the exchange is not known yet."""


class ExchangeRejected(PermanentError):
    """The exchange refused the order; ``code`` is the project's (``insufficient_funds``...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class OutcomeUnknown(TemporaryError):
    """The request may or may not have taken effect (a timeout after sending, a 5xx, Binance -1007).

    For an order: ask the exchange for its client order id; never send it again.
    """


class ExchangeUnavailable(TemporaryError):
    """A read from the exchange failed for a reason that may pass (network, rate limit, 5xx)."""


class ExchangeOrderNotFound(TradingError, LookupError):
    """The exchange has no order with that id."""
