"""Fixtures for training tests: real BTCUSD 1h candles, media in a temporary folder, small lookbacks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.core import clock
from apps.training import selectors
from apps.training.models import MLModel
from apps.training.services.model_training import model_train, model_train_request, training_spec_build
from tests.integration.market.conftest import btc_hourly  # noqa: F401  (the shipped real candles)

FAST_LOOKBACK = 1000
# On the shipped BTCUSD 1h data the default hyperparameters learn nothing that holds from 1000 bars
# (early stopping keeps one tree, which always says "down": a degenerate model); from 1500 bars they
# do (test AUC 0.52), and from 1000 bars so do 50 trees of depth 2 (test AUC 0.58).
SCHEDULED_LOOKBACK = 1500
SKILLED = {"max_depth": 2, "n_estimators": 50}
SHIPPED_HISTORY_NOW = datetime(2019, 10, 17, 10, 5, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _live_at_the_end_of_the_shipped_history():
    """These tests train on the shipped BTCUSD 1h history as if it were live: the market clock stands
    just after its newest candle closed (2019-10-17 10:00 UTC), so it is fresh data, not stale."""
    with clock.replaying(SHIPPED_HISTORY_NOW):
        yield


@pytest.fixture(autouse=True)
def _training_settings(settings, tmp_path, monkeypatch):
    """Artifacts go to a temporary media folder (a worker process started by the test too); the
    exchanges are unreachable, so nothing leaves the machine; models train on few bars (the scheduled
    run on the fewest from which its default hyperparameters learn something)."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    monkeypatch.setenv("MEDIA_ROOT", settings.MEDIA_ROOT)
    settings.CCXT_URLS_OVERRIDE = {"coinbase": "http://127.0.0.1:9", "binance": "http://127.0.0.1:9"}
    settings.CCXT_MAX_RETRIES = 0
    settings.TRAINING_LOOKBACK_BARS = SCHEDULED_LOOKBACK
    settings.TRAINING_WALK_FORWARD_STEP = 1000
    # Boosters are cached per process by file name and sha256; each test starts from storage.
    selectors._stored_booster.cache_clear()


def train_now(
    *,
    lookback: int = FAST_LOOKBACK,
    model_type: str = "price_prediction",
    hyperparameters: dict | None = None,
) -> MLModel:
    """Train a BTCUSD 1h model synchronously, as a worker would."""
    spec = training_spec_build(
        symbol="BTCUSD",
        timeframe="1h",
        model_type=model_type,
        lookback_period=lookback,
        hyperparameters=hyperparameters,
    )
    model = model_train(model_pk=model_train_request(spec=spec).pk)
    assert model is not None
    assert model.stage == "candidate", model.error
    return model
