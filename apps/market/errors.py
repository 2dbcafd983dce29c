"""Errors of the market app that callers translate: bad input to a service, refused before any write."""

from __future__ import annotations


class MarketInputError(ValueError):
    """Bad input to a market service (unknown symbol, timeframe, file); nothing was written."""
