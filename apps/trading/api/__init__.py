"""The trading API."""
