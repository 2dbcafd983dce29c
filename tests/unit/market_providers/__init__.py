"""Tests of the market data providers against a local fake exchange."""
