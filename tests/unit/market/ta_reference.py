"""The `ta` library's version of every registered indicator, as the reference the tests compare to."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import ta

Reference = Callable[[pd.DataFrame, dict], dict[str, np.ndarray]]


def _series(frame: pd.DataFrame) -> tuple[pd.Series, ...]:
    """open, high, low, close, volume on a fresh RangeIndex: ta's PSAR misaligns on other indexes
    with pandas 3 (NOTES.md)."""
    return tuple(pd.Series(frame[c].to_numpy()) for c in ("open", "high", "low", "close", "volume"))


def _arrays(**series: pd.Series) -> dict[str, np.ndarray]:
    return {name: s.to_numpy(dtype=np.float64) for name, s in series.items()}


def sma(frame, p):
    _, _, _, close, _ = _series(frame)
    return _arrays(value=ta.trend.SMAIndicator(close, p["period"]).sma_indicator())


def ema(frame, p):
    _, _, _, close, _ = _series(frame)
    return _arrays(value=ta.trend.EMAIndicator(close, p["period"]).ema_indicator())


def wma(frame, p):
    _, _, _, close, _ = _series(frame)
    return _arrays(value=ta.trend.WMAIndicator(close, p["period"]).wma())


def rsi(frame, p):
    _, _, _, close, _ = _series(frame)
    return _arrays(value=ta.momentum.RSIIndicator(close, p["period"]).rsi())


def macd(frame, p):
    _, _, _, close, _ = _series(frame)
    m = ta.trend.MACD(close, window_slow=p["slow"], window_fast=p["fast"], window_sign=p["signal"])
    return _arrays(macd=m.macd(), signal=m.macd_signal(), histogram=m.macd_diff())


def bb(frame, p):
    _, _, _, close, _ = _series(frame)
    b = ta.volatility.BollingerBands(close, window=p["period"], window_dev=p["std"])
    return _arrays(
        middle=b.bollinger_mavg(),
        upper=b.bollinger_hband(),
        lower=b.bollinger_lband(),
        width=b.bollinger_wband(),
        percent_b=b.bollinger_pband(),
    )


def atr(frame, p):
    _, high, low, close, _ = _series(frame)
    return _arrays(
        value=ta.volatility.AverageTrueRange(high, low, close, window=p["period"]).average_true_range()
    )


def stoch(frame, p):
    _, high, low, close, _ = _series(frame)
    s = ta.momentum.StochasticOscillator(high, low, close, window=p["period"], smooth_window=p["smooth"])
    return _arrays(k=s.stoch(), d=s.stoch_signal())


def adx(frame, p):
    _, high, low, close, _ = _series(frame)
    a = ta.trend.ADXIndicator(high, low, close, window=p["period"])
    return _arrays(adx=a.adx(), plus_di=a.adx_pos(), minus_di=a.adx_neg())


def cci(frame, p):
    _, high, low, close, _ = _series(frame)
    return _arrays(
        value=ta.trend.CCIIndicator(high, low, close, window=p["period"], constant=p["constant"]).cci()
    )


def obv(frame, p):
    _, _, _, close, volume = _series(frame)
    return _arrays(value=ta.volume.OnBalanceVolumeIndicator(close, volume).on_balance_volume())


def vwap(frame, p):
    _, high, low, close, volume = _series(frame)
    indicator = ta.volume.VolumeWeightedAveragePrice(high, low, close, volume, window=p["period"])
    return _arrays(value=indicator.volume_weighted_average_price())


def mfi(frame, p):
    _, high, low, close, volume = _series(frame)
    return _arrays(
        value=ta.volume.MFIIndicator(high, low, close, volume, window=p["period"]).money_flow_index()
    )


def willr(frame, p):
    _, high, low, close, _ = _series(frame)
    return _arrays(value=ta.momentum.WilliamsRIndicator(high, low, close, lbp=p["period"]).williams_r())


def roc(frame, p):
    _, _, _, close, _ = _series(frame)
    return _arrays(value=ta.momentum.ROCIndicator(close, window=p["period"]).roc())


def kc(frame, p):
    _, high, low, close, _ = _series(frame)
    k = ta.volatility.KeltnerChannel(
        high,
        low,
        close,
        window=p["period"],
        window_atr=p["atr_period"],
        original_version=False,
        multiplier=p["multiplier"],
    )
    return _arrays(
        middle=k.keltner_channel_mband(), upper=k.keltner_channel_hband(), lower=k.keltner_channel_lband()
    )


def dc(frame, p):
    _, high, low, close, _ = _series(frame)
    d = ta.volatility.DonchianChannel(high, low, close, window=p["period"])
    return _arrays(
        middle=d.donchian_channel_mband(), upper=d.donchian_channel_hband(), lower=d.donchian_channel_lband()
    )


def ichimoku(frame, p):
    _, high, low, _, _ = _series(frame)
    i = ta.trend.IchimokuIndicator(high, low, window1=p["conversion"], window2=p["base"], window3=p["span_b"])
    return _arrays(
        conversion=i.ichimoku_conversion_line(),
        base=i.ichimoku_base_line(),
        span_a=i.ichimoku_a(),
        span_b=i.ichimoku_b(),
    )


def psar(frame, p):
    _, high, low, close, _ = _series(frame)
    s = ta.trend.PSARIndicator(high, low, close, step=p["step"], max_step=p["max_step"])
    trend = np.where(s.psar_up().notna(), 1.0, np.where(s.psar_down().notna(), -1.0, np.nan))
    return {"value": s.psar().to_numpy(dtype=np.float64), "trend": trend}


REFERENCES: dict[str, Reference] = {
    "SMA": sma,
    "EMA": ema,
    "WMA": wma,
    "RSI": rsi,
    "MACD": macd,
    "BB": bb,
    "ATR": atr,
    "STOCH": stoch,
    "ADX": adx,
    "CCI": cci,
    "OBV": obv,
    "VWAP": vwap,
    "MFI": mfi,
    "WILLR": willr,
    "ROC": roc,
    "KC": kc,
    "DC": dc,
    "ICHIMOKU": ichimoku,
    "PSAR": psar,
}
