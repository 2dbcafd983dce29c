"""Writes of the market app, one module per use case.

``instruments`` (created offline from a symbol, or from the exchange's market description),
``candles`` (closed candles validated and upserted, imported from a file, resampled),
``candle_fetch`` (candles fetched from the exchange, with the gaps backfilled) and ``analyses``
(the 30-minute analysis: its rows per slot, and the run that stores signals, events and commentary).

Bad input raises :class:`apps.market.errors.MarketInputError` and writes nothing.
"""
