"""Market data providers outside the pure domain: exchanges through ccxt (and files), no Django."""
