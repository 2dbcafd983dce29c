"""The position logic of a backtest (conventions: :mod:`.backtest`): trades simulated for one unit of
equity at each entry, then costed, scaled by the compounded equity and turned into the account's
trades and equity curve without a per-bar loop."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from typing import overload

import numpy as np
from numpy.typing import NDArray

from .metrics import EXIT_REASONS, EquityCurve, Trades
from .risk import RiskSettings
from .rules import Action

_FIRST_WINDOW = 16
_WINDOW_GROWTH = 4
_SIGNAL, _STOP_LOSS, _TAKE_PROFIT, _TRAILING, _MAX_BARS, _END = range(6)
_REASON_NAMES = np.array(EXIT_REASONS, dtype=object)
# Fills for the equity curve: (bars, order within a bar, cash after, signed quantity after).
_Fills = tuple[NDArray[np.int64] | list[int], int, NDArray[np.float64], NDArray[np.float64]]


def simulate(
    prices: Mapping[str, NDArray[np.float64]],
    times: NDArray[np.datetime64],
    codes: NDArray[np.integer],
    risk: RiskSettings,
    initial_capital: float,
    commission: float,
    slippage: float,
) -> tuple[Trades, EquityCurve]:
    """The trades and equity curve of ``codes`` traded on checked bars (open, high, low, close)."""
    columns = dict(prices)
    ledger = _Simulator(columns, np.asarray(codes), risk, commission, slippage).run()
    return _account(ledger, columns, times, initial_capital, risk, commission, slippage)


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
