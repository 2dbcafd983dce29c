"""Shared candles for the training tests."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.unit.training.synthetic import random_walk_candles


@pytest.fixture(scope="session")
def walk() -> pd.DataFrame:
    """6,000 hourly bars of a seeded random walk."""
    return random_walk_candles(6_000, seed=7)


@pytest.fixture(scope="session")
def long_walk() -> pd.DataFrame:
    """50,000 hourly bars of a seeded random walk: enough rows for tight out-of-sample bounds."""
    return random_walk_candles(50_000, seed=2024)
