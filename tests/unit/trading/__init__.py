"""Unit tests of the trading app's pure code: fills, ledger, risk, portfolio, the exchange adapter."""
