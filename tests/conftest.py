"""What every test layer shares: where the shipped market data lives."""

from __future__ import annotations

from pathlib import Path

# Real candles shipped with the repository (fixtures/market/manifest.json says where they came from).
SHIPPED_MARKET_DATA = Path(__file__).resolve().parents[1] / "fixtures" / "market"
