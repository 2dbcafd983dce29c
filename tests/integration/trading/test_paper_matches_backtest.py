"""Paper trading and the backtester, on the same candles, signals and rules, agree trade for trade.

The paper account is driven as the live system drives it: each hour a candle is stored, the resting
paper orders are matched against it, then the strategy's signal on that candle's close goes to the
orchestrator, which turns it into orders through the risk manager and attaches the stop-loss and
take-profit once the entry fills. The candles are the shipped real BTCUSD hours, made continuous
(each bar opens at the previous close, as 99.95% of them already do), because the paper broker fills
a market order at the last price it knows, the close, where the backtester fills at the next open.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from apps.market.services.candles import candles_store
from apps.market.services.instruments import instrument_get_or_create
from apps.strategies.engine import Action, run_backtest, signals
from apps.strategies.models import StrategyStatus
from apps.trading import orchestrator
from apps.trading.models import Fill, OrderSource, StrategyAllocation
from apps.trading.services.orders import order_place
from apps.trading.services.paper_matching import paper_orders_match
from tests.integration.active_strategies import strategy_create_as

from .conftest import NO_LIMITS

FIXTURE = (
    Path(__file__).resolve().parents[3]
    / "fixtures"
    / "market"
    / "btc_usd_coinbase_1h_2017-07-01_2019-10-17.csv"
)
BARS = slice(1000, 2200)  # late 2017: volatile enough that stops and targets share bars
PARAMETERS = {
    "rsi_period": 14,
    "rsi_overbought": 65,
    "rsi_oversold": 35,
    "stop_loss_pct": 0.01,
    "take_profit_pct": 0.015,
}
RULES = [
    {"condition": "RSI < rsi_oversold", "action": "buy", "priority": 1},
    {"condition": "RSI > rsi_overbought", "action": "sell", "priority": 1},
]
COMMISSION, SLIPPAGE = 0.001, 0.0005
D = Decimal


def continuous_candles() -> pd.DataFrame:
    raw = pd.read_csv(FIXTURE)
    frame = (
        raw.set_index(pd.to_datetime(raw.pop("timestamp"), unit="ms", utc=True)).astype(np.float64).iloc[BARS]
    )
    frame.index.name = "open_time"
    frame["open"] = frame["close"].shift(1).fillna(frame["open"])
    frame["high"] = frame[["high", "open"]].max(axis=1)
    frame["low"] = frame[["low", "open"]].min(axis=1)
    return frame


def test_paper_fills_agree_with_the_backtest_trade_for_trade(make_account):
    frame = continuous_candles()
    report = run_backtest(
        frame, RULES, PARAMETERS, initial_capital=10000.0, commission=COMMISSION, slippage=SLIPPAGE
    )
    codes = signals(RULES, frame, PARAMETERS)
    instrument = instrument_get_or_create(symbol="BTCUSD", exchange="coinbase", timeframes=["1h"])
    candles_store(instrument=instrument, timeframe="1h", frame=frame.iloc[:1])
    strategy = strategy_create_as(
        name="RSI paper agreement",
        type="mean_reversion",
        instrument=instrument,
        timeframe="1h",
        parameters=PARAMETERS,
        indicators=["RSI"],
        rules=RULES,
        status=StrategyStatus.ACTIVE,
    )
    account = make_account(
        name="Agreement",
        quote_currency="USD",
        exchange="coinbase",
        starting_cash=D(10000),
        paper_fee_rate=D(str(COMMISSION)),
        paper_slippage=D(str(SLIPPAGE)),
        auto_trading=True,
        **NO_LIMITS,
    )
    allocation = StrategyAllocation.objects.create(account=account, strategy=strategy)
    times = frame.index.to_pydatetime()

    for t in range(len(frame)):
        candles_store(instrument=instrument, timeframe="1h", frame=frame.iloc[t : t + 1])
        paper_orders_match(instrument=instrument)
        if t + 1 < len(frame) and codes[t] in (Action.BUY, Action.SELL):
            orchestrator.signal_apply(
                allocation=allocation,
                version=strategy.current_version,
                signal=Action(int(codes[t])),
                candle_time=times[t],
                at=times[t] + timedelta(hours=1),
            )
    position = account.positions.get(instrument=instrument)
    if position.quantity:  # the backtester closes what is still open at the last close
        order_place(
            created_by="test",
            account=account,
            instrument=instrument,
            side="SELL",
            type="MARKET",
            quantity=position.quantity,
            at=times[-1],
        )

    fills = list(Fill.objects.filter(account=account).select_related("order").order_by("executed_at", "pk"))
    entries, exits = fills[0::2], fills[1::2]
    trades = report.trades
    assert len(entries) == len(exits) == len(trades.entry_bar) > 20
    assert all(f.side == "BUY" for f in entries) and all(f.side == "SELL" for f in exits)
    reasons = {"STOP_LOSS": "stop_loss", "TAKE_PROFIT": "take_profit"}
    for k, (entry, exit_) in enumerate(zip(entries, exits, strict=True)):
        assert entry.executed_at == times[trades.entry_bar[k]], k
        assert exit_.executed_at == times[trades.exit_bar[k]], k
        assert float(entry.price) == pytest.approx(trades.entry_price[k], rel=1e-9)
        assert float(exit_.price) == pytest.approx(trades.exit_price[k], rel=1e-9)
        assert float(entry.quantity) == pytest.approx(trades.quantity[k], rel=1e-6)
        expected = trades.exit_reason[k]
        if exit_.order.source == OrderSource.PROTECTIVE:
            assert reasons[exit_.order.type] == expected, k
        else:
            assert expected in ("signal", "end"), k
        pnl = exit_.quantity * exit_.price - exit_.fee - entry.quantity * entry.price - entry.fee
        assert float(pnl) == pytest.approx(trades.pnl[k], rel=1e-5, abs=1e-4)
    assert {"stop_loss", "take_profit"} <= set(trades.exit_reason)
    stops_on_target_bars = sum(
        reason == "stop_loss" and frame["high"].iloc[bar] >= price * (1 + PARAMETERS["take_profit_pct"])
        for reason, bar, price in zip(trades.exit_reason, trades.exit_bar, trades.entry_price, strict=True)
    )
    assert stops_on_target_bars > 5  # bars touching both levels, where the stop is assumed first
    account.refresh_from_db()
    assert float(account.cash) == pytest.approx(report.final_equity, rel=1e-6)
