"""Resting paper orders matched against the candles stored since each was last checked."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Min

from apps.market import selectors as market
from apps.market.domain.candles import parse_timeframe
from apps.market.models import Instrument
from apps.trading.accounting import lock_account
from apps.trading.brokers import paper
from apps.trading.domain.fills import Bar
from apps.trading.models import AccountKind, Order, OrderStatus
from apps.trading.services.orders import protection_attach


def paper_orders_match(*, instrument: Instrument | None = None) -> int:
    """Match resting paper orders against candles that opened since each was last checked.

    Per instrument, the finest timeframe with candles the orders have not seen is used. Returns the
    number of fills.
    """
    resting = Order.objects.filter(
        account__kind=AccountKind.PAPER, status__in=(OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)
    )
    if instrument is not None:
        resting = resting.filter(instrument=instrument)
    fills = 0
    for row in resting.values("instrument").annotate(start=Min("match_from")).order_by("instrument"):
        traded = Instrument.objects.get(pk=row["instrument"])
        fills += _match_instrument(traded, row["start"])
    return fills


def _match_instrument(instrument: Instrument, start: datetime) -> int:
    timeframe = _finest_timeframe_since(instrument, start)
    if timeframe is None:
        return 0
    frame = market.candles_frame(instrument=instrument, timeframe=timeframe, start=start)
    duration = parse_timeframe(timeframe).duration.to_pytimedelta()
    bars = [
        (time.to_pydatetime(), Bar(*(Decimal(str(v)) for v in values)))
        for time, values in zip(
            frame.index, frame[["open", "high", "low", "close"]].itertuples(index=False), strict=True
        )
    ]
    accounts = (
        Order.objects.filter(instrument=instrument, account__kind=AccountKind.PAPER, status=OrderStatus.OPEN)
        .values_list("account", flat=True)
        .distinct()
    )
    fills = 0
    for account_id in accounts:
        with transaction.atomic():
            account = lock_account(account_id)
            for opened_at, bar in bars:
                orders = list(
                    account.orders.filter(
                        instrument=instrument, status=OrderStatus.OPEN, match_from__lte=opened_at
                    ).select_related("instrument")
                )
                if not orders:
                    continue
                filled = paper.match_bar(account=account, orders=orders, bar=bar, opened_at=opened_at)
                account.orders.filter(pk__in=[o.pk for o in orders], status=OrderStatus.OPEN).update(
                    match_from=opened_at + duration
                )
                for order in filled:
                    # Where inside the bar the entry filled is unknown: protection starts with the next bar.
                    protection_attach(order=order, at=opened_at + duration)
                fills += len(filled)
    return fills


def _finest_timeframe_since(instrument: Instrument, start: datetime) -> str | None:
    candidates = []
    for timeframe in market.candle_timeframes(instrument=instrument):
        newest = market.newest_candle_time(instrument=instrument, timeframe=timeframe)
        if newest is not None and newest >= start:
            candidates.append((parse_timeframe(timeframe).duration, timeframe))
    return min(candidates)[1] if candidates else None
