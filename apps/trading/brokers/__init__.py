"""Brokers: paper (simulated fills) and live (an exchange through ccxt)."""
