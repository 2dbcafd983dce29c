"""The admin walk's world: the trading tests' paper account and market beside the shipped history."""

from __future__ import annotations

import pytest

from tests.integration.admin.rows import AdminWorld
from tests.integration.trading.conftest import btcusdt, make_account, paper_account  # noqa: F401


@pytest.fixture
def world(user, paper_account, btcusdt) -> AdminWorld:  # noqa: F811  (the imported fixtures)
    return AdminWorld(user=user, account=paper_account, btcusdt=btcusdt)
