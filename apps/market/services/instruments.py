"""Instruments: created offline from a symbol, or from the exchange's own market description."""

from __future__ import annotations

import re

import pandas as pd

from apps.core.symbols import normalise_symbol
from apps.market.domain.candles import parse_timeframe
from apps.market.errors import MarketInputError
from apps.market.models import Instrument
from apps.market.providers.base import MarketInfo

# ccxt's unified symbol: BASE/QUOTE, and BASE/QUOTE:SETTLE for a derivative; each part fits the
# instrument's base and quote columns (16 characters).
_CCXT_SYMBOL = re.compile(r"([^/:\s]{1,16})/([^/:\s]{1,16})(:[^/:\s]{1,16})?")
_NAME = re.compile(r"\S{1,32}")  # a symbol or an exchange id, as their 32-character columns hold them


def _split_symbol(symbol: str) -> tuple[str, str]:
    for quote in ("USDT", "USDC", "BUSD", "USD", "EUR", "BTC", "ETH"):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise MarketInputError(
        f"cannot tell base and quote currencies apart in {symbol!r}; pass --ccxt-symbol BASE/QUOTE"
    )


def _checked_name(kind: str, value: str) -> str:
    if not _NAME.fullmatch(value) or not value.isprintable():
        raise MarketInputError(
            f"{kind} must be 1 to 32 printable characters without spaces, got {value[:40]!r}"
        )
    return value


def _checked_ccxt_symbol(value: str) -> tuple[str, str]:
    """(base, quote) of a ccxt symbol such as ``GOOG/USD``; anything else raises MarketInputError."""
    match = _CCXT_SYMBOL.fullmatch(value)
    too_long = len(value) > Instrument._meta.get_field("ccxt_symbol").max_length
    if not match or too_long or not value.isprintable():
        raise MarketInputError(
            f"a ccxt symbol is BASE/QUOTE such as BTC/USDT or GOOG/USD, got {value[:40]!r}"
        )
    return match[1], match[2]


def instrument_get_or_create(
    *,
    symbol: str,
    exchange: str,
    ccxt_symbol: str | None = None,
    timeframes: list[str] | None = None,
    source: str = "",
) -> Instrument:
    """The instrument for ``symbol`` on ``exchange``, created offline from the symbol when missing.

    A new instrument's currencies come from ``ccxt_symbol`` (``BASE/QUOTE``) when given, else from
    the symbol's known quote suffix (``BTCUSDT``); an existing one must agree with ``ccxt_symbol``.
    Names that the instrument's columns cannot hold raise MarketInputError.
    """
    symbol = _checked_name("a symbol", normalise_symbol(symbol))
    exchange = _checked_name("an exchange id", exchange)
    if ccxt_symbol is not None:
        ccxt_symbol = ccxt_symbol.strip()
        base, quote = _checked_ccxt_symbol(ccxt_symbol)
    existing = Instrument.objects.filter(exchange=exchange, symbol=symbol).first()
    if existing:
        if ccxt_symbol is not None and ccxt_symbol != existing.ccxt_symbol:
            raise MarketInputError(f"{symbol} on {exchange} is {existing.ccxt_symbol}, not {ccxt_symbol}")
        if timeframes and not set(timeframes) <= set(existing.timeframes):
            existing.timeframes = sorted(set(existing.timeframes) | set(timeframes), key=_timeframe_order)
            existing.save(update_fields=["timeframes"])
        return existing
    if ccxt_symbol is None:
        base, quote = _split_symbol(symbol)
        ccxt_symbol = f"{base}/{quote}"
    return Instrument.objects.create(
        symbol=symbol,
        exchange=exchange,
        ccxt_symbol=ccxt_symbol,
        base=base,
        quote=quote,
        timeframes=sorted(set(timeframes or []), key=_timeframe_order),
        # A file name can be longer than the column, and undecodable bytes in it are lone surrogates.
        source=source.encode("utf-8", "replace").decode()[: Instrument._meta.get_field("source").max_length],
    )


def instrument_copy_create(
    *, source: Instrument, exchange: str, timeframes: list[str], note: str
) -> Instrument:
    """A new, inactive instrument for ``source``'s market (symbol, currencies, steps and limits) under
    another exchange id, its candles written by the caller alone: a replay's. Inactive, so no
    scheduled job fetches, analyses or trains it. ``note`` is its ``source`` (where its candles come
    from). Raises IntegrityError when the exchange already lists the symbol."""
    return Instrument.objects.create(
        symbol=source.symbol,
        exchange=exchange,
        ccxt_symbol=source.ccxt_symbol,
        base=source.base,
        quote=source.quote,
        active=False,
        timeframes=sorted(set(timeframes), key=_timeframe_order),
        amount_step=source.amount_step,
        price_step=source.price_step,
        min_amount=source.min_amount,
        max_amount=source.max_amount,
        min_notional=source.min_notional,
        source=note[:200],
    )


def instrument_delete(*, instrument: Instrument) -> None:
    """Delete an instrument with its candles, series and analyses. Raises ``ProtectedError`` while
    strategies, orders or generation runs still refer to it: their owners delete those first."""
    instrument.delete()


def instrument_create_from_market(*, market: MarketInfo, timeframes: list[str]) -> Instrument:
    """Create or refresh an instrument from the exchange's own market description."""
    instrument, _ = Instrument.objects.update_or_create(
        exchange=market.exchange,
        symbol=market.symbol,
        defaults={
            "ccxt_symbol": market.ccxt_symbol,
            "base": market.base,
            "quote": market.quote,
            "amount_step": market.amount_step,
            "price_step": market.price_step,
            "min_amount": market.min_amount,
            "max_amount": market.max_amount,
            "min_notional": market.min_cost,
            "source": f"ccxt:{market.exchange}",
        },
    )
    return instrument_get_or_create(
        symbol=instrument.symbol, exchange=instrument.exchange, timeframes=timeframes
    )


def _timeframe_order(name: str) -> pd.Timedelta:
    return parse_timeframe(name).duration
