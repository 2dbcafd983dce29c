"""The backtester: rules and candles in, a :class:`~.metrics.BacktestReport` out.

Conventions (shared with the paper broker, see ARCHITECTURE.md):

* **Timing.** Rules are evaluated on the close of bar t with data up to t; the resulting market
  order fills at the open of bar t + 1. A signal on the last bar has no next bar and does nothing.
  On any bar the order from the previous close fills first, at the open; stops and targets are then
  checked against that bar, using the levels in force after that fill.
* **Costs.** ``commission`` and ``slippage`` are fractions of each fill's notional. Slippage moves
  every fill against the trader (buys fill at ``price * (1 + slippage)``, sells at
  ``price * (1 - slippage)``), stop, target and final fills included. Commission is paid on the
  slipped notional.
* **Sizing.** Fractional quantities: an entry buys ``equity * position_size_pct /
  (fill_price * (1 + commission))``, so with ``position_size_pct = 1`` the price and the fee use up
  the cash exactly. Only when ``position_size_pct < 1`` does a ``buy`` while long (or ``short`` while
  short) add to the position: the same amount again, capped so that the position's notional at the
  fill price does not exceed the equity (no leverage). Once an add reaches that cap (for a long:
  spends the last of the cash), the position is full and takes no more adds until it is closed.
  Equity for sizing is cash plus the position marked at the fill price.
* **Actions.** Flat: ``buy`` opens a long, ``short`` opens a short (only with ``allow_short``).
  Long: ``sell`` closes; ``buy`` adds. Short: ``cover`` closes; ``short`` adds. Everything else is
  ignored (no implicit reversal; ``short``/``cover`` are ignored entirely without ``allow_short``).
* **Stops** (fractions of the average entry price, which includes slippage): ``stop_loss_pct``,
  ``take_profit_pct`` and ``trailing_stop_pct`` are checked against each bar's low and high from the
  entry bar itself onwards: the entry fills at the entry bar's open, its first price, so all of that
  bar's range happens while the position is open. The trailing level for a bar trails the best price
  reached *before* that bar (the fill price, then earlier highs for a long / lows for a short),
  because the order of high and low inside a bar is unknown. A bar that opens beyond a level fills at
  the open (a gap); otherwise the level's price. If a bar touches both a stop and the target, the stop
  is assumed first; between the stop loss and the trailing stop, the tighter one triggers.
* ``max_holding_bars = N`` closes the position at the open of the N-th bar after the entry bar
  (after N bars held), reason ``max_bars`` (``signal`` if an exit signal fills on that same open).
  A position still open at the end is closed at the last close, reason ``end``. Exit reasons: see
  :data:`~.metrics.EXIT_REASONS`.
* **Accounting identity**, at every bar's close: ``equity = cash + position * close``, where cash is
  the initial capital minus the notional of every buy, plus the notional of every sell, minus every
  fee. Equivalently ``equity = initial_capital + sum(pnl of closed trades) + open pnl``, where a
  trade's pnl is net of both fees and the open pnl is ``side * quantity * (close - entry_price)``
  minus the entry fee (``commission * quantity * entry_price``).

Speed: signals are computed vectorised; the position logic loops over *trades*, not bars. Every
candidate entry's signal and holding-limit exit is found at once with ``searchsorted``; without
stops or adds the trades are then a walk over precomputed indices. With stops, each trade searches
for its stop/target exit with numpy over geometrically growing windows of the bars after its entry:
O(its length) numpy work plus about 5 microseconds of Python per trade. Trades are first simulated
for one unit of equity (where a trade exits does not depend on the account size), then scaled by the
compounded equity at each entry and turned into the equity curve without a per-bar loop.
"""

from __future__ import annotations

import numbers
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, cast, overload

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from apps.market.domain.candles import CandleError, validate_candles

from .metrics import EXIT_REASONS, BacktestReport, EquityCurve, Trades, bars_per_year, build_report
from .rules import Action, Rule, signals

REQUIRED_COLUMNS = ("open", "high", "low", "close")
_FIRST_WINDOW = 16
_WINDOW_GROWTH = 4
_SIGNAL, _STOP_LOSS, _TAKE_PROFIT, _TRAILING, _MAX_BARS, _END = range(6)
_REASON_NAMES = np.array(EXIT_REASONS, dtype=object)
# Fills for the equity curve: (bars, order within a bar, cash after, signed quantity after).
_Fills = tuple[NDArray[np.int64] | list[int], int, NDArray[np.float64], NDArray[np.float64]]


class BacktestError(ValueError):
    """Invalid candles, risk parameters or costs."""


@dataclass(frozen=True)
class RiskSettings:
    """The risk parameters of a strategy; a stop, target or limit that is None (or 0) is off."""

    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    trailing_stop_pct: float | None = None
    position_size_pct: float = 1.0
    max_holding_bars: int | None = None
    allow_short: bool = False

    def __post_init__(self) -> None:
        for name in ("stop_loss_pct", "trailing_stop_pct"):
            _check_fraction(name, getattr(self, name), upper=1.0, optional=True)
        _check_fraction("take_profit_pct", self.take_profit_pct, upper=None, optional=True)
        _check_fraction("position_size_pct", self.position_size_pct, upper=1.0, optional=False, closed=True)
        bars = self.max_holding_bars
        if bars is not None and (
            isinstance(bars, bool) or not isinstance(bars, numbers.Integral) or bars < 1
        ):
            raise BacktestError(f"max_holding_bars must be a whole number of bars >= 1, got {bars!r}")
        if not isinstance(self.allow_short, bool):
            raise BacktestError(f"allow_short must be true or false, got {self.allow_short!r}")

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, object]) -> RiskSettings:
        """Read the risk parameters out of a strategy's ``parameters``; 0 or None disables a limit."""
        # Any: values as the strategy gave them, checked by __post_init__.
        values: dict[str, Any] = {
            f.name: parameters[f.name] for f in fields(cls) if parameters.get(f.name) is not None
        }
        for name in ("stop_loss_pct", "take_profit_pct", "trailing_stop_pct", "max_holding_bars"):
            if values.get(name) == 0 and not isinstance(values.get(name), bool):
                del values[name]
        if isinstance(values.get("max_holding_bars"), float) and values["max_holding_bars"].is_integer():
            values["max_holding_bars"] = int(values["max_holding_bars"])
        return cls(**values)


RISK_PARAMETERS = frozenset(f.name for f in fields(RiskSettings))


@dataclass(frozen=True)
class CheckedBars:
    """A candle frame :func:`check_frame` accepted, as the simulator reads it: float64 open, high, low
    and close and naive UTC open times. Checked once and sliced for free (views): a search backtests
    hundreds of windows of one frame, and checking the frame again for each was a third of its time."""

    prices: Mapping[str, NDArray[np.float64]]
    times: NDArray[np.datetime64]

    @classmethod
    def of(cls, frame: pd.DataFrame) -> CheckedBars:
        """Check ``frame`` (raising :class:`BacktestError`) and keep what the simulator reads."""
        check_frame(frame)
        prices = {name: frame[name].to_numpy(dtype=np.float64) for name in REQUIRED_COLUMNS}
        return cls(prices, _utc_times(cast(pd.DatetimeIndex, frame.index)))

    def __len__(self) -> int:
        return len(self.times)

    def window(self, part: slice) -> CheckedBars:
        """The bars of ``part`` (a step-1 slice); an empty window is refused as an empty frame is."""
        bars = CheckedBars({name: values[part] for name, values in self.prices.items()}, self.times[part])
        if len(bars) == 0:
            raise BacktestError("the backtest needs a non-empty DataFrame of candles")
        return bars


def run_backtest(
    frame: pd.DataFrame,
    rules: Iterable[Rule | Mapping[str, object]],
    parameters: Mapping[str, object],
    *,
    initial_capital: float = 10000.0,
    commission: float = 0.001,
    slippage: float = 0.0,
    timeframe: str = "1h",
    external: Mapping[str, NDArray[np.floating] | pd.Series] | None = None,
) -> BacktestReport:
    """Backtest ``rules`` on ``frame`` (UTC open-time index, float64 open/high/low/close[/volume]).

    ``parameters`` are the strategy's: rule values such as ``rsi_oversold`` and the risk settings of
    :class:`RiskSettings`. ``external`` supplies series such as ``ML_PROBA``.
    """
    bars = CheckedBars.of(frame)
    _check_costs(initial_capital, commission, slippage, timeframe)
    risk = RiskSettings.from_parameters(parameters)
    codes = signals(rules, frame, parameters, external)
    return _backtest(bars, codes, risk, float(initial_capital), commission, slippage, timeframe)


def backtest_signals(
    frame: pd.DataFrame | CheckedBars,
    codes: NDArray[np.integer],
    risk: RiskSettings,
    *,
    initial_capital: float = 10000.0,
    commission: float = 0.001,
    slippage: float = 0.0,
    timeframe: str = "1h",
) -> BacktestReport:
    """Backtest precomputed :class:`~.rules.Action` codes (one per bar of ``frame``); pass
    :class:`CheckedBars` to backtest many windows of one frame without checking it each time."""
    bars = _checked(frame, codes, initial_capital, commission, slippage, timeframe)
    return _backtest(bars, codes, risk, float(initial_capital), commission, slippage, timeframe)


def backtest_equity(
    bars: CheckedBars,
    codes: NDArray[np.integer],
    risk: RiskSettings,
    *,
    initial_capital: float = 10000.0,
    commission: float = 0.001,
    slippage: float = 0.0,
) -> EquityCurve:
    """The equity curve :func:`backtest_signals` would report, without computing its metrics: what a
    statistic over many trials' returns needs of each."""
    _checked(bars, codes, initial_capital, commission, slippage, "1h")
    return _simulate(bars, codes, risk, float(initial_capital), commission, slippage)[1]


def _checked(
    frame: pd.DataFrame | CheckedBars,
    codes: NDArray[np.integer],
    initial_capital: float,
    commission: float,
    slippage: float,
    timeframe: str,
) -> CheckedBars:
    bars = frame if isinstance(frame, CheckedBars) else CheckedBars.of(frame)
    _check_costs(initial_capital, commission, slippage, timeframe)
    codes = np.asarray(codes)
    if codes.shape != (len(bars),):
        raise BacktestError(f"got {len(codes)} signals for {len(bars)} bars")
    if len(codes) and not (min(Action) <= codes.min() and codes.max() <= max(Action)):
        raise BacktestError(f"signal codes must be Action values {min(Action)}..{max(Action)}")
    return bars


def _backtest(
    bars: CheckedBars,
    codes: NDArray[np.integer],
    risk: RiskSettings,
    initial_capital: float,
    commission: float,
    slippage: float,
    timeframe: str,
) -> BacktestReport:
    trades, curve = _simulate(bars, codes, risk, initial_capital, commission, slippage)
    return build_report(
        times=bars.times,
        close=bars.prices["close"],
        curve=curve,
        trades=trades,
        initial_capital=initial_capital,
        timeframe=timeframe,
        commission=commission,
        slippage=slippage,
    )


def _simulate(
    bars: CheckedBars,
    codes: NDArray[np.integer],
    risk: RiskSettings,
    initial_capital: float,
    commission: float,
    slippage: float,
) -> tuple[Trades, EquityCurve]:
    prices = dict(bars.prices)
    ledger = _Simulator(prices, np.asarray(codes), risk, commission, slippage).run()
    return _account(ledger, prices, bars.times, initial_capital, risk, commission, slippage)


def check_frame(frame: pd.DataFrame) -> None:
    """Raise :class:`BacktestError` unless ``frame`` is a non-empty, valid candle frame (see
    :func:`apps.market.domain.candles.validate_candles`: UTC open times, finite float64 OHLCV)."""
    if not isinstance(frame, pd.DataFrame) or len(frame) == 0:
        raise BacktestError("the backtest needs a non-empty DataFrame of candles")
    try:
        validate_candles(frame)
    except CandleError as error:
        raise BacktestError(str(error)) from None


def _check_fraction(
    name: str, value: object, *, upper: float | None, optional: bool, closed: bool = False
) -> None:
    if value is None and optional:
        return
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    number = cast(float, value)  # compared only when it is a real number, which compares like a float
    valid = real and number > 0
    if valid and upper is not None:
        valid = number <= upper if closed else number < upper
    if not valid:
        bound = "" if upper is None else f" and {'at most' if closed else 'below'} {upper:g}"
        raise BacktestError(f"{name} must be a fraction above 0{bound} (0.02 = 2%), got {value!r}")


def _check_costs(initial_capital: float, commission: float, slippage: float, timeframe: str) -> None:
    if not isinstance(initial_capital, numbers.Real) or not initial_capital > 0:
        raise BacktestError(f"initial_capital must be positive, got {initial_capital!r}")
    for name, value in (("commission", commission), ("slippage", slippage)):
        if not isinstance(value, numbers.Real) or not 0 <= value < 1:
            raise BacktestError(f"{name} must be a fraction from 0 to below 1, got {value!r}")
    try:
        bars_per_year(timeframe)
    except ValueError as error:
        raise BacktestError(str(error)) from None


def _utc_times(index: pd.DatetimeIndex) -> NDArray[np.datetime64]:
    return index.tz_localize(None).to_numpy()


@overload
def _entry_units(fill: float, side: int, size: float, commission: float) -> tuple[float, float, float]: ...
@overload
def _entry_units(
    fill: NDArray[np.float64], side: NDArray[np.int64], size: float, commission: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]: ...
def _entry_units(
    fill: float | NDArray[np.float64], side: int | NDArray[np.int64], size: float, commission: float
) -> tuple[float | NDArray[np.floating], float | NDArray[np.floating], float | NDArray[np.floating]]:
    """Quantity, fee and cash left after opening ``size`` of one unit of equity at ``fill``.

    Works on floats and, for many trades at once, on arrays."""
    quantity = size / (fill * (1 + commission))
    fee = commission * quantity * fill
    return quantity, fee, 1.0 - side * quantity * fill - fee


@dataclass
class _Held:
    """An open position for one unit of equity at entry."""

    average: float
    quantity: float
    fees: float
    cash: float


@dataclass
class _Ledger:
    """The trades of a run, for one unit of equity at each entry.

    Where a trade exits does not depend on the account size, so trades are simulated per unit and
    scaled later. ``grown`` maps a trade that was added to (by its position in the ledger) to its
    (average price, quantity, cash, fees) after the adds; ``add_fills`` lists (trade, bar, cash after,
    signed quantity after) for the equity curve.
    """

    side: NDArray[np.int64]
    entry_bar: NDArray[np.int64]
    entry_fill: NDArray[np.float64]
    exit_bar: NDArray[np.int64]
    exit_price: NDArray[np.float64]  # before slippage
    reason: NDArray[np.int64]
    grown: dict[int, tuple[float, float, float, float]]
    add_fills: list[tuple[int, int, float, float]]


class _Simulator:
    """The position state machine, stepping from trade to trade.

    Every bar with an entry signal is a candidate entry; each candidate's signal or holding-limit
    exit is found for all candidates at once (searchsorted). A trade starts at the first candidate
    at or after the bar the previous trade ended on. Without stops or adds that is all: the chain of
    trades is a walk over precomputed indices. Stops and adds need a per-trade search.
    """

    def __init__(
        self,
        prices: dict[str, NDArray[np.float64]],
        codes: NDArray[np.integer],
        risk: RiskSettings,
        commission: float,
        slippage: float,
    ) -> None:
        self.n = n = len(codes)
        self.open, self.close = prices["open"], prices["close"]
        self.risk, self.commission, self.slippage = risk, commission, slippage
        usable = codes[: n - 1]  # a signal on the last bar would fill after the data ends
        entry_codes = [Action.BUY, Action.SHORT] if risk.allow_short else [Action.BUY]
        self.bar = np.flatnonzero(np.isin(usable, entry_codes))
        self.side = np.where(usable[self.bar] == Action.BUY, 1, -1)
        self.entry = self.bar + 1
        self.fill = self.open[self.entry] * (1 + self.side * slippage)
        exit_code = {1: Action.SELL, -1: Action.COVER}
        signal_exit = np.full(len(self.bar), n)
        for side in (1, -1) if risk.allow_short else (1,):
            exits = np.append(np.flatnonzero(usable == exit_code[side]), n - 1)  # n - 1 + 1: never
            mine = self.side == side
            signal_exit[mine] = exits[np.searchsorted(exits, self.entry[mine])] + 1
        self.limit = signal_exit
        self.limit_reason = np.full(len(self.bar), _SIGNAL)
        if risk.max_holding_bars is not None:
            self.limit = np.minimum(signal_exit, self.entry + risk.max_holding_bars)
            self.limit_reason[self.limit < signal_exit] = _MAX_BARS
        self.add_signals = {}
        if risk.position_size_pct < 1:
            add_code = {1: Action.BUY, -1: Action.SHORT}
            self.add_signals = {side: np.flatnonzero(usable == add_code[side]).tolist() for side in (1, -1)}
        # Shorts run through the same stop search on negated prices: a short's stop lies above its
        # entry, which on -price lies below, as a long's does. Adverse is the low, favourable the high.
        self.signed = {1: (prices["open"], prices["low"], prices["high"])}
        if risk.allow_short:
            self.signed[-1] = (-prices["open"], -prices["high"], -prices["low"])
        self.has_stops = any(
            v is not None for v in (risk.stop_loss_pct, risk.take_profit_pct, risk.trailing_stop_pct)
        )
        # Per side: the stop loss and target as multiples of the average price, and the trailing
        # stop as a multiple of the best price, all in signed prices (None: off).
        self.factors = {
            side: tuple(
                None if pct is None else 1 + sign * side * pct
                for pct, sign in (
                    (risk.stop_loss_pct, -1),
                    (risk.take_profit_pct, 1),
                    (risk.trailing_stop_pct, -1),
                )
            )
            for side in (1, -1)
        }

    def run(self) -> _Ledger:
        if self.has_stops or self.add_signals:
            return self._walk_trades()
        exit_bar = np.minimum(self.limit, self.n - 1)
        chain = _walk(np.searchsorted(self.bar, exit_bar).tolist())
        limit = self.limit[chain]
        ends = limit >= self.n
        return _Ledger(
            side=self.side[chain],
            entry_bar=self.entry[chain],
            entry_fill=self.fill[chain],
            exit_bar=exit_bar[chain],
            exit_price=np.where(ends, self.close[-1], self.open[np.minimum(limit, self.n - 1)]),
            reason=np.where(ends, _END, self.limit_reason[chain]),
            grown={},
            add_fills=[],
        )

    def _walk_trades(self) -> _Ledger:
        n = self.n
        # Python lists: this loop runs once per trade, and list items are cheaper than numpy scalars.
        bars, sides, entries = self.bar.tolist(), self.side.tolist(), self.entry.tolist()
        limits, limit_reasons, fills = self.limit.tolist(), self.limit_reason.tolist(), self.fill.tolist()
        chain: list[int] = []
        exits: list[int] = []
        prices: list[float] = []
        reasons: list[int] = []
        grown: dict[int, tuple[float, float, float, float]] = {}
        add_fills: list[tuple[int, int, float, float]] = []
        k = 0
        while k < len(bars):
            side, entry, limit, fill = sides[k], entries[k], limits[k], fills[k]
            if self.add_signals:
                hit = self._trade_with_adds(side, entry, limit, fill, len(chain), grown, add_fills)
            else:
                hit = self._first_hit(side, entry, limit, fill, side * fill)[0]
            if hit is None:
                hit = (
                    (limit, self.open[limit], limit_reasons[k])
                    if limit < n
                    else (n - 1, self.close[-1], _END)
                )
            chain.append(k)
            exits.append(hit[0])
            prices.append(hit[1])
            reasons.append(hit[2])
            k = bisect_left(bars, hit[0])
        return _Ledger(
            side=self.side[chain],
            entry_bar=self.entry[chain],
            entry_fill=self.fill[chain],
            exit_bar=np.asarray(exits, dtype=np.int64),
            exit_price=np.asarray(prices, dtype=np.float64),
            reason=np.asarray(reasons, dtype=np.int64),
            grown=grown,
            add_fills=add_fills,
        )

    def _trade_with_adds(
        self,
        side: int,
        entry: int,
        limit: int,
        fill: float,
        position: int,
        grown: dict[int, tuple[float, float, float, float]],
        add_fills: list[tuple[int, int, float, float]],
    ) -> tuple[int, float, int] | None:
        """The stop or target exit (bar, price before slippage, reason) of a trade that may be added
        to, or None if it runs to its limit. Adds are recorded under the trade's ``position``."""
        held = _Held(fill, *_entry_units(fill, side, self.risk.position_size_pct, self.commission))
        best = side * fill  # the trailing stop's reference, in signed prices
        start = entry
        for add in self._add_bars(side, entry, limit):
            hit, best = self._first_hit(side, start, add, held.average, best)
            if hit is not None:
                return hit
            start = add
            before = held.quantity
            full = self._add(side, add, held)
            if held.quantity != before:
                grown[position] = (held.average, held.quantity, held.cash, held.fees)
                add_fills.append((position, add, held.cash, side * held.quantity))
            if full:
                break
        return self._first_hit(side, start, limit, held.average, best)[0]

    def _add_bars(self, side: int, entry: int, limit: int) -> list[int]:
        """Bars whose opens fill an add signal given on or after the entry bar, before the limit."""
        if not self.add_signals:
            return []
        signals = self.add_signals[side]
        return [bar + 1 for bar in signals[bisect_left(signals, entry) : bisect_left(signals, limit - 1)]]

    def _add(self, side: int, bar: int, held: _Held) -> bool:
        """Add to ``held`` at the open of ``bar``; True once the position is full (no more adds)."""
        fill = float(self.open[bar]) * (1 + side * self.slippage)
        equity = held.cash + side * held.quantity * fill
        wanted, headroom = equity * self.risk.position_size_pct, equity - held.quantity * fill
        size = min(wanted, headroom)
        if equity <= 0 or size <= 1e-12 * equity:
            return True
        added, fee, _ = _entry_units(fill, side, size, self.commission)
        total = held.quantity + added
        held.average = (held.average * held.quantity + fill * added) / total
        held.quantity = total
        held.fees += fee
        held.cash -= side * added * fill + fee
        return headroom <= wanted

    def _first_hit(
        self, side: int, start: int, stop: int, average: float, best: float
    ) -> tuple[tuple[int, float, int] | None, float]:
        """The first bar in [start, stop) where a stop or target fills, with its price and reason,
        and the trailing reference after the bars searched."""
        if not self.has_stops:
            return None, best
        opens, adverse, favourable = self.signed[side]
        stop_factor, target_factor, trail = self.factors[side]
        stop_level = None if stop_factor is None else side * average * stop_factor
        target = None if target_factor is None else side * average * target_factor
        width = _FIRST_WINDOW
        while start < stop:
            end = min(stop, start + width)
            stops: NDArray[np.float64] | None = None
            hit: NDArray[np.bool_] | None = None
            if trail is not None:
                peaks = np.maximum.accumulate(favourable[start:end])
                reference = np.empty(end - start)
                reference[0] = best
                np.maximum(peaks[:-1], best, out=reference[1:])
                stops = reference * trail
                best = max(best, peaks[-1])
                if stop_level is not None:
                    np.maximum(stops, stop_level, out=stops)
                hit = adverse[start:end] <= stops
            elif stop_level is not None:
                hit = adverse[start:end] <= stop_level
            if target is not None:
                reached = favourable[start:end] >= target
                hit = reached if hit is None else hit | reached
            if hit is None:  # cannot happen: has_stops means a stop, a target or a trailing stop is set
                raise RuntimeError("a stop search without any stop, target or trailing stop")
            offset = int(hit.argmax())
            if hit[offset]:
                bar = start + offset
                level = stop_level if stops is None else float(stops[offset])
                return self._fill(side, bar, level, stop_level, target, opens, adverse), best
            start, width = end, width * _WINDOW_GROWTH
        return None, best

    def _fill(
        self,
        side: int,
        bar: int,
        level: float | None,
        stop_level: float | None,
        target: float | None,
        opens: NDArray[np.float64],
        adverse: NDArray[np.float64],
    ) -> tuple[int, float, int]:
        """Price and reason of the stop or target that fills on ``bar`` (signed prices in, real out)."""
        stop_reason = _STOP_LOSS if stop_level is not None and level == stop_level else _TRAILING
        if level is not None and opens[bar] <= level:
            return bar, side * opens[bar], stop_reason
        if target is not None and opens[bar] >= target:
            return bar, side * opens[bar], _TAKE_PROFIT
        if level is not None and adverse[bar] <= level:
            return bar, side * level, stop_reason
        if target is None:  # cannot happen: the bar was found by a stop or a target, and no stop hit
            raise RuntimeError(f"bar {bar} filled neither a stop nor a target")
        return bar, side * target, _TAKE_PROFIT


def _walk(next_index: list[int]) -> list[int]:
    """The chain 0, next[0], next[next[0]], ... up to the end of the list (next[k] > k)."""
    chain = []
    k, count = 0, len(next_index)
    while k < count:
        chain.append(k)
        k = next_index[k]
    return chain


def _account(
    ledger: _Ledger,
    prices: dict[str, NDArray[np.float64]],
    times: NDArray[np.datetime64],
    initial_capital: float,
    risk: RiskSettings,
    commission: float,
    slippage: float,
) -> tuple[Trades, EquityCurve]:
    """Cost the unit-equity trades, scale them by the compounded equity, build the equity curve."""
    side = ledger.side
    quantity, fees, cash = _entry_units(ledger.entry_fill, side, risk.position_size_pct, commission)
    first_cash, first_position = cash.copy(), side * quantity
    average = ledger.entry_fill.copy()
    for trade, state in ledger.grown.items():
        average[trade], quantity[trade], cash[trade], fees[trade] = state
    exit_fill = ledger.exit_price * (1 - side * slippage)
    exit_fee = commission * quantity * exit_fill
    growth = cash + side * quantity * exit_fill - exit_fee
    scale = initial_capital * np.concatenate(([1.0], np.cumprod(growth)))[: len(growth)]
    # A short squeeze can wipe the account out; nothing trades after that.
    keep = len(scale) if (scale > 0).all() else int(np.argmax(scale <= 0))
    pnl = (growth[:keep] - 1.0) * scale[:keep]
    entry_bar, exit_bar = ledger.entry_bar[:keep], ledger.exit_bar[:keep]
    trades = Trades(
        entry_bar=entry_bar,
        exit_bar=exit_bar,
        entry_time=times[entry_bar],
        exit_time=times[exit_bar],
        side=side[:keep].astype(np.int8),
        entry_price=average[:keep],
        exit_price=exit_fill[:keep],
        quantity=quantity[:keep] * scale[:keep],
        pnl=pnl,
        return_pct=100.0 * (growth[:keep] - 1.0) / (average[:keep] * quantity[:keep]),
        fees=(fees[:keep] + exit_fee[:keep]) * scale[:keep],
        exit_reason=_REASON_NAMES[ledger.reason[:keep]],
    )
    adds = [a for a in ledger.add_fills if a[0] < keep]
    add_scale = scale[[a[0] for a in adds]]
    fills = (
        (entry_bar, 0, first_cash[:keep] * scale[:keep], first_position[:keep] * scale[:keep]),
        ([a[1] for a in adds], 1, add_scale * [a[2] for a in adds], add_scale * [a[3] for a in adds]),
        (exit_bar, 2, growth[:keep] * scale[:keep], np.zeros(keep)),
    )
    return trades, _equity_curve(fills, prices["close"], times, initial_capital)


def _equity_curve(
    fills: tuple[_Fills, ...],
    close: NDArray[np.float64],
    times: NDArray[np.datetime64],
    initial_capital: float,
) -> EquityCurve:
    """Cash and position after the last fill at or before each bar, marked at the close.

    ``fills`` are groups of (bars, order within a bar, cash after, signed quantity after).
    """
    bars = np.concatenate([np.asarray(group[0], dtype=np.int64) for group in fills])
    within = np.concatenate([np.full(len(group[0]), group[1]) for group in fills])
    order = np.lexsort((within, bars))
    bars = bars[order]
    cash = np.concatenate(([initial_capital], np.concatenate([group[2] for group in fills])[order]))
    position = np.concatenate(([0.0], np.concatenate([group[3] for group in fills])[order]))
    last_in_bar = np.append(bars[1:] != bars[:-1], True) if len(bars) else np.zeros(0, dtype=bool)
    latest = np.zeros(len(close), dtype=np.int64)
    latest[bars[last_in_bar]] = np.flatnonzero(last_in_bar) + 1  # 0: before any fill
    latest = np.maximum.accumulate(latest)
    return EquityCurve(times, cash[latest] + position[latest] * close, cash[latest], position[latest])
