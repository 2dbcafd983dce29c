"""Report metrics computed by hand on small equity curves and trades, and their JSON form."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import numpy as np
import pytest

from apps.strategies.engine.backtest import RiskSettings, backtest_signals
from apps.strategies.engine.metrics import EquityCurve, Trades, bars_per_year, build_report
from apps.strategies.engine.rules import Action

from .candles import flat, random_codes, random_walk


def report_for(
    equity: list[float], close: list[float] | None = None, trades: Trades | None = None, timeframe="1d"
):
    equity_array = np.asarray(equity, dtype=np.float64)
    times = flat(equity).index.tz_localize(None).to_numpy()
    curve = EquityCurve(times, equity_array, equity_array, np.zeros(len(equity)))
    return build_report(
        times=times,
        close=np.asarray(close or equity, dtype=np.float64),
        curve=curve,
        trades=trades or trades_of([]),
        initial_capital=equity[0],
        timeframe=timeframe,
        commission=0.0,
        slippage=0.0,
    )


def trades_of(
    returns_pct: list[float], pnl: list[float] | None = None, reasons: list[str] | None = None
) -> Trades:
    count = len(returns_pct)
    pnl = returns_pct if pnl is None else pnl
    zeros = np.zeros(count)
    bars = np.arange(count, dtype=np.int64)
    return Trades(
        entry_bar=bars,
        exit_bar=bars + 1,
        entry_time=bars.astype("datetime64[h]"),
        exit_time=(bars + 1).astype("datetime64[h]"),
        side=np.ones(count, dtype=np.int8),
        entry_price=zeros + 1,
        exit_price=zeros + 1,
        quantity=zeros + 1,
        pnl=np.asarray(pnl, dtype=np.float64),
        return_pct=np.asarray(returns_pct, dtype=np.float64),
        fees=zeros + 0.5,
        exit_reason=np.array(reasons or ["signal"] * count, dtype=object),
    )


@pytest.mark.parametrize(
    ("timeframe", "bars"),
    [("1m", 525_600), ("15m", 35_040), ("1h", 8760), ("4h", 2190), ("1d", 365), ("1w", 365 / 7)],
)
def test_bars_per_year_follow_a_365_day_year(timeframe, bars):
    assert bars_per_year(timeframe) == pytest.approx(bars)


def test_an_unknown_timeframe_is_rejected():
    with pytest.raises(ValueError, match="unknown timeframe"):
        bars_per_year("1 hour")


def test_returns_and_risk_ratios_follow_their_definitions():
    equity = [100.0, 110.0, 99.0, 108.9, 119.79]
    report = report_for(equity)
    returns = np.array([0.1, -0.1, 0.1, 0.1])
    assert report.total_return_pct == pytest.approx(19.79)
    assert report.cagr_pct == pytest.approx(100 * (1.1979 ** (365 / 4) - 1))
    assert report.sharpe_ratio == pytest.approx(returns.mean() / returns.std(ddof=1) * math.sqrt(365))
    assert report.sortino_ratio == pytest.approx(returns.mean() / math.sqrt(0.01 / 4) * math.sqrt(365))
    assert report.volatility_pct == pytest.approx(100 * returns.std(ddof=1) * math.sqrt(365))
    assert report.max_drawdown_pct == pytest.approx(10.0)
    assert report.calmar_ratio == pytest.approx(report.cagr_pct / 10.0)


def test_the_drawdown_duration_runs_from_the_high_to_its_recovery_or_the_end():
    report = report_for([100.0, 120.0, 90.0, 100.0, 125.0, 110.0, 111.0])
    # 120 (bar 1) to 125 (bar 4): three bars; 125 (bar 4) to the end (bar 6): two.
    assert report.max_drawdown_duration.bars == 3
    assert report.max_drawdown_duration.span == timedelta(hours=3)
    assert report.max_drawdown_pct == pytest.approx(25.0)


def test_a_flat_curve_has_no_drawdown_and_undefined_risk_ratios():
    report = report_for([100.0] * 5)
    assert (report.max_drawdown_pct, report.max_drawdown_duration.bars) == (0.0, 0)
    assert (report.sharpe_ratio, report.sortino_ratio, report.calmar_ratio) == (None, None, None)


def test_trade_statistics_follow_their_definitions():
    report = report_for([100.0, 101.0], trades=trades_of([10.0, -5.0, 20.0], pnl=[10.0, -5.0, 20.0]))
    assert report.win_rate_pct == pytest.approx(200 / 3)
    assert report.profit_factor == pytest.approx(30 / 5)
    assert report.expectancy_pct == pytest.approx(25 / 3)
    assert report.avg_trade_pct == pytest.approx(100 * ((1.1 * 0.95 * 1.2) ** (1 / 3) - 1))
    assert (report.best_trade_pct, report.worst_trade_pct) == (20.0, -5.0)
    assert report.fees_paid == pytest.approx(1.5)


def test_trade_statistics_are_undefined_without_trades_or_without_losses():
    assert report_for([100.0, 100.0]).win_rate_pct is None
    assert report_for([100.0, 101.0], trades=trades_of([1.0])).profit_factor is None


def test_buy_and_hold_spans_the_first_to_the_last_close():
    report = report_for([100.0, 100.0, 100.0], close=[50.0, 60.0, 75.0])
    assert report.buy_and_hold_return_pct == pytest.approx(50.0)
    assert report.buy_and_hold_cagr_pct == pytest.approx(100 * (1.5 ** (365 / 2) - 1))


def test_the_report_serialises_to_strict_json_with_none_for_undefined_values():
    frame = random_walk(500, seed=4)
    report = backtest_signals(
        frame, random_codes(500, seed=5), RiskSettings(stop_loss_pct=0.01, allow_short=True)
    )
    data = report.to_dict(equity_points=50)
    text = json.dumps(data, allow_nan=False)
    assert len(data["equity_curve"]["times"]) == 50
    assert data["equity_curve"]["times"][0] == "2024-01-01T00:00:00Z"
    assert data["num_trades"] == len(data["trades"]) > 0
    assert set(data["trades"][0]) >= {
        "entry_time",
        "exit_time",
        "side",
        "entry_price",
        "exit_price",
        "quantity",
        "pnl",
        "return_pct",
        "fees",
        "exit_reason",
    }
    assert data["max_drawdown_duration"]["bars"] >= 0
    assert json.loads(text)["final_equity"] == pytest.approx(report.final_equity)
    quiet = backtest_signals(flat([100.0] * 10), np.zeros(10, dtype=np.int8), RiskSettings()).to_dict()
    assert quiet["sharpe_ratio"] is None and quiet["profit_factor"] is None
    json.dumps(quiet, allow_nan=False)


def test_downsampling_keeps_the_first_and_last_points_and_the_requested_count():
    report = backtest_signals(
        random_walk(1000, seed=1), np.full(1000, Action.BUY, dtype=np.int8), RiskSettings()
    )
    small = report.equity_curve.downsample(7)
    assert len(small) == 7
    assert small.equity[0] == report.equity_curve.equity[0] and small.equity[-1] == report.final_equity
    assert report.equity_curve.downsample(5000) is report.equity_curve
