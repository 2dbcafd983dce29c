"""What every test layer shares: where the shipped market data lives, and which tests need PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

# Real candles shipped with the repository (fixtures/market/manifest.json says where they came from).
SHIPPED_MARKET_DATA = Path(__file__).resolve().parents[1] / "fixtures" / "market"

# Marker -> why its tests need PostgreSQL. On the embedded SQLite defaults they are deselected with a
# line saying so, never skipped one by one: CI runs them on PostgreSQL.
POSTGRESQL_ONLY = {
    "fault": "fault-injection tests deselected: they need PostgreSQL (DATABASE_URL)",
    "postgresql": "PostgreSQL tests (query plans) deselected: they need DATABASE_URL",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        return
    for marker, message in POSTGRESQL_ONLY.items():
        needing = [item for item in items if item.get_closest_marker(marker)]
        if needing:
            config.hook.pytest_deselected(items=needing)
            items[:] = [item for item in items if not item.get_closest_marker(marker)]
            print(f"\n{len(needing)} {message}")
