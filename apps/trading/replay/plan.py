"""What to replay: the source series, the bars and the warm-up, checked before anything is written,
and the replay instrument and accounts a continued replay finds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from apps.market import selectors as market
from apps.market.domain.candles import CandleError, parse_timeframe
from apps.market.models import Instrument
from apps.strategies import selectors as strategy_selectors
from apps.strategies.models import (
    Strategy,
)
from apps.trading import selectors
from apps.trading.models import Account, AccountKind

DEMO_STRATEGIES = Path(settings.BASE_DIR) / "fixtures" / "strategies" / "demo_strategies.json"
DEFAULT_BARS = 168  # a week of hourly bars
# Enough for the slowest demo indicator, a training lookback with a holdout the promotion accepts,
# the daily update's window and a generation holdout of more than 100 bars.
DEFAULT_WARMUP_BARS = 2000
UPDATE_HOUR = 2  # the daily update's hour (UTC), as scheduled
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# An orchestrator cycle's trigger names the replay's account, so that its reset finds its cycles.
TRIGGER_PREFIX = selectors.REPLAY_TRIGGER  # health leaves these cycles out


class ReplayInputError(ValueError):
    """Bad replay input (unknown symbol, too little history, bad dates); nothing was written."""


NOTE_PREFIX = "replay of "
NOTE_TIME = "%Y-%m-%dT%H:%MZ"


def series_note(source: Instrument, timeframe: str) -> str:
    return f"{NOTE_PREFIX}{source.symbol} on {source.exchange} {timeframe} from "


def is_replay_instrument(instrument: Instrument) -> bool:
    """Whether the instrument is a replay's target: its ``source`` says what it replays."""
    return instrument.source.startswith(NOTE_PREFIX)


def replay_first_bar(*, target: Instrument) -> datetime:
    """The open time of the first bar the replay played after its warm-up (its target's note)."""
    return datetime.strptime(target.source.rsplit(" from ", 1)[1], NOTE_TIME).replace(tzinfo=UTC)


@dataclass(frozen=True)
class ReplayPlan:
    """A validated replay: the source series, the bars to seed the target with before the first
    replayed bar (none when it continues), and the bars to play, by open time."""

    source: Instrument
    timeframe: str
    target_exchange: str
    target: Instrument | None  # the existing target a replay continues
    warmup: pd.DatetimeIndex
    bars: pd.DatetimeIndex

    @property
    def duration(self) -> timedelta:
        return parse_timeframe(self.timeframe).duration.to_pytimedelta()

    def close_of(self, open_time: pd.Timestamp) -> datetime:
        return open_time.to_pydatetime() + self.duration


def replay_plan(
    *,
    source_symbol: str,
    source_exchange: str,
    timeframe: str,
    target_exchange: str,
    start: datetime | None = None,
    end: datetime | None = None,
    bars: int | None = None,
    warmup_bars: int,
    fresh: bool = False,
) -> ReplayPlan:
    """Check the input against the stored data and say what the replay will play; writes nothing.

    Bars are the source's bars that open at or after ``start`` and close by ``end``. Without
    ``start`` and ``end`` the replay plays the source's last ``bars`` (default DEFAULT_BARS); with
    one of them, ``bars`` from ``start`` or up to ``end``. When the target exists (``fresh`` False)
    the replay continues after its newest bar instead, and ``start`` is refused. Raises
    ReplayInputError saying what is wrong.
    """
    try:
        source = market.instrument_resolve(symbol=source_symbol, exchange=source_exchange)
        duration = parse_timeframe(timeframe).duration
    except (market.InstrumentNotFound, CandleError) as error:
        raise ReplayInputError(str(error)) from None
    if is_replay_instrument(source):
        raise ReplayInputError(f"{source} is itself a replay's instrument; replay the series it copies")
    if target_exchange == source.exchange:
        raise ReplayInputError("the target exchange must differ from the source's: the replay writes to it")
    if bars is not None and bars < 1:
        raise ReplayInputError(f"--bars must be at least 1, got {bars}")
    if bars is not None and start is not None and end is not None:
        raise ReplayInputError("give --bars, or --start and --end, not all three")
    if warmup_bars < 1:
        # Strategies are made for a market with candles, and indicators need history anyway.
        raise ReplayInputError(f"--warmup-bars must be at least 1, got {warmup_bars}")
    if start is not None and end is not None and start >= end:
        raise ReplayInputError(f"--start {start:%Y-%m-%d %H:%M} is not before --end {end:%Y-%m-%d %H:%M}")
    times = market.candle_times(instrument=source, timeframe=timeframe)
    if len(times) == 0:
        stored = ", ".join(market.candle_timeframes(instrument=source)) or "none"
        raise ReplayInputError(f"no {timeframe} candles of {source} are stored (stored timeframes: {stored})")
    target = market.instrument_list().filter(symbol=source.symbol, exchange=target_exchange).first()
    if target is not None and not is_replay_instrument(target):
        raise ReplayInputError(
            f"{target} exists and is not a replay's ({target.source or 'no source'}); "
            "choose another --target-exchange"
        )
    if target is not None and not fresh and not target.source.startswith(series_note(source, timeframe)):
        raise ReplayInputError(
            f"{target} replays another series ({target.source}); add --reset to replay {source} {timeframe}"
        )
    if target is not None and not fresh:
        return _continued(source, timeframe, target, times, start, end, bars)
    closes = times + duration
    if start is not None:
        first = int(times.searchsorted(pd.Timestamp(start)))
        last = (
            first + (bars or DEFAULT_BARS)
            if end is None
            else int(closes.searchsorted(pd.Timestamp(end), "right"))
        )
    else:
        last = len(times) if end is None else int(closes.searchsorted(pd.Timestamp(end), "right"))
        first = last - (bars or DEFAULT_BARS)
    span = f"{times[0]:%Y-%m-%d %H:%M} .. {times[-1]:%Y-%m-%d %H:%M} UTC"
    if first < 0 or last > len(times) or first >= last:
        wanted = f"{bars or DEFAULT_BARS} bars" if start is None or end is None else "bars"
        raise ReplayInputError(
            f"the {timeframe} candles of {source} ({span}) do not hold the {wanted} asked for; "
            "choose --start, --end or --bars within them"
        )
    if first < warmup_bars:
        raise ReplayInputError(
            f"only {first} {timeframe} bars of {source} precede {times[first]:%Y-%m-%d %H:%M} UTC; "
            f"--warmup-bars {warmup_bars} needs {warmup_bars} (the history starts {times[0]:%Y-%m-%d %H:%M})"
        )
    return ReplayPlan(
        source, timeframe, target_exchange, None, times[first - warmup_bars : first], times[first:last]
    )


def _continued(
    source: Instrument,
    timeframe: str,
    target: Instrument,
    times: pd.DatetimeIndex,
    start: datetime | None,
    end: datetime | None,
    bars: int | None,
) -> ReplayPlan:
    newest = market.newest_candle_time(instrument=target, timeframe=timeframe)
    duration = parse_timeframe(timeframe).duration
    clock_at = "no bar" if newest is None else f"{newest + duration:%Y-%m-%d %H:%M} UTC"
    if start is not None:
        raise ReplayInputError(
            f"the replay into {target} stands at {clock_at}: run without --start to continue where it "
            "stopped, or add --reset to start again"
        )
    remaining = times[times > pd.Timestamp(newest)] if newest is not None else times
    if end is not None:
        remaining = remaining[remaining + duration <= pd.Timestamp(end)]
    elif bars is None:
        bars = DEFAULT_BARS
    remaining = remaining[:bars] if bars is not None else remaining
    if len(remaining) == 0:
        raise ReplayInputError(
            f"the replay into {target} stands at {clock_at}: no bar of {source} {timeframe} is left to "
            "play (or none closes by --end); add --reset to start again"
        )
    return ReplayPlan(source, timeframe, target.exchange, target, times[:0], remaining)


def replay_account_find(
    *, owner: AbstractBaseUser, name: str, target_exchange: str, quote: str
) -> Account | None:
    """The owner's account ``name`` if it is a replay's (a paper account on the target exchange in
    the target's currency), None if there is none; ReplayInputError for any other account."""
    account = Account.objects.filter(owner=owner, name=name).first()
    if account is None:
        return None
    if account.kind != AccountKind.PAPER or account.exchange != target_exchange:
        raise ReplayInputError(
            f"account {name!r} of {owner} exists and is not a replay account (it is a {account.kind} account "
            f"on {account.exchange}); choose another --account"
        )
    if account.quote_currency != quote:
        raise ReplayInputError(
            f"account {name!r} holds {account.quote_currency}; the replayed market is quoted in {quote}"
        )
    return account


def replay_accounts(*, target_exchange: str) -> list[Account]:
    """Every replay account on the target exchange (paper accounts carrying its exchange id)."""
    return list(Account.objects.filter(kind=AccountKind.PAPER, exchange=target_exchange).order_by("pk"))


def demo_strategies() -> list[Strategy]:
    """The demo strategies of ``fixtures/strategies`` as stored by ``load_demo_strategies``."""
    found = []
    for entry in json.loads(DEMO_STRATEGIES.read_text()):
        strategy = (
            strategy_selectors.strategy_list()
            .filter(
                name=entry["name"],
                instrument__symbol=entry["symbol"],
                instrument__exchange=entry["exchange"],
                timeframe=entry["timeframe"],
            )
            .first()
        )
        if strategy is not None:
            found.append(strategy)
    return found


def source_frame(*, plan: ReplayPlan) -> pd.DataFrame:
    """The source's rows of the bars to play, read once."""
    return market.candles_frame(
        instrument=plan.source, timeframe=plan.timeframe, start=plan.bars[0], end=plan.bars[-1]
    )
