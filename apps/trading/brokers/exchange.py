"""The exchange's order endpoints through ccxt, with every ccxt error translated at this edge.

The ccxt client is the one the market app configures (``CcxtProvider``: spot markets only, the
URL override that points tests at a local fake, timeouts), keyed with the account's API keys. No
request here is ever retried: an order request whose answer is lost raises :class:`OutcomeUnknown`
and the caller asks the exchange for the order's client order id instead of sending it again.
Amounts come back as Decimal built from ccxt's numbers' shortest text form, which is exactly the
exchange's own decimal text for the 8-place values exchanges send.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import ccxt

from apps.core.errors import PermanentError
from apps.market.providers.base import MarketInfo, ProviderError
from apps.market.providers.ccxt_provider import CcxtProvider
from apps.trading.domain.fills import OrderType, Side
from apps.trading.errors import ExchangeRejected, ExchangeUnavailable, OutcomeUnknown

T = TypeVar("T")

# ccxt's unified order status -> the ledger's; an open order with fills is partially filled.
_STATUS = {
    "open": "OPEN",
    "canceling": "OPEN",
    "closed": "FILLED",
    "canceled": "CANCELED",
    "expired": "EXPIRED",
    "rejected": "REJECTED",
}
# Refusals the exchange answered: the order was not placed. Checked in this order (subclasses first).
_REJECTIONS: tuple[tuple[type[ccxt.BaseError], str], ...] = (
    (ccxt.InsufficientFunds, "insufficient_funds"),
    (ccxt.BadSymbol, "bad_symbol"),
    (ccxt.InvalidOrder, "invalid_order"),
    (ccxt.BadRequest, "bad_request"),
    (ccxt.AuthenticationError, "authentication"),
    (ccxt.RateLimitExceeded, "rate_limited"),
    (ccxt.DDoSProtection, "rate_limited"),
)
# Binance answers a client order id that an open order already holds with this (-2010): it is our
# own order from an earlier attempt, so the outcome is "look it up", not "rejected".
_DUPLICATE = "Duplicate order sent"


@dataclass(frozen=True)
class ExchangeTrade:
    trade_id: str
    order_id: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    is_maker: bool
    executed_at: datetime


@dataclass(frozen=True)
class ExchangeOrder:
    """An order as the exchange reports it; ``symbol`` is the exchange's market id (``BTCUSDT``)."""

    exchange_order_id: str
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType | None
    status: str
    quantity: Decimal
    filled: Decimal
    average_price: Decimal | None
    price: Decimal | None
    stop_price: Decimal | None
    created_at: datetime
    trades: tuple[ExchangeTrade, ...] = ()


@dataclass(frozen=True)
class Balance:
    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


class ExchangeClient:
    """One account's view of an exchange: place, find, cancel orders; read trades and balances.

    Not thread-safe (ccxt is not): make one per unit of work.
    """

    def __init__(
        self,
        exchange_id: str,
        *,
        api_key: str,
        secret: str,
        urls_override: str | None = None,
        timeout_ms: int = 10_000,
    ) -> None:
        try:
            self._provider = CcxtProvider(
                exchange_id,
                api_key=api_key,
                secret=secret,
                urls_override=urls_override,
                timeout_ms=timeout_ms,
                max_retries=0,
                options={"warnOnFetchOpenOrdersWithoutSymbol": False},
            )
        except ProviderError as error:
            raise PermanentError(str(error)) from error
        self._exchange = self._provider.exchange
        # ccxt logs every request with its headers at DEBUG, the API key among them.
        self._exchange.logger = _RedactingLogger((api_key, secret))

    def market(self, symbol: str) -> MarketInfo:
        """The market's steps and minimums, from the exchange's own list."""
        try:
            return self._provider.load_market(symbol)
        except ProviderError as error:
            raise ExchangeUnavailable(str(error)) from error

    def create_order(
        self,
        *,
        symbol: str,
        side: Side,
        type: OrderType,
        quantity: Decimal,
        price: Decimal | None,
        stop_price: Decimal | None,
        time_in_force: str,
        client_order_id: str,
    ) -> ExchangeOrder:
        """Send one order. Raises ExchangeRejected (not placed) or OutcomeUnknown (perhaps placed)."""
        params: dict[str, Any] = {"clientOrderId": client_order_id}
        if stop_price is not None:
            params["stopPrice"] = float(stop_price)
        if type in (OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT):
            params["timeInForce"] = time_in_force
        # No price on a market order: ccxt would turn a market buy with a price into a quote amount.
        limit = float(price) if price is not None and type != OrderType.MARKET else None
        ccxt_type = type.value.lower() if type in (OrderType.MARKET, OrderType.LIMIT) else type.value
        self._load_markets()
        try:
            answer = self._exchange.create_order(
                symbol, ccxt_type, side.value.lower(), float(quantity), limit, params
            )
        except ccxt.InvalidOrder as error:
            if _DUPLICATE in str(error):
                raise OutcomeUnknown(
                    f"the exchange already holds client order id {client_order_id}"
                ) from error
            raise ExchangeRejected("invalid_order", _message(error)) from error
        except ccxt.BaseError as error:
            raise _submit_error(error) from error
        return self._order(answer)

    def order_by_client_id(self, *, symbol: str, client_order_id: str) -> ExchangeOrder | None:
        """The order the exchange holds under ``client_order_id``, or None if it has none."""
        return self._find(
            lambda: self._exchange.fetch_order(None, symbol, {"origClientOrderId": client_order_id})
        )

    def order_by_id(self, *, symbol: str, exchange_order_id: str) -> ExchangeOrder | None:
        return self._find(lambda: self._exchange.fetch_order(exchange_order_id, symbol))

    def cancel_order(self, *, symbol: str, exchange_order_id: str) -> ExchangeOrder | None:
        """Cancel an open order; None if the exchange has no open order by that id (filled, gone)."""
        return self._find(lambda: self._exchange.cancel_order(exchange_order_id, symbol))

    def open_orders(self) -> list[ExchangeOrder]:
        return [self._order(o) for o in self._read(lambda: self._exchange.fetch_open_orders())]

    def trades(
        self, *, symbol: str, exchange_order_id: str | None = None, since: datetime | None = None
    ) -> list[ExchangeTrade]:
        """The account's trades in ``symbol``: of one order, or since a time."""
        params = {"orderId": exchange_order_id} if exchange_order_id else {}
        since_ms = int(since.timestamp() * 1000) if since is not None else None
        found = self._read(lambda: self._exchange.fetch_my_trades(symbol, since_ms, None, params))
        return [_trade(t) for t in found]

    def balances(self) -> dict[str, Balance]:
        answer = self._read(self._exchange.fetch_balance)
        free, used = answer.get("free") or {}, answer.get("used") or {}
        return {
            asset: Balance(
                free=_decimal(free.get(asset)) or Decimal(0), locked=_decimal(used.get(asset)) or Decimal(0)
            )
            for asset in set(free) | set(used)
        }

    # -- helpers ---------------------------------------------------------------------------------

    def _load_markets(self) -> None:
        self._read(self._exchange.load_markets)

    def _find(self, request: Callable[[], dict[str, Any]]) -> ExchangeOrder | None:
        self._load_markets()
        try:
            return self._order(self._read(request))
        except _NotFound:
            return None

    def _read(self, request: Callable[[], T]) -> T:
        try:
            return request()
        except ccxt.OrderNotFound as error:
            raise _NotFound from error
        except ccxt.OperationFailed as error:
            raise ExchangeUnavailable(f"{self._exchange.id}: {_message(error)}") from error
        except ccxt.BaseError as error:
            raise PermanentError(f"{self._exchange.id}: {_message(error)}") from error

    def _order(self, answer: dict[str, Any]) -> ExchangeOrder:
        info = answer.get("info") or {}
        filled = _decimal(answer.get("filled")) or Decimal(0)
        status = _STATUS.get(answer.get("status") or "", "OPEN")
        if status == "OPEN" and filled > 0:
            status = "PARTIALLY_FILLED"
        raw_type = str(info.get("type") or answer.get("type") or "").upper()
        created = answer.get("timestamp") or answer.get("lastTradeTimestamp")
        created_at = _from_ms(created) if created else datetime.now(UTC)
        market = self._exchange.markets.get(answer.get("symbol")) if self._exchange.markets else None
        return ExchangeOrder(
            exchange_order_id=str(answer.get("id") or ""),
            client_order_id=str(answer.get("clientOrderId") or ""),
            symbol=market["id"] if market else str(info.get("symbol") or ""),
            side=Side(str(answer.get("side") or info.get("side")).upper()),
            type=OrderType(raw_type) if raw_type in OrderType.__members__ else None,
            status=status,
            quantity=_decimal(answer.get("amount")) or Decimal(0),
            filled=filled,
            average_price=_decimal(answer.get("average")) if filled else None,
            price=_decimal(answer.get("price"))
            if raw_type not in ("MARKET", "STOP_LOSS", "TAKE_PROFIT")
            else None,
            stop_price=_decimal(answer.get("triggerPrice") or answer.get("stopPrice")),
            created_at=created_at,
            trades=tuple(
                _trade(t, order_id=str(answer.get("id") or ""), default_time=created_at)
                for t in answer.get("trades") or ()
            ),
        )


class _NotFound(Exception):
    pass


class _RedactingLogger:
    """The logger given to ccxt: its messages, with the account's key and secret masked."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self._secrets = [secret for secret in secrets if secret]
        self._logger = logging.getLogger(__name__)

    def _log(self, level: int, message: str, *args: object) -> None:
        if self._logger.isEnabledFor(level):
            text = message % args if args else message
            for secret in self._secrets:
                text = text.replace(secret, "[REDACTED]")
            self._logger.log(level, text)

    def debug(self, message: str, *args: object) -> None:
        self._log(logging.DEBUG, message, *args)

    def info(self, message: str, *args: object) -> None:
        self._log(logging.INFO, message, *args)

    def warning(self, message: str, *args: object) -> None:
        self._log(logging.WARNING, message, *args)

    def error(self, message: str, *args: object) -> None:
        self._log(logging.ERROR, message, *args)


def _submit_error(error: ccxt.BaseError) -> Exception:
    """An order request's failure: refused (not placed), or of unknown outcome."""
    if isinstance(error, ccxt.OperationFailed) and not isinstance(
        error, ccxt.RateLimitExceeded | ccxt.DDoSProtection
    ):
        return OutcomeUnknown(f"{type(error).__name__}: {_message(error)}")
    for kind, code in _REJECTIONS:
        if isinstance(error, kind):
            return ExchangeRejected(code, _message(error))
    return ExchangeRejected("exchange_error", f"{type(error).__name__}: {_message(error)}")


def _message(error: Exception) -> str:
    return str(error)[:400]


def _trade(
    answer: dict[str, Any], *, order_id: str = "", default_time: datetime | None = None
) -> ExchangeTrade:
    fee = answer.get("fee") or {}
    stamp = answer.get("timestamp")
    return ExchangeTrade(
        trade_id=str(answer.get("id")),
        order_id=str(answer.get("order") or order_id),
        quantity=_decimal(answer.get("amount")) or Decimal(0),
        price=_decimal(answer.get("price")) or Decimal(0),
        fee=_decimal(fee.get("cost")) or Decimal(0),
        fee_currency=str(fee.get("currency") or ""),
        is_maker=answer.get("takerOrMaker") == "maker",
        executed_at=_from_ms(stamp) if stamp else (default_time or datetime.now(UTC)),
    )


def _decimal(value: float | str | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
