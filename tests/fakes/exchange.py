"""A local fake of Binance's spot REST API (markets, klines, orders, balances, scripted faults) for tests.

Tests run the real ccxt client against it, so the JSON shapes and error answers follow Binance's own
(the ones ccxt's ``binance.py`` parses). Standard library only::

    with FakeExchange() as fake:                       # 127.0.0.1, a random free port
        fake.load_klines("BTCUSDT", "1h", csv_path)      # a CSV path, a DataFrame or rows
        fake.script("GET /api/v3/klines", Fault.rate_limited(retry_after=2), Fault.server_error(502))
        exchange = ccxt.binance({"urls": {"api": fake.api_urls(ccxt.binance().urls["api"])}})
        ...
        assert len(fake.requests("GET /api/v3/klines")) == 3

What it models, and what it does not:

- ``GET /api/v3/ping``, ``/time``, ``/exchangeInfo`` (spot symbols with PRICE_FILTER, LOT_SIZE and
  NOTIONAL or the older MIN_NOTIONAL filter), ``/klines`` served from loaded data. A kline is visible
  once its open time is at or before the fake's clock (``set_time``; the wall clock by default). The
  CSV layout has no quote volume or trade count: those kline fields are derived (volume x close, 0).
- Signed endpoints need an ``X-MBX-APIKEY`` header, ``timestamp`` and ``signature``; any signature is
  accepted. ``POST/GET/DELETE /api/v3/order``, ``GET /api/v3/openOrders``, ``/myTrades``, ``/account``.
- One account. Every order locks its funds when accepted (a market order at the last price); a fill
  consumes the lock at the fill price and refunds the rest. The last price is the close of the newest
  visible kline of the symbol. Commission is ``fee_rate`` of each fill, taken from what the account
  receives (base on a buy, quote on a sell), as Binance does without BNB discounts.
- MARKET fills at once (``quantity`` or ``quoteOrderQty``); LIMIT fills at once at the last price if it
  crosses it, else rests; LIMIT_MAKER that would cross is rejected; stop and take-profit orders rest
  and are never triggered by the fake: a test fills resting orders with ``fill_order``.
- ``newClientOrderId`` as on Binance: a client order id still in use by an open order is rejected
  ("Duplicate order sent."); once that order is filled or canceled the id may be used again, so a
  resent market order really does create a second order (what the no-resend rule protects against).
"""

from __future__ import annotations

import calendar
import csv
import itertools
import json
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

EIGHT_PLACES = Decimal("0.00000001")
ZERO = Decimal(0)
MAX_KLINES = 1000
DEFAULT_KLINES = 500
MAX_TRADES = 1000
DEFAULT_TRADES = 500
INTERVAL_MS = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
    "1M": 0,  # calendar months: see _close_time
}
ORDER_TYPES = (
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
)
PRICED_TYPES = {"LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"}
TRIGGERED_TYPES = {"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"}
TIME_IN_FORCE_TYPES = {"LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"}
OPEN_STATUSES = {"NEW", "PARTIALLY_FILLED"}
JSON_TYPE = "application/json;charset=UTF-8"
RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
]
INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."
INTERNAL_ERROR = "Internal error; unable to process your request. Please try again."


@dataclass(frozen=True)
class Market:
    """A spot symbol and its trading filters, as strings the way Binance sends them."""

    symbol: str
    base: str
    quote: str
    tick_size: str = "0.01"
    min_price: str = "0.01"
    max_price: str = "1000000.00"
    step_size: str = "0.00001"
    min_qty: str = "0.00001"
    max_qty: str = "9000.00000000"
    min_notional: str = "5.00"
    notional_filter: str = "NOTIONAL"  # "MIN_NOTIONAL" is the filter Binance used before 2023
    status: str = "TRADING"

    def filters(self) -> list[dict[str, Any]]:
        price = {"filterType": "PRICE_FILTER", "minPrice": self.min_price, "maxPrice": self.max_price}
        lot = {"filterType": "LOT_SIZE", "minQty": self.min_qty, "maxQty": self.max_qty}
        if self.notional_filter == "MIN_NOTIONAL":
            notional = {
                "filterType": "MIN_NOTIONAL",
                "minNotional": self.min_notional,
                "applyToMarket": True,
                "avgPriceMins": 5,
            }
        else:
            notional = {
                "filterType": "NOTIONAL",
                "minNotional": self.min_notional,
                "applyMinToMarket": True,
                "maxNotional": "9000000.00",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            }
        return [
            {**price, "tickSize": self.tick_size},
            {**lot, "stepSize": self.step_size},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100.0", "stepSize": "0"},
            {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10, "maxTrailingAboveDelta": 2000},
            notional,
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ]

    def exchange_info(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "status": self.status,
            "baseAsset": self.base,
            "baseAssetPrecision": 8,
            "quoteAsset": self.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": list(ORDER_TYPES),
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": self.filters(),
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }


BTCUSDT = Market("BTCUSDT", "BTC", "USDT")
ETHUSDT = Market("ETHUSDT", "ETH", "USDT", step_size="0.0001", min_qty="0.0001")


@dataclass(frozen=True)
class Fault:
    """A scripted answer for one request to an endpoint.

    With ``body`` set, the request is answered with it and, unless ``takes_effect``, never processed.
    Without it, the request is processed normally: ``delay_before`` holds it before processing (a client
    timeout then leaves the outcome unknown to the client, yet the request still takes effect),
    ``delay_after`` processes it at once and holds the answer (the exchange accepted the order, the
    client timed out).
    """

    status: int = 200
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    delay_before: float = 0.0
    delay_after: float = 0.0
    takes_effect: bool = False

    @classmethod
    def normal(cls) -> Fault:
        """Answer this request as usual: a place holder to script the one after it."""
        return cls()

    @classmethod
    def binance_error(cls, code: int, msg: str, status: int = 400) -> Fault:
        return cls(status=status, body=json.dumps({"code": code, "msg": msg}))

    @classmethod
    def rate_limited(cls, retry_after: int | None = 1) -> Fault:
        """HTTP 429 as Binance sends it when the request weight is used up."""
        headers = () if retry_after is None else (("Retry-After", str(retry_after)),)
        msg = (
            "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
            "Please use WebSocket Streams for live updates to avoid polling the API."
        )
        return cls(status=429, body=json.dumps({"code": -1003, "msg": msg}), headers=headers)

    @classmethod
    def server_error(cls, status: int = 502) -> Fault:
        """A 5xx with the HTML body of Binance's edge servers (no JSON)."""
        body = f"<html><body><h1>{status} Server Error</h1></body></html>"
        return cls(status=status, body=body, headers=(("Content-Type", "text/html"),))

    @classmethod
    def internal_error(cls) -> Fault:
        """HTTP 500 with Binance's JSON error -1001 (its execution status is unknown)."""
        return cls.binance_error(-1001, INTERNAL_ERROR, 500)

    @classmethod
    def unknown_outcome(cls, *, accepted: bool) -> Fault:
        """Binance's -1007 (HTTP 503, execution status unknown); the request took effect if ``accepted``."""
        msg = (
            "Timeout waiting for response from backend server. Send status unknown; execution status unknown."
        )
        return cls(status=503, body=json.dumps({"code": -1007, "msg": msg}), takes_effect=accepted)

    @classmethod
    def malformed(cls, body: str = '[[1499040000000,"0.01634790","0.8000') -> Fault:
        """HTTP 200 with a JSON content type and a body that is not valid JSON (a cut-off answer)."""
        return cls(status=200, body=body)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Hold the request before processing it (longer than the client's timeout: it times out)."""
        return cls(delay_before=seconds)

    @classmethod
    def accept_then_delay(cls, seconds: float) -> Fault:
        """Process the request (an order is accepted) and hold the answer for ``seconds``."""
        return cls(delay_after=seconds)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received, with the status it answered (``None`` while a delay holds it)."""

    method: str
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    status: int | None
    fault: Fault | None
    received_ms: int

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"


class BinanceError(Exception):
    """A rejection answered as Binance's JSON error ``{"code": ..., "msg": ...}``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


@dataclass
class _Order:
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str | None
    price: Decimal
    stop_price: Decimal
    orig_qty: Decimal
    orig_quote_qty: Decimal
    lock_price: Decimal
    created_ms: int
    updated_ms: int
    executed_qty: Decimal = ZERO
    cumulative_quote: Decimal = ZERO
    status: str = "NEW"
    trade_ids: list[int] = field(default_factory=list)

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class _Trade:
    trade_id: int
    order_id: int
    symbol: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    is_buyer: bool
    is_maker: bool


@dataclass
class _Balance:
    free: Decimal = ZERO
    locked: Decimal = ZERO


def _fmt(value: Decimal) -> str:
    return format(value.quantize(EIGHT_PLACES, rounding=ROUND_DOWN), "f")


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


def _close_time(open_ms: int, interval: str) -> int:
    if interval != "1M":
        return open_ms + INTERVAL_MS[interval] - 1
    opened = datetime.fromtimestamp(open_ms / 1000, tz=UTC)
    days = calendar.monthrange(opened.year, opened.month)[1]
    return open_ms + days * INTERVAL_MS["1d"] - 1


def _timestamp_ms(value: Any) -> int:
    if hasattr(value, "timestamp"):
        return round(value.timestamp() * 1000)
    return int(value)


def _kline_rows(source: str | Path | Any) -> list[tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal]]:
    """Rows ``(open_ms, open, high, low, close, volume)`` from a CSV path, a DataFrame or a sequence of rows.

    A DataFrame has the CSV columns, or the OHLCV columns on a datetime index.
    """
    if isinstance(source, str | Path):
        with Path(source).open(newline="") as handle:
            raw: Iterable[Sequence[Any]] = [
                (r["timestamp"], r["open"], r["high"], r["low"], r["close"], r["volume"])
                for r in csv.DictReader(handle)
            ]
    elif hasattr(source, "itertuples"):
        columns = ["open", "high", "low", "close", "volume"]
        if "timestamp" in source.columns:
            raw = source[["timestamp", *columns]].itertuples(index=False, name=None)
        else:
            raw = source[columns].itertuples(index=True, name=None)
    else:
        raw = source
    return [(_timestamp_ms(r[0]), *(_decimal(v) for v in r[1:6])) for r in raw]


class FakeExchange:
    """A stateful fake Binance spot exchange served over HTTP on 127.0.0.1; see the module docstring."""

    def __init__(
        self,
        markets: Iterable[Market] = (BTCUSDT, ETHUSDT),
        *,
        fee_rate: str = "0.001",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._lock = threading.RLock()
        self._markets = {m.symbol: m for m in markets}
        self._fee_rate = Decimal(fee_rate)
        self._address = (host, port)
        self._clock_ms: int | None = None
        self._klines: dict[tuple[str, str], dict[int, tuple]] = {}
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._log: list[RecordedRequest] = []
        self._balances: dict[str, _Balance] = defaultdict(_Balance)
        self._orders: dict[int, _Order] = {}
        self._trades: list[_Trade] = []
        self._order_ids = itertools.count(1_000_001)
        self._trade_ids = itertools.count(5_000_001)
        # (method, path) -> (signed?, handler)
        self._routes: dict[tuple[str, str], tuple[bool, Callable[[dict[str, str]], Any]]] = {
            ("GET", "/api/v3/ping"): (False, lambda _: {}),
            ("GET", "/api/v3/time"): (False, lambda _: {"serverTime": self.now_ms()}),
            ("GET", "/api/v3/exchangeInfo"): (False, self._exchange_info),
            ("GET", "/api/v3/klines"): (False, self._get_klines),
            ("POST", "/api/v3/order"): (True, self._post_order),
            ("GET", "/api/v3/order"): (True, self._get_order),
            ("DELETE", "/api/v3/order"): (True, self._delete_order),
            ("GET", "/api/v3/openOrders"): (True, self._get_open_orders),
            ("GET", "/api/v3/myTrades"): (True, self._get_my_trades),
            ("GET", "/api/v3/account"): (True, self._get_account),
        }
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> str:
        """Serve in a background thread; return the base URL, e.g. ``http://127.0.0.1:54321``."""
        if self._server is not None:
            raise RuntimeError("the fake exchange is already running")
        self._stopping.clear()
        self._server = ThreadingHTTPServer(self._address, _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-exchange",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving; requests held by a delay are released at once."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeExchange:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake exchange is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def api_urls(self, urls: Mapping[str, str]) -> dict[str, str]:
        """The given ``exchange.urls['api']`` with every host replaced by this server (paths kept)."""
        scheme_and_host = urlsplit(self.base_url)[:2]
        return {name: urlunsplit(scheme_and_host + urlsplit(url)[2:]) for name, url in urls.items()}

    # -- market data -----------------------------------------------------------------------------

    def add_market(self, market: Market) -> None:
        with self._lock:
            self._markets[market.symbol] = market

    def load_klines(self, symbol: str, interval: str, source: str | Path | Any) -> int:
        """Add (or replace, by open time) the klines of ``symbol``/``interval``; return the row count."""
        if symbol not in self._markets:
            raise ValueError(f"unknown market {symbol}: add_market() first")
        if interval not in INTERVAL_MS:
            raise ValueError(f"unknown interval {interval}; valid: {', '.join(INTERVAL_MS)}")
        rows = _kline_rows(source)
        with self._lock:
            self._klines.setdefault((symbol, interval), {}).update((row[0], row) for row in rows)
        return len(rows)

    def set_time(self, ms: int | None) -> None:
        """Fix the fake's clock (epoch ms); ``None`` follows the wall clock again."""
        with self._lock:
            self._clock_ms = ms

    def now_ms(self) -> int:
        with self._lock:
            return self._clock_ms if self._clock_ms is not None else int(time.time() * 1000)

    def last_price(self, symbol: str) -> Decimal | None:
        """The close of the newest visible kline of ``symbol`` over every loaded interval."""
        with self._lock:
            now = self.now_ms()
            newest: tuple | None = None
            for (kline_symbol, _), rows in self._klines.items():
                if kline_symbol != symbol:
                    continue
                visible = [open_ms for open_ms in rows if open_ms <= now]
                if visible and (newest is None or max(visible) > newest[0]):
                    newest = rows[max(visible)]
            return None if newest is None else newest[4]

    # -- faults and the request log --------------------------------------------------------------

    def script(self, endpoint: str, *faults: Fault) -> None:
        """Queue answers for the next requests to ``endpoint`` ("GET /api/v3/klines"), one each."""
        method, _, path = endpoint.partition(" ")
        if not path.startswith("/"):
            raise ValueError(f"endpoint must look like 'GET /api/v3/klines', got {endpoint!r}")
        with self._lock:
            self._faults[f"{method.upper()} {path}"].extend(faults)

    def pending_faults(self, endpoint: str | None = None) -> int:
        with self._lock:
            if endpoint is not None:
                return len(self._faults.get(endpoint, ()))
            return sum(len(queue) for queue in self._faults.values())

    def requests(self, endpoint: str | None = None) -> list[RecordedRequest]:
        """Requests received so far, oldest first, optionally only those to ``endpoint``."""
        with self._lock:
            return [r for r in self._log if endpoint is None or r.endpoint == endpoint]

    # -- account ---------------------------------------------------------------------------------

    def set_balance(self, asset: str, free: str | Decimal) -> None:
        with self._lock:
            self._balances[asset].free = Decimal(free)

    def balance(self, asset: str) -> tuple[Decimal, Decimal]:
        """``(free, locked)`` of ``asset``."""
        with self._lock:
            entry = self._balances.get(asset, _Balance())
            return entry.free, entry.locked

    def orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """Every order the exchange accepted, oldest first, in the shape of ``GET /api/v3/order``."""
        with self._lock:
            return [self._order_json(o) for o in self._orders.values() if symbol in (None, o.symbol)]

    def fill_order(
        self,
        *,
        order_id: int | None = None,
        client_order_id: str | None = None,
        quantity: str | Decimal | None = None,
        price: str | Decimal | None = None,
    ) -> dict[str, Any]:
        """Fill a resting order (all that remains by default) as the maker at ``price`` (its own price).

        Stop and take-profit orders default to their stop price. Returns the order afterwards.
        """
        with self._lock:
            order = self._find_order(order_id, client_order_id)
            if order is None or not order.is_open:
                raise ValueError(f"no open order with id {order_id} / client order id {client_order_id}")
            fill_qty = order.remaining if quantity is None else Decimal(quantity)
            if not ZERO < fill_qty <= order.remaining:
                raise ValueError(f"fill quantity {fill_qty} must be in (0, {order.remaining}]")
            fill_price = Decimal(price) if price is not None else (order.price or order.stop_price)
            self._execute(order, fill_qty, fill_price, is_maker=True)
            return self._order_json(order)

    # -- HTTP dispatch ---------------------------------------------------------------------------

    def _answer(
        self, method: str, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, str, list[tuple[str, str]], float]:
        """Status, body, headers and the delay before sending, for one request."""
        endpoint = f"{method} {path}"
        with self._lock:
            queue = self._faults.get(endpoint)
            fault = queue.popleft() if queue else None
            arrived = RecordedRequest(method, path, params, headers, None, fault, self.now_ms())
            position = len(self._log)
            self._log.append(arrived)
        if fault is not None and fault.delay_before:
            self._stopping.wait(fault.delay_before)
        if fault is not None and fault.body is not None:
            if fault.takes_effect:
                self._route(method, path, params, headers)
            status, body, extra = fault.status, fault.body, list(fault.headers)
        else:
            status, body, extra = self._route(method, path, params, headers)
            extra += list(fault.headers) if fault is not None else []
        with self._lock:
            self._log[position] = replace(arrived, status=status)
        return status, body, extra, fault.delay_after if fault is not None else 0.0

    def _route(
        self, method: str, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, str, list[tuple[str, str]]]:
        route = self._routes.get((method, path))
        if route is None:
            return 404, "", [("Content-Type", "text/html")]
        signed, handle = route
        try:
            if signed:
                _check_signed(params, headers)
            with self._lock:
                payload = handle(params)
        except BinanceError as error:
            return error.status, json.dumps({"code": error.code, "msg": error.msg}), []
        return 200, json.dumps(payload), []

    # -- public endpoints ------------------------------------------------------------------------

    def _exchange_info(self, params: dict[str, str]) -> dict[str, Any]:
        wanted = params.get("symbol")
        if wanted is not None and wanted not in self._markets:
            raise BinanceError(-1121, "Invalid symbol.")
        return {
            "timezone": "UTC",
            "serverTime": self.now_ms(),
            "rateLimits": RATE_LIMITS,
            "exchangeFilters": [],
            "symbols": [m.exchange_info() for m in self._markets.values() if wanted in (None, m.symbol)],
        }

    def _get_klines(self, params: dict[str, str]) -> list[list[Any]]:
        symbol = self._market(_required(params, "symbol")).symbol
        interval = _required(params, "interval")
        if interval not in INTERVAL_MS:
            raise BinanceError(-1120, "Invalid interval.")
        limit = _int_param(params, "limit", DEFAULT_KLINES)
        if not 1 <= limit <= MAX_KLINES:
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        start = _int_param(params, "startTime", None)
        end = min(_int_param(params, "endTime", self.now_ms()), self.now_ms())
        rows = self._klines.get((symbol, interval), {})
        times = sorted(t for t in rows if (start is None or t >= start) and t <= end)
        chosen = times[:limit] if start is not None else times[-limit:]
        return [_kline_json(rows[t], interval) for t in chosen]

    # -- signed endpoints ------------------------------------------------------------------------

    def _post_order(self, params: dict[str, str]) -> dict[str, Any]:
        market = self._market(_required(params, "symbol"))
        side = _required(params, "side")
        if side not in ("BUY", "SELL"):
            raise BinanceError(-1117, "Invalid side.")
        order_type = _required(params, "type")
        if order_type not in ORDER_TYPES:
            raise BinanceError(-1116, "Invalid orderType.")
        if market.status != "TRADING":
            raise BinanceError(-1013, "Market is closed.")
        client_order_id = params.get("newClientOrderId") or uuid.uuid4().hex[:22]
        if any(o.client_order_id == client_order_id and o.is_open for o in self._orders.values()):
            raise BinanceError(-2010, "Duplicate order sent.")
        last = self.last_price(market.symbol)
        price = _decimal_param(params, "price", required=order_type in PRICED_TYPES)
        stop_price = _decimal_param(params, "stopPrice", required=order_type in TRIGGERED_TYPES)
        time_in_force = params.get("timeInForce") if order_type in TIME_IN_FORCE_TYPES else None
        if order_type in TIME_IN_FORCE_TYPES and time_in_force not in ("GTC", "IOC", "FOK"):
            raise _missing("timeInForce")
        if order_type != "MARKET" and "quoteOrderQty" in params:
            raise BinanceError(-1106, "Parameter 'quoteOrderQty' sent when not required.")
        reference = price or stop_price or last
        if reference is None or (order_type == "MARKET" and last is None):
            raise BinanceError(-1112, "No orders on book for symbol.")
        quantity, quote_qty = self._order_quantity(market, params, order_type, reference)
        _check_filters(market, quantity, price, stop_price, reference)
        crosses = last is not None and price and (price >= last if side == "BUY" else price <= last)
        if order_type == "LIMIT_MAKER" and crosses:
            raise BinanceError(-2010, "Order would immediately match and take.")
        lock_price = price or stop_price or last
        now = self.now_ms()
        order = _Order(
            order_id=next(self._order_ids),
            client_order_id=client_order_id,
            symbol=market.symbol,
            side=side,
            type=order_type,
            time_in_force=time_in_force or "GTC",
            price=price or ZERO,
            stop_price=stop_price or ZERO,
            orig_qty=quantity,
            orig_quote_qty=quote_qty,
            lock_price=lock_price,
            created_ms=now,
            updated_ms=now,
        )
        self._lock_funds(market, order)
        self._orders[order.order_id] = order
        if order_type == "MARKET" or (order_type == "LIMIT" and crosses):
            self._execute(order, quantity, last, is_maker=False)
        elif order_type == "LIMIT" and time_in_force in ("IOC", "FOK"):
            self._release(market, order, "EXPIRED")
        return self._new_order_json(order, params.get("newOrderRespType", "FULL"))

    def _get_order(self, params: dict[str, str]) -> dict[str, Any]:
        return self._order_json(self._order_for_request(params))

    def _delete_order(self, params: dict[str, str]) -> dict[str, Any]:
        order = self._order_for_request(params, missing=(-2011, "Unknown order sent."))
        if not order.is_open:
            raise BinanceError(-2011, "Unknown order sent.")
        self._release(self._markets[order.symbol], order, "CANCELED")
        return {
            "symbol": order.symbol,
            "origClientOrderId": order.client_order_id,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": params.get("newClientOrderId") or f"cancel-{order.order_id}",
            "transactTime": order.updated_ms,
            "price": _fmt(order.price),
            "origQty": _fmt(order.orig_qty),
            "executedQty": _fmt(order.executed_qty),
            "cummulativeQuoteQty": _fmt(order.cumulative_quote),
            "origQuoteOrderQty": _fmt(order.orig_quote_qty),
            "status": order.status,
            "timeInForce": order.time_in_force,
            "type": order.type,
            "side": order.side,
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def _get_open_orders(self, params: dict[str, str]) -> list[dict[str, Any]]:
        symbol = params.get("symbol")
        if symbol is not None:
            self._market(symbol)
        wanted = [o for o in self._orders.values() if o.is_open and symbol in (None, o.symbol)]
        return [self._order_json(o) for o in wanted]

    def _get_my_trades(self, params: dict[str, str]) -> list[dict[str, Any]]:
        symbol = self._market(_required(params, "symbol")).symbol
        limit = _int_param(params, "limit", DEFAULT_TRADES)
        if not 1 <= limit <= MAX_TRADES:
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        order_id = _int_param(params, "orderId", None)
        start = _int_param(params, "startTime", None)
        end = _int_param(params, "endTime", None)
        from_id = _int_param(params, "fromId", None)
        trades = [
            t
            for t in self._trades
            if t.symbol == symbol
            and order_id in (None, t.order_id)
            and (start is None or t.time_ms >= start)
            and (end is None or t.time_ms <= end)
            and (from_id is None or t.trade_id >= from_id)
        ]
        chosen = trades[:limit] if from_id is not None or start is not None else trades[-limit:]
        return [_trade_json(t) for t in chosen]

    def _get_account(self, params: dict[str, str]) -> dict[str, Any]:
        omit_zero = params.get("omitZeroBalances") == "true"
        balances = [
            {"asset": asset, "free": _fmt(b.free), "locked": _fmt(b.locked)}
            for asset, b in sorted(self._balances.items())
            if not (omit_zero and b.free == ZERO and b.locked == ZERO)
        ]
        rate = format(self._fee_rate, "f")
        return {
            "makerCommission": int(self._fee_rate * 10_000),
            "takerCommission": int(self._fee_rate * 10_000),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": rate, "taker": rate, "buyer": "0.00000000", "seller": "0.00000000"},
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self.now_ms(),
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": 354937868,
        }

    # -- order book-keeping ----------------------------------------------------------------------

    def _market(self, symbol: str) -> Market:
        market = self._markets.get(symbol)
        if market is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return market

    def _order_quantity(
        self, market: Market, params: dict[str, str], order_type: str, reference: Decimal
    ) -> tuple[Decimal, Decimal]:
        """The order's base quantity, and the quote amount a market ``quoteOrderQty`` order asked for."""
        quote_qty = _decimal_param(params, "quoteOrderQty", required=False)
        if order_type == "MARKET" and quote_qty is not None and "quantity" not in params:
            step = Decimal(market.step_size)
            return (quote_qty / reference / step).to_integral_value(rounding=ROUND_DOWN) * step, quote_qty
        quantity = _decimal_param(params, "quantity", required=True)
        return quantity, ZERO

    def _lock_of(self, market: Market, order: _Order) -> tuple[str, Decimal]:
        """The asset an order holds and how much of it is still locked for the unfilled part."""
        if order.side == "BUY":
            return market.quote, order.remaining * order.lock_price
        return market.base, order.remaining

    def _lock_funds(self, market: Market, order: _Order) -> None:
        asset, amount = self._lock_of(market, order)
        balance = self._balances[asset]
        if balance.free < amount:
            raise BinanceError(-2010, INSUFFICIENT_BALANCE)
        balance.free -= amount
        balance.locked += amount

    def _release(self, market: Market, order: _Order, status: str) -> None:
        """End an order unfilled (canceled or expired) and give back what it still holds."""
        asset, amount = self._lock_of(market, order)
        self._balances[asset].locked -= amount
        self._balances[asset].free += amount
        order.status = status
        order.updated_ms = self.now_ms()

    def _execute(self, order: _Order, qty: Decimal, price: Decimal, *, is_maker: bool) -> None:
        market = self._markets[order.symbol]
        base, quote = self._balances[market.base], self._balances[market.quote]
        quote_qty = qty * price
        if order.side == "BUY":
            quote.locked -= qty * order.lock_price
            quote.free += qty * order.lock_price - quote_qty
            commission, commission_asset = qty * self._fee_rate, market.base
            base.free += qty - commission
        else:
            base.locked -= qty
            commission, commission_asset = quote_qty * self._fee_rate, market.quote
            quote.free += quote_qty - commission
        now = self.now_ms()
        trade = _Trade(
            trade_id=next(self._trade_ids),
            order_id=order.order_id,
            symbol=order.symbol,
            price=price,
            qty=qty,
            commission=commission,
            commission_asset=commission_asset,
            time_ms=now,
            is_buyer=order.side == "BUY",
            is_maker=is_maker,
        )
        self._trades.append(trade)
        order.trade_ids.append(trade.trade_id)
        order.executed_qty += qty
        order.cumulative_quote += quote_qty
        order.status = "FILLED" if order.remaining == ZERO else "PARTIALLY_FILLED"
        order.updated_ms = now

    def _find_order(self, order_id: int | None, client_order_id: str | None) -> _Order | None:
        if order_id is not None:
            return self._orders.get(order_id)
        matches = [o for o in self._orders.values() if o.client_order_id == client_order_id]
        return matches[-1] if matches else None

    def _order_for_request(
        self, params: dict[str, str], missing: tuple[int, str] = (-2013, "Order does not exist.")
    ) -> _Order:
        symbol = self._market(_required(params, "symbol")).symbol
        order_id = _int_param(params, "orderId", None)
        client_order_id = params.get("origClientOrderId")
        if order_id is None and not client_order_id:
            msg = "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
            raise BinanceError(-1102, msg)
        order = self._find_order(order_id, client_order_id)
        if order is None or order.symbol != symbol:
            raise BinanceError(*missing)
        return order

    def _order_json(self, order: _Order) -> dict[str, Any]:
        return {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "price": _fmt(order.price),
            "origQty": _fmt(order.orig_qty),
            "executedQty": _fmt(order.executed_qty),
            "cummulativeQuoteQty": _fmt(order.cumulative_quote),
            "status": order.status,
            "timeInForce": order.time_in_force,
            "type": order.type,
            "side": order.side,
            "stopPrice": _fmt(order.stop_price),
            "icebergQty": "0.00000000",
            "time": order.created_ms,
            "updateTime": order.updated_ms,
            "isWorking": order.type not in TRIGGERED_TYPES,
            "workingTime": order.created_ms,
            "origQuoteOrderQty": _fmt(order.orig_quote_qty),
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def _new_order_json(self, order: _Order, response_type: str) -> dict[str, Any]:
        ack = {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "transactTime": order.created_ms,
        }
        if response_type == "ACK":
            return ack
        result = {
            **ack,
            "price": _fmt(order.price),
            "origQty": _fmt(order.orig_qty),
            "executedQty": _fmt(order.executed_qty),
            "origQuoteOrderQty": _fmt(order.orig_quote_qty),
            "cummulativeQuoteQty": _fmt(order.cumulative_quote),
            "status": order.status,
            "timeInForce": order.time_in_force,
            "type": order.type,
            "side": order.side,
            "workingTime": order.created_ms,
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }
        if order.stop_price:
            result["stopPrice"] = _fmt(order.stop_price)
        if response_type == "RESULT":
            return result
        trades = [t for t in self._trades if t.order_id == order.order_id]
        result["fills"] = [
            {
                "price": _fmt(t.price),
                "qty": _fmt(t.qty),
                "commission": _fmt(t.commission),
                "commissionAsset": t.commission_asset,
                "tradeId": t.trade_id,
            }
            for t in trades
        ]
        return result


# -- request validation helpers --------------------------------------------------------------------


def _check_signed(params: Mapping[str, str], headers: Mapping[str, str]) -> None:
    if not headers.get("x-mbx-apikey"):
        raise BinanceError(-2014, "API-key format invalid.", status=401)
    for name in ("timestamp", "signature"):
        if not params.get(name):
            raise _missing(name)


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise _missing(name)
    return value


def _missing(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def _int_param(params: Mapping[str, str], name: str, default: int | None) -> Any:
    value = params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'.") from None


def _decimal_param(params: Mapping[str, str], name: str, *, required: bool) -> Decimal | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            _required(params, name)
        return None
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        parsed = Decimal(-1)
    if not parsed.is_finite() or parsed <= 0:
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'.")
    return parsed


def _on_grid(value: Decimal, minimum: str, maximum: str, step: str) -> bool:
    return Decimal(minimum) <= value <= Decimal(maximum) and (value - Decimal(minimum)) % Decimal(step) == 0


def _check_filters(
    market: Market, quantity: Decimal, price: Decimal | None, stop_price: Decimal | None, reference: Decimal
) -> None:
    for value in (price, stop_price):
        if value is not None and not _on_grid(value, market.min_price, market.max_price, market.tick_size):
            raise BinanceError(-1013, "Filter failure: PRICE_FILTER")
    if not _on_grid(quantity, market.min_qty, market.max_qty, market.step_size):
        raise BinanceError(-1013, "Filter failure: LOT_SIZE")
    if quantity * reference < Decimal(market.min_notional):
        raise BinanceError(-1013, f"Filter failure: {market.notional_filter}")


def _kline_json(row: tuple, interval: str) -> list[Any]:
    open_ms, open_, high, low, close, volume = row
    return [
        open_ms,
        _fmt(open_),
        _fmt(high),
        _fmt(low),
        _fmt(close),
        _fmt(volume),
        _close_time(open_ms, interval),
        _fmt(volume * close),
        0,
        "0.00000000",
        "0.00000000",
        "0",
    ]


def _trade_json(trade: _Trade) -> dict[str, Any]:
    return {
        "symbol": trade.symbol,
        "id": trade.trade_id,
        "orderId": trade.order_id,
        "orderListId": -1,
        "price": _fmt(trade.price),
        "qty": _fmt(trade.qty),
        "quoteQty": _fmt(trade.price * trade.qty),
        "commission": _fmt(trade.commission),
        "commissionAsset": trade.commission_asset,
        "time": trade.time_ms,
        "isBuyer": trade.is_buyer,
        "isMaker": trade.is_maker,
        "isBestMatch": True,
    }


def _handler_for(fake: FakeExchange) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                params.update(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, body, extra, delay = fake._answer(self.command, url.path, params, headers)
            if delay:
                fake._stopping.wait(delay)
            try:
                self.send_response(status)
                sent = {name.lower() for name, _ in extra}
                if "content-type" not in sent:
                    self.send_header("Content-Type", JSON_TYPE)
                for name, value in extra:
                    self.send_header(name, value)
                encoded = body.encode()
                self.send_header("Content-Length", str(len(encoded)))
                self.end_headers()
                self.wfile.write(encoded)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout fault): nothing to answer

        do_GET = do_POST = do_DELETE = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the request log is the fake's record; stderr noise would only clutter test output

    return Handler
