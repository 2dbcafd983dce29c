"""A real worker trains a model requested through the API; the stored artifact is the model it fitted."""

from __future__ import annotations

import hashlib
import re
import time

import pandas as pd
import pytest
from django.core.files.storage import default_storage

from apps.market import selectors as market
from apps.training import selectors
from apps.training.domain.pipeline import evaluate
from apps.training.models import MLModel
from tests.integration.worker import running_worker
from workers.training import model_train

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TRAIN_REQUEST = {
    "symbol": "BTCUSD",
    "timeframe": "1h",
    "model_type": "price_prediction",
    "lookback_period": 2000,
}


def _wait_until_trained(api_client, url: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = api_client.get(url).json()
        if body["status"] != "training":
            return body
        time.sleep(0.2)
    raise AssertionError(f"{url} still training after {timeout}s")


def test_a_real_worker_trains_the_model_on_the_training_queue_and_ignores_a_redelivery(
    researcher, api_client, btc_hourly, tmp_path
):
    with running_worker(tmp_path / "worker.log"):
        accepted = api_client.post("/api/training/train", TRAIN_REQUEST, format="json")
        assert accepted.status_code == 202, accepted.content
        assert accepted.json()["status"] == "training"
        body = _wait_until_trained(api_client, accepted.json()["url"])
        first = MLModel.objects.get(model_id=body["model_id"])

        model_train.delay(first.pk)  # a redelivered message
        # A later job on the same solo worker finishes only after the redelivered one was consumed.
        later = api_client.post("/api/training/train", TRAIN_REQUEST, format="json").json()
        _wait_until_trained(api_client, later["url"])

    assert re.fullmatch(r"price_prediction_BTCUSD_1h_\d{14}", body["model_id"])
    assert (body["status"], body["job_status"], body["error"]) == ("candidate", "completed", "")
    assert body["lookback_period"] == 2000
    assert body["metrics"]["test"]["rows"] > 250
    again = MLModel.objects.get(pk=first.pk)
    assert (again.attempts, again.finished_at, again.artifact_sha256) == (
        1,
        first.finished_at,
        first.artifact_sha256,
    )
    assert later["model_id"] != body["model_id"]


def test_the_stored_artifact_has_its_sha256_and_reproduces_the_recorded_test_metrics(
    researcher, api_client, btc_hourly, tmp_path
):
    with running_worker(tmp_path / "worker.log"):
        accepted = api_client.post("/api/training/train", TRAIN_REQUEST, format="json").json()
        _wait_until_trained(api_client, accepted["url"])
    model = MLModel.objects.get(model_id=accepted["model_id"])
    with default_storage.open(model.artifact.name, "rb") as handle:
        raw = handle.read()

    assert model.artifact.name.endswith(".ubj")
    assert hashlib.sha256(raw).hexdigest() == model.artifact_sha256
    assert api_client.get(accepted["url"]).json()["artifact_sha256"] == model.artifact_sha256

    # The test metrics were computed by the worker with the booster in memory, before it was saved;
    # the booster loaded back from storage must score the same rows identically.
    frame = market.candles_frame(instrument=btc_hourly, timeframe="1h")
    reloaded = evaluate(
        selectors.model_booster(model=model),
        frame,
        model_type=model.model_type,
        horizon=model.horizon,
        feature_set=selectors.model_feature_set(model),
        start=pd.Timestamp(model.windows["test"]["start"]),
    )
    recorded = model.metrics["test"]
    assert reloaded.metrics["rows"] == recorded["rows"]
    for name in ("roc_auc", "log_loss", "brier", "accuracy"):
        assert reloaded.metrics[name] == pytest.approx(recorded[name], rel=1e-12, abs=1e-12), name
