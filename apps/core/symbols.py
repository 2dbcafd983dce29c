"""One spelling of a market symbol everywhere: ``btc/usdt``, ``BTC-USDT`` and ``BTCUSDT`` are one."""

from __future__ import annotations

_SEPARATORS = str.maketrans("", "", "/-_ ")


def normalise_symbol(text: str) -> str:
    """Upper case without separators (``/``, ``-``, ``_``, spaces), as instruments are stored."""
    return text.strip().upper().translate(_SEPARATORS)
