"""Pure trading rules: fills against candles, ledger arithmetic in Decimal, risk checks. No Django."""
