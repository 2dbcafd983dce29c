"""Candles and market facts from any ccxt exchange (Binance by default), with every ccxt error translated.

ccxt is used here and nowhere in the pure domain. Nothing below knows Django: settings arrive as
arguments, so the class runs against a local fake exchange in unit tests.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from difflib import get_close_matches
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import ccxt
import pandas as pd

from apps.core.retry import retry_temporary
from apps.market.domain.candle_files import candles_from_rows
from apps.market.domain.candles import CandleError, Timeframe, parse_timeframe

from .base import (
    CandleBatch,
    FetchProgress,
    MarketInfo,
    PermanentProviderError,
    ProgressCallback,
    TemporaryProviderError,
    UnknownSymbolError,
)

T = TypeVar("T")

PAGE_LIMIT = 1000
MAX_RETRY_AFTER_SECONDS = 60.0
# Spot only: the project trades spot, and without these a keyed Binance client also loads futures,
# margin pairs and the private currency list on every load_markets().
BINANCE_OPTIONS = {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}
# OperationFailed is ccxt's "may succeed if retried" family (NetworkError and its rate-limit, timeout
# and unavailable children, and exchange codes like Binance's -1001 "Internal error; try again");
# its BadResponse branch is a malformed answer, which a retry will not mend.
TEMPORARY_ERRORS = (ccxt.OperationFailed,)
PERMANENT_ERRORS = (ccxt.BadResponse,)
RATE_LIMIT_ERRORS = (ccxt.DDoSProtection, ccxt.RateLimitExceeded)


class CcxtProvider:
    """Paginated OHLCV and market metadata from one ccxt exchange; not thread-safe (ccxt is not).

    ``urls_override`` is a base URL (``http://127.0.0.1:8123``) that replaces the scheme and host of
    every entry in ``exchange.urls['api']``, keeping the paths: how tests reach a fake exchange.
    Temporary failures are retried ``max_retries`` times with exponential backoff (``backoff_base``
    seconds, doubled each time; at least the Retry-After an exchange sends, up to 60 s beyond which it
    gives up at once), using ``sleep``. ``now`` and ``sleep`` are injectable for tests, and so is
    ``rate_limit_ms``, the spacing ccxt's own limiter keeps between requests (the exchange's default).
    """

    def __init__(
        self,
        exchange_id: str = "binance",
        *,
        api_key: str | None = None,
        secret: str | None = None,
        urls_override: str | None = None,
        timeout_ms: int = 10_000,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        options: Mapping[str, Any] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        rate_limit_ms: int | None = None,
        page_limit: int = PAGE_LIMIT,
    ) -> None:
        exchange_class = getattr(ccxt, exchange_id, None) if exchange_id in ccxt.exchanges else None
        if exchange_class is None:
            raise PermanentProviderError(
                f"unknown exchange {exchange_id!r}; ccxt knows {len(ccxt.exchanges)} ids"
            )
        config: dict[str, Any] = {
            "enableRateLimit": True,
            "enableLastJsonResponse": True,
            "timeout": timeout_ms,
            "options": {**(BINANCE_OPTIONS if exchange_id == "binance" else {}), **(options or {})},
        }
        if api_key:
            config["apiKey"] = api_key
            config["secret"] = secret
        if rate_limit_ms is not None:
            config["rateLimit"] = rate_limit_ms
        self.exchange = exchange_class(config)
        if urls_override:
            self.exchange.urls["api"] = _rehost(self.exchange.urls["api"], urls_override)
        self.exchange_id = exchange_id
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.page_limit = page_limit
        self._now = now
        self._sleep = sleep
        self._markets_loaded = False

    # -- markets ---------------------------------------------------------------------------------

    def load_market(self, symbol: str) -> MarketInfo:
        """The market behind a project symbol (``BTCUSDT``) or a unified one (``BTC/USDT``)."""
        market = self._market(symbol)
        precision, limits = market.get("precision") or {}, market.get("limits") or {}
        amount, cost = limits.get("amount") or {}, limits.get("cost") or {}
        return MarketInfo(
            exchange=self.exchange_id,
            symbol=market["id"],
            ccxt_symbol=market["symbol"],
            base=market["base"],
            quote=market["quote"],
            active=market.get("active") is not False,
            amount_step=self._step(precision.get("amount")),
            price_step=self._step(precision.get("price")),
            min_amount=_decimal(amount.get("min")),
            max_amount=_decimal(amount.get("max")),
            min_cost=_decimal(cost.get("min")),
        )

    def ccxt_symbol(self, symbol: str) -> str:
        """The unified symbol for a project symbol, looked up in the exchange's own market list."""
        return self._market(symbol)["symbol"]

    def _market(self, symbol: str) -> dict[str, Any]:
        self._load_markets()
        markets = self.exchange.markets
        if symbol in markets:
            return markets[symbol]
        by_id = [m for m in self.exchange.markets_by_id.get(symbol, []) if m.get("spot", True)]
        if by_id:
            return by_id[0]
        by_assets = [m for m in markets.values() if m.get("spot", True) and m["base"] + m["quote"] == symbol]
        if by_assets:
            return by_assets[0]
        close = get_close_matches(symbol, list(self.exchange.markets_by_id), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownSymbolError(f"{self.exchange_id} has no market {symbol!r}{hint}")

    def _load_markets(self) -> None:
        if not self._markets_loaded:
            self._call(self.exchange.load_markets)
            if not self.exchange.markets:
                # ccxt reads an answer without a market list as an empty one: every symbol would look unknown
                raise PermanentProviderError(f"{self.exchange_id} listed no markets")
            self._markets_loaded = True

    def _step(self, precision: float | None) -> Decimal | None:
        """The smallest increment, whether the exchange counts precision in ticks or in decimal places."""
        if precision is None:
            return None
        if self.exchange.precisionMode == ccxt.TICK_SIZE:
            return _decimal(precision)
        if self.exchange.precisionMode == ccxt.DECIMAL_PLACES:
            return Decimal(1).scaleb(-int(precision))
        return None  # significant digits: no fixed step

    # -- candles ---------------------------------------------------------------------------------

    def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str,
        since: datetime,
        until: datetime | None = None,
        progress: ProgressCallback | None = None,
    ) -> CandleBatch:
        """Final candles with ``since <= open time < until``; without ``until``, up to the forming candle.

        Pages of ``page_limit`` candles are requested from ``since`` on, each starting after the last
        open time received, until a page comes back short or the end is reached; overlaps are dropped.
        """
        if since.tzinfo is None or (until is not None and until.tzinfo is None):
            raise ValueError("since and until must be timezone-aware datetimes")
        period = self._timeframe(timeframe)
        unified = self.ccxt_symbol(symbol)
        forming = period.floor(pd.DatetimeIndex([self._now()]))[0].to_pydatetime()
        end = forming if until is None else min(forming, until)
        end_ms, cursor = _ms(end), _ms(since)
        rows: dict[int, list[float]] = {}
        pages = 0
        while cursor < end_ms:
            page = self._fetch_page(unified, timeframe, cursor)
            pages += 1
            rows.update((row[0], row) for row in page if cursor <= row[0] < end_ms)
            if progress is not None:
                reached = _from_ms(page[-1][0]) if len(page) == self.page_limit else end
                progress(FetchProgress(pages, len(rows), since, min(reached, end), end))
            if len(page) < self.page_limit:
                break
            cursor = page[-1][0] + 1
        try:
            candles = candles_from_rows([rows[t][:6] for t in sorted(rows)])
        except CandleError as error:
            raise PermanentProviderError(f"{self.exchange_id} sent invalid candles: {error}") from error
        return CandleBatch(symbol=symbol, timeframe=timeframe, candles=candles, complete_until=end)

    def _timeframe(self, timeframe: str) -> Timeframe:
        """The project's timeframe, if the exchange has it too."""
        try:
            period = parse_timeframe(timeframe)
        except CandleError as error:
            raise PermanentProviderError(str(error)) from error
        if timeframe not in (self.exchange.timeframes or {}):
            valid = ", ".join(self.exchange.timeframes or {})
            raise PermanentProviderError(f"{self.exchange_id} has no timeframe {timeframe!r}; it has {valid}")
        return period

    def _fetch_page(self, unified: str, timeframe: str, since_ms: int) -> list[list[float]]:
        page = self._call(lambda: self.exchange.fetch_ohlcv(unified, timeframe, since_ms, self.page_limit))
        raw = self.exchange.last_json_response
        # ccxt drops the rows it cannot parse (an empty page reads as "no more data"): look at what it dropped
        if isinstance(raw, list) and len(raw) > len(page):
            parsed = [self.exchange.parse_ohlcv(entry, None) for entry in raw]
            if not all(len(row) >= 6 and None not in row[:6] for row in parsed):
                raise PermanentProviderError(
                    f"{self.exchange_id} sent candles that do not parse: {raw[:2]!r}"
                )
        return page

    # -- error translation and retries -----------------------------------------------------------

    def _call(self, request: Callable[[], T]) -> T:
        """Run one ccxt request; retry temporary failures; translate every ccxt error at this edge."""
        tries = 0

        def once() -> T:
            nonlocal tries
            tries += 1
            return self._once(request)

        try:
            return retry_temporary(
                once,
                temporary=TEMPORARY_ERRORS,
                attempts=self.max_retries + 1,
                backoff_seconds=self.backoff_base,
                retry_after=self._retry_after,
                give_up=lambda error: (self._retry_after(error) or 0) > MAX_RETRY_AFTER_SECONDS,
                sleep=self._sleep,
            )
        except TEMPORARY_ERRORS as error:
            message = f"{self.exchange_id} failed {tries} times: {type(error).__name__}: {error}"
            raise TemporaryProviderError(message, retry_after=self._retry_after(error)) from error

    def _once(self, request: Callable[[], T]) -> T:
        """One ccxt request; every error but a temporary one is translated here."""
        self.exchange.last_json_response = None
        try:
            answer = request()
        except ccxt.BadSymbol as error:
            raise UnknownSymbolError(f"{self.exchange_id}: {error}") from error
        except PERMANENT_ERRORS as error:  # before TEMPORARY_ERRORS: BadResponse is an OperationFailed
            raise PermanentProviderError(f"{self.exchange_id} sent a malformed answer: {error}") from error
        except TEMPORARY_ERRORS:
            raise  # retried by _call
        except ccxt.BaseError as error:
            raise PermanentProviderError(f"{self.exchange_id}: {type(error).__name__}: {error}") from error
        self._check_json()
        return answer

    def _check_json(self) -> None:
        """Refuse a body that is not JSON: ccxt hands it on as text, which then reads as an empty answer."""
        body = self.exchange.last_http_response
        if body and self.exchange.last_json_response is None:
            raise PermanentProviderError(f"{self.exchange_id} sent a body that is not JSON: {body[:80]!r}")

    def _retry_after(self, error: Exception) -> float | None:
        """Seconds from the Retry-After header of the answer that refused us for rate, if any."""
        if not isinstance(error, RATE_LIMIT_ERRORS):
            return None
        headers = self.exchange.last_response_headers or {}
        try:
            return max(0.0, float(headers.get("Retry-After", "")))
        except ValueError:
            return None


def _rehost(urls: Any, base_url: str) -> Any:
    """``urls`` (a URL or a nested dict of them) with scheme and host taken from ``base_url``."""
    if isinstance(urls, dict):
        return {name: _rehost(url, base_url) for name, url in urls.items()}
    if isinstance(urls, str):
        return urlunsplit(urlsplit(base_url)[:2] + urlsplit(urls)[2:])
    return urls


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _ms(moment: datetime) -> int:
    return calendar.timegm(moment.utctimetuple()) * 1000 + moment.microsecond // 1000


def _from_ms(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
