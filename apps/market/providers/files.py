"""Candles from files (the bundled CSV layout and ccxt JSON arrays) as a batch; parsing is the domain's."""

from __future__ import annotations

from pathlib import Path

from apps.market.domain.candle_files import read_candles
from apps.market.domain.candles import CandleError, parse_timeframe

from .base import CandleBatch, PermanentProviderError


def read_candle_file(path: str | Path, *, symbol: str, timeframe: str) -> CandleBatch:
    """Every candle in a ``.csv`` or ``.json`` file, all final, checked against ``timeframe``'s grid.

    Raises PermanentProviderError, naming the file and the place, if it is missing, unreadable,
    malformed, empty, or has a candle that does not open on a ``timeframe`` boundary.
    """
    path = Path(path)
    try:
        period = parse_timeframe(timeframe)
        candles = read_candles(path)
    except CandleError as error:
        raise PermanentProviderError(str(error)) from error
    except OSError as error:
        raise PermanentProviderError(f"{path}: cannot read the file: {error.strerror}") from error
    if candles.empty:
        raise PermanentProviderError(f"{path.name}: the file has no candles")
    off_grid = candles.index != period.floor(candles.index)
    if off_grid.any():
        first = candles.index[off_grid][0]
        raise PermanentProviderError(
            f"{path.name}: the candle at {first} does not open on a {period} boundary"
        )
    complete_until = (candles.index[-1] + period.duration).to_pydatetime()
    return CandleBatch(symbol=symbol, timeframe=period.name, candles=candles, complete_until=complete_until)
