"""The fast backtester against a slow, obvious per-bar loop: the same trades and the same equity."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.strategies.engine.backtest import RiskSettings, backtest_signals, run_backtest
from apps.strategies.engine.rules import Action, signals

from .candles import random_codes, random_walk

SHARED_DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "test-only"


@dataclass
class Account:
    """The reference's whole state, updated one event at a time."""

    cash: float
    side: int = 0
    quantity: float = 0.0
    average: float = 0.0
    entry_bar: int = 0
    fees: float = 0.0
    cash_before: float = 0.0
    best: float = 0.0
    full: bool = False
    trades: list[dict] = field(default_factory=list)


def reference_backtest(
    frame: pd.DataFrame,
    codes: np.ndarray,
    risk: RiskSettings,
    capital: float,
    commission: float,
    slippage: float,
) -> tuple[list[dict], np.ndarray]:
    """Walk every bar: fill the previous close's order at the open, then stops, then mark to market."""
    o, h, lo, c = (frame[k].to_numpy() for k in ("open", "high", "low", "close"))
    n = len(c)
    account = Account(cash=capital)
    pending = Action.NONE
    equity = np.empty(n)

    def buy_price(price: float, side: int) -> float:
        return price * (1 + side * slippage)

    def open_position(side: int, bar: int) -> None:
        fill = buy_price(o[bar], side)
        equity_now = account.cash
        if equity_now <= 0:
            return
        quantity = equity_now * risk.position_size_pct / (fill * (1 + commission))
        fee = commission * quantity * fill
        account.cash_before = account.cash
        account.cash -= side * quantity * fill + fee
        account.side, account.quantity, account.average = side, quantity, fill
        account.entry_bar, account.fees, account.best, account.full = bar, fee, fill, False

    def add_to_position(bar: int) -> None:
        side = account.side
        fill = buy_price(o[bar], side)
        equity_now = account.cash + side * account.quantity * fill
        wanted, headroom = equity_now * risk.position_size_pct, equity_now - account.quantity * fill
        room = min(wanted, headroom)
        account.full = headroom <= wanted
        if equity_now <= 0 or room <= 1e-12 * equity_now:
            account.full = True
            return
        added = room / (fill * (1 + commission))
        fee = commission * added * fill
        account.cash -= side * added * fill + fee
        account.fees += fee
        account.average = (account.average * account.quantity + fill * added) / (account.quantity + added)
        account.quantity += added

    def close_position(bar: int, price: float, reason: str) -> None:
        side = account.side
        fill = price * (1 - side * slippage)
        fee = commission * account.quantity * fill
        account.cash += side * account.quantity * fill - fee
        account.trades.append(
            {
                "entry_bar": account.entry_bar,
                "exit_bar": bar,
                "side": side,
                "entry_price": account.average,
                "exit_price": fill,
                "quantity": account.quantity,
                "fees": account.fees + fee,
                "pnl": account.cash - account.cash_before,
                "exit_reason": reason,
            }
        )
        account.side, account.quantity = 0, 0.0

    for j in range(n):
        # At the open: the order from the previous close, or the holding limit.
        side = account.side
        if side and risk.max_holding_bars and j - account.entry_bar >= risk.max_holding_bars:
            reason = "signal" if pending == (Action.SELL if side == 1 else Action.COVER) else "max_bars"
            close_position(j, o[j], reason)
        elif side == 0 and pending == Action.BUY:
            open_position(1, j)
        elif side == 0 and pending == Action.SHORT and risk.allow_short:
            open_position(-1, j)
        elif (side == 1 and pending == Action.SELL) or (side == -1 and pending == Action.COVER):
            close_position(j, o[j], "signal")
        elif ((side == 1 and pending == Action.BUY) or (side == -1 and pending == Action.SHORT)) and (
            risk.position_size_pct < 1 and not account.full
        ):
            add_to_position(j)
        # During the bar: stops and the target, from the levels in force now.
        side = account.side
        if side == 1:
            check_long(account, risk, j, o[j], h[j], lo[j], close_position)
        elif side == -1:
            check_short(account, risk, j, o[j], h[j], lo[j], close_position)
        if account.side == 1:
            account.best = max(account.best, h[j])
        elif account.side == -1:
            account.best = min(account.best, lo[j])
        # At the close.
        if j == n - 1 and account.side:
            close_position(j, c[j], "end")
        equity[j] = account.cash + account.side * account.quantity * c[j]
        pending = Action(codes[j]) if j < n - 1 else Action.NONE
    return account.trades, equity


def check_long(account: Account, risk: RiskSettings, j: int, o: float, h: float, low: float, close) -> None:
    stops = []
    if risk.stop_loss_pct:
        stops.append((account.average * (1 - risk.stop_loss_pct), "stop_loss"))
    if risk.trailing_stop_pct:
        stops.append((account.best * (1 - risk.trailing_stop_pct), "trailing_stop"))
    stop = max(stops, key=lambda s: s[0]) if stops else None  # the first listed wins a tie
    target = account.average * (1 + risk.take_profit_pct) if risk.take_profit_pct else None
    if stop and o <= stop[0]:
        close(j, o, stop[1])
    elif target and o >= target:
        close(j, o, "take_profit")
    elif stop and low <= stop[0]:
        close(j, stop[0], stop[1])
    elif target and h >= target:
        close(j, target, "take_profit")


def check_short(account: Account, risk: RiskSettings, j: int, o: float, h: float, low: float, close) -> None:
    stops = []
    if risk.stop_loss_pct:
        stops.append((account.average * (1 + risk.stop_loss_pct), "stop_loss"))
    if risk.trailing_stop_pct:
        stops.append((account.best * (1 + risk.trailing_stop_pct), "trailing_stop"))
    stop = min(stops, key=lambda s: s[0]) if stops else None
    target = account.average * (1 - risk.take_profit_pct) if risk.take_profit_pct else None
    if stop and o >= stop[0]:
        close(j, o, stop[1])
    elif target and o <= target:
        close(j, o, "take_profit")
    elif stop and h >= stop[0]:
        close(j, stop[0], stop[1])
    elif target and low <= target:
        close(j, target, "take_profit")


def assert_same_run(frame, codes, risk, *, capital=10_000.0, commission=0.001, slippage=0.0) -> int:
    report = backtest_signals(
        frame, codes, risk, initial_capital=capital, commission=commission, slippage=slippage
    )
    expected, equity = reference_backtest(frame, codes, risk, capital, commission, slippage)
    trades = report.trades.records()
    assert len(trades) == len(expected)
    for got, want in zip(trades, expected, strict=True):
        for key in ("entry_bar", "exit_bar", "exit_reason"):
            assert got[key] == want[key], (key, got, want)
        assert got["side"] == {1: "long", -1: "short"}[want["side"]]
        for key in ("entry_price", "exit_price", "quantity", "fees", "pnl"):
            assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-9 * capital), (key, got, want)
    np.testing.assert_allclose(report.equity_curve.equity, equity, rtol=1e-9, atol=1e-9 * capital)
    return len(trades)


risks = st.builds(
    RiskSettings,
    stop_loss_pct=st.one_of(st.none(), st.floats(0.002, 0.05)),
    take_profit_pct=st.one_of(st.none(), st.floats(0.002, 0.08)),
    trailing_stop_pct=st.one_of(st.none(), st.floats(0.002, 0.05)),
    position_size_pct=st.sampled_from([1.0, 1.0, 0.5, 0.3]),
    max_holding_bars=st.one_of(st.none(), st.integers(1, 30)),
    allow_short=st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 400),
    density=st.floats(0.02, 0.9),
    risk=risks,
    commission=st.sampled_from([0.0, 0.001, 0.01]),
    slippage=st.sampled_from([0.0, 0.0005, 0.003]),
)
def test_it_matches_the_per_bar_reference_trade_for_trade(seed, n, density, risk, commission, slippage):
    frame = random_walk(n, seed)
    codes = random_codes(n, seed + 1, density=density)
    assert_same_run(frame, codes, risk, commission=commission, slippage=slippage)


@pytest.mark.parametrize(
    "risk",
    [
        RiskSettings(),
        RiskSettings(stop_loss_pct=0.01, take_profit_pct=0.02),
        RiskSettings(trailing_stop_pct=0.015, max_holding_bars=12, allow_short=True),
        RiskSettings(stop_loss_pct=0.02, trailing_stop_pct=0.01, position_size_pct=0.4, allow_short=True),
    ],
)
def test_it_matches_the_reference_over_thousands_of_bars(risk):
    frame = random_walk(5_000, seed=7)
    assert assert_same_run(frame, random_codes(5_000, seed=8, density=0.1), risk, slippage=0.0005) > 50


def test_it_matches_the_reference_when_the_account_is_wiped_out_by_a_short():
    frame = random_walk(300, seed=3, volatility=0.2)
    codes = np.full(300, Action.SHORT, dtype=np.int8)
    report = backtest_signals(frame, codes, RiskSettings(allow_short=True, max_holding_bars=40))
    assert report.final_equity <= 0
    assert_same_run(frame, codes, RiskSettings(allow_short=True, max_holding_bars=40))


def test_it_matches_the_reference_on_real_hourly_bitcoin_with_the_briefs_rsi_strategy():
    path = SHARED_DATA / "btc_usd_bitstamp_1h_2018-05-15_2022-03-01.csv"
    if not path.exists():
        pytest.skip(f"real data not found at {path} (the shared data folder is absent)")
    raw = pd.read_csv(path)
    frame = raw.set_index(pd.to_datetime(raw.pop("timestamp"), unit="ms", utc=True)).astype(np.float64)
    parameters = {
        "rsi_period": 14,
        "rsi_overbought": 70,
        "rsi_oversold": 30,
        "stop_loss_pct": 0.02,
        "take_profit_pct": 0.05,
    }
    rules = [
        {"condition": "RSI < rsi_oversold", "action": "buy", "priority": 1},
        {"condition": "RSI > rsi_overbought", "action": "sell", "priority": 1},
    ]
    report = run_backtest(frame, rules, parameters)
    codes = signals(rules, frame, parameters)
    assert report.num_trades > 100
    assert assert_same_run(frame, codes, RiskSettings.from_parameters(parameters)) == report.num_trades
