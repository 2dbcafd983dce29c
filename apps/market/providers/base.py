"""What every candle provider returns and raises: CandleBatch, MarketInfo and the provider errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

import pandas as pd


class ProviderError(Exception):
    """A market data provider could not deliver; callers catch this, never a third-party exception."""


class TemporaryProviderError(ProviderError):
    """Worth retrying later: a timeout, a rate limit, a 5xx, the network.

    ``retry_after`` is the wait in seconds the exchange asked for, when it said so.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentProviderError(ProviderError):
    """Retrying will not help: a malformed answer, refused credentials, a bad argument."""


class UnknownSymbolError(PermanentProviderError):
    """The exchange does not list this symbol."""


@dataclass(frozen=True)
class FetchProgress:
    """How far a paginated fetch has come: ``reached`` moves from ``since`` towards ``target``."""

    pages: int
    candles: int
    since: datetime
    reached: datetime
    target: datetime

    @property
    def fraction(self) -> float:
        span = (self.target - self.since).total_seconds()
        return 1.0 if span <= 0 else min(1.0, (self.reached - self.since).total_seconds() / span)


ProgressCallback = Callable[[FetchProgress], None]


@dataclass(frozen=True)
class CandleBatch:
    """Final candles of one symbol and timeframe.

    ``candles`` is a validated candle frame (``apps.market.domain.candles``): indexed by the UTC open
    time ``open_time``, strictly increasing, with float64 ``open, high, low, close, volume``.
    ``complete_until`` is exclusive: every candle the source has with an open time before it is in
    the batch, and final. A fetch that reaches the present stops at the open time of the candle still
    forming, so a forming candle is never handed over as final.
    """

    symbol: str
    timeframe: str
    candles: pd.DataFrame
    complete_until: datetime


@dataclass(frozen=True)
class MarketInfo:
    """What creating an instrument needs to know about an exchange market.

    ``symbol`` is the exchange's own id (``BTCUSDT``), ``ccxt_symbol`` the unified one (``BTC/USDT``).
    Steps are the smallest increments of amount and price; ``None`` where the exchange does not say.
    """

    exchange: str
    symbol: str
    ccxt_symbol: str
    base: str
    quote: str
    active: bool
    amount_step: Decimal | None
    price_step: Decimal | None
    min_amount: Decimal | None
    max_amount: Decimal | None
    min_cost: Decimal | None


class CandleProvider(Protocol):
    """A source of final candles for a time range."""

    def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str,
        since: datetime,
        until: datetime | None = None,
        progress: ProgressCallback | None = None,
    ) -> CandleBatch:
        """Candles with ``since <= open time < until`` (or up to the forming candle without ``until``)."""
        ...
