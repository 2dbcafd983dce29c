"""The training API of the brief: train (400s naming the field), list, show, evaluate and predict."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core import clock
from apps.core.sweeper import jobs_sweep
from apps.market import selectors as market
from apps.market.services.candles import candles_store
from apps.training import selectors
from apps.training.domain.pipeline import predict_latest
from apps.training.models import MLModel
from apps.training.services.model_training import model_train, model_train_request, training_spec_build
from tests.integration.training.conftest import SHIPPED_HISTORY_NOW, train_now

pytestmark = pytest.mark.django_db

NEWEST = "2019-10-17T09:00:00+00:00"  # the open time of the newest shipped BTCUSD 1h candle


def _error_fields(response) -> dict:
    assert response.status_code == 400, response.content
    return response.json()["error"]["fields"]


@pytest.fixture
def model(btc_hourly) -> MLModel:
    """A candidate whose test split (never seen) covers the last 18 days of the data."""
    return train_now(lookback=3000)


def test_a_train_request_is_accepted_with_the_briefs_id_and_a_url_to_poll(researcher, api_client, btc_hourly):
    response = api_client.post(
        "/api/training/train",
        {"symbol": "BTCUSD", "timeframe": "1h", "model_type": "return_prediction", "lookback_period": 1000},
        format="json",
    )

    assert response.status_code == 202, response.content
    body = response.json()
    stored = MLModel.objects.get(model_id=body["model_id"])
    assert body == {
        "model_id": stored.model_id,
        "status": "training",
        "url": f"/api/training/models/{stored.model_id}",
    }
    assert (stored.stage, stored.status, stored.model_type, stored.horizon) == (
        "training",
        "pending",
        "return_prediction",
        1,
    )
    assert stored.feature_set["name"] == "core"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"symbol": "DOGEUSD"}, "symbol", "unknown symbol"),
        ({"model_type": "price_guessing"}, "model_type", "valid: price_prediction"),
        ({"timeframe": "7m"}, "timeframe", "unknown timeframe"),
        ({"timeframe": "1d"}, "timeframe", "no 1d candles"),
        ({"lookback_period": 50_000}, "lookback_period", "longer than the stored history"),
        ({"lookback_period": -5}, "lookback_period", "bars at horizon 1, got -5"),
        ({"lookback_period": "many"}, "lookback_period", "valid integer"),
        ({"horizon": 0}, "horizon", "horizon must be"),
        ({"hyperparameters": {"depth": 3}}, "hyperparameters", "unknown hyperparameter"),
        ({"hyperparameters": {"max_depth": 99}}, "hyperparameters", "max_depth=99"),
    ],
)
def test_a_bad_train_request_is_a_400_naming_the_field_and_registers_nothing(
    api_client, btc_hourly, change, field, words
):
    request = {
        "symbol": "BTCUSD",
        "timeframe": "1h",
        "model_type": "price_prediction",
        "lookback_period": 1000,
    }
    fields = _error_fields(api_client.post("/api/training/train", request | change, format="json"))

    assert list(fields) == [field]
    assert words in fields[field][0]
    assert not MLModel.objects.exists()


def test_the_lookback_error_says_how_much_history_there_is(api_client, btc_hourly):
    request = {
        "symbol": "BTCUSD",
        "timeframe": "1h",
        "model_type": "price_prediction",
        "lookback_period": 50_000,
    }
    message = _error_fields(api_client.post("/api/training/train", request, format="json"))[
        "lookback_period"
    ][0]

    assert "20111 candles" in message
    assert "at most 19611" in message


def test_models_are_listed_newest_first_and_filtered(api_client, btc_hourly):
    older = train_now()
    newer = train_now(model_type="return_prediction")

    everything = api_client.get("/api/training/models?symbol=BTCUSD&limit=10").json()
    returns = api_client.get("/api/training/models?symbol=btc/usd&model_type=return_prediction").json()
    champions = api_client.get("/api/training/models?status=champion").json()

    assert [m["model_id"] for m in everything["results"]] == [newer.model_id, older.model_id]
    assert [m["model_id"] for m in returns["results"]] == [newer.model_id]
    assert champions["count"] == 0
    assert api_client.get("/api/training/models?symbol=ETHUSD").json()["count"] == 0
    assert "status" in _error_fields(api_client.get("/api/training/models?status=best"))


def test_a_model_shows_its_windows_metrics_importances_and_feature_set(api_client, model):
    body = api_client.get(f"/api/training/models/{model.model_id}").json()

    assert (body["status"], body["symbol"], body["exchange"], body["timeframe"]) == (
        "candidate",
        "BTCUSD",
        "coinbase",
        "1h",
    )
    assert set(body["metrics"]) == {"train", "validation", "test"}
    assert body["windows"]["train"]["end"] < body["windows"]["validation"]["start"]
    assert body["windows"]["validation"]["end"] < body["seen_until"] < body["windows"]["test"]["start"]
    assert body["feature_set"]["name"] == "core"
    assert len(body["feature_set"]["specs"]) == len(body["feature_importances"])
    assert sum(body["feature_importances"].values()) == pytest.approx(1.0)
    assert body["hyperparameters"]["max_depth"] == 4
    assert api_client.get("/api/training/models/price_prediction_NOPE_1h_20200101000000").status_code == 404


def test_evaluate_scores_the_most_recent_days_the_model_never_saw(api_client, model):
    response = api_client.post(
        "/api/training/models/evaluate", {"model_id": model.model_id, "evaluation_period": 7}, format="json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    # The 168 bars that closed in the last 7 days; the newest has no known outcome yet.
    assert body["start"] == "2019-10-10T10:00:00Z"
    assert body["end"] == "2019-10-17T09:00:00Z"
    assert body["rows"] == 167
    assert body["start"] > body["seen_until"]
    assert 0.3 < body["metrics"]["accuracy"] < 0.7
    assert {"roc_auc", "log_loss", "baseline_accuracy", "trading_total_return"} <= set(body["metrics"])


def test_evaluate_starts_after_what_the_model_saw_when_the_period_reaches_back_further(api_client, model):
    body = api_client.post(
        "/api/training/models/evaluate", {"model_id": model.model_id, "evaluation_period": 365}, format="json"
    ).json()

    assert body["requested_start"] < body["seen_until"]
    first_unseen = model.seen_until + timedelta(hours=1)
    assert body["start"] == first_unseen.isoformat().replace("+00:00", "Z")


def test_evaluate_is_a_400_saying_so_when_the_model_saw_every_recent_bar(api_client, model, btc_hourly):
    # As a model trained on every stored bar would be.
    newest = market.newest_candle_time(instrument=btc_hourly, timeframe="1h")
    MLModel.objects.filter(pk=model.pk).update(seen_until=newest)

    fields = _error_fields(
        api_client.post(
            "/api/training/models/evaluate",
            {"model_id": model.model_id, "evaluation_period": 7},
            format="json",
        )
    )

    assert "never saw" in fields["evaluation_period"][0]
    assert NEWEST in fields["evaluation_period"][0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model_id": "price_prediction_NOPE_1h_20200101000000", "evaluation_period": 7}, "model_id"),
        ({"evaluation_period": -3}, "evaluation_period"),
        ({"evaluation_period": 0}, "evaluation_period"),
        ({"evaluation_period": "a week"}, "evaluation_period"),
    ],
)
def test_a_bad_evaluate_request_is_a_400_naming_the_field(api_client, model, body, field):
    request = {"model_id": model.model_id} | body
    assert list(_error_fields(api_client.post("/api/training/models/evaluate", request, format="json"))) == [
        field
    ]


def test_predict_answers_for_the_newest_closed_candle_with_the_stored_model(api_client, model, btc_hourly):
    response = api_client.get(f"/api/training/models/{model.model_id}/predict")

    assert response.status_code == 200, response.content
    body = response.json()
    frame = market.candles_frame(instrument=btc_hourly, timeframe="1h")
    expected = predict_latest(selectors.model_booster(model=model), frame, selectors.model_feature_set(model))
    assert body["time"] == "2019-10-17T09:00:00Z"
    assert body["value"] == pytest.approx(expected.value, abs=1e-7)
    assert 0 < body["value"] < 1
    assert body["signal"] == (body["value"] >= model.threshold)
    assert (body["model_type"], body["horizon"], body["threshold"]) == (
        "price_prediction",
        1,
        model.threshold,
    )


def test_a_new_candle_gets_a_new_prediction(api_client, model, btc_hourly):
    before = api_client.get(f"/api/training/models/{model.model_id}/predict").json()
    newest = market.candles_frame(instrument=btc_hourly, timeframe="1h", limit=1)
    with clock.replaying(SHIPPED_HISTORY_NOW + timedelta(hours=1)):  # the 10:00 candle has closed
        candles_store(
            instrument=btc_hourly,
            timeframe="1h",
            frame=newest.set_axis(newest.index + timedelta(hours=1)) * 1.02,
        )

    after = api_client.get(f"/api/training/models/{model.model_id}/predict").json()

    assert (before["time"], after["time"]) == ("2019-10-17T09:00:00Z", "2019-10-17T10:00:00Z")
    assert after["value"] != before["value"]


def test_predicting_or_evaluating_a_model_still_training_is_a_400_naming_the_model(
    researcher, api_client, btc_hourly
):
    accepted = api_client.post(
        "/api/training/train",
        {"symbol": "BTCUSD", "timeframe": "1h", "model_type": "price_prediction", "lookback_period": 1000},
        format="json",
    ).json()

    predicted = api_client.get(f"{accepted['url']}/predict")
    evaluated = api_client.post(
        "/api/training/models/evaluate",
        {"model_id": accepted["model_id"], "evaluation_period": 7},
        format="json",
    )

    assert "still training" in _error_fields(predicted)["model_id"][0]
    assert "still training" in _error_fields(evaluated)["model_id"][0]


def test_the_api_needs_a_token(anon_client):
    assert anon_client.get("/api/training/models").status_code == 401
    assert anon_client.post("/api/training/train", {}, format="json").status_code == 401


def test_a_training_that_cannot_succeed_fails_the_model_with_its_reason(api_client, btc_hourly):
    spec = training_spec_build(
        symbol="BTCUSD", timeframe="1h", model_type="price_prediction", lookback_period=1000
    )
    requested = model_train_request(spec=spec)
    broken = {
        "name": "broken",
        "version": 1,
        "specs": [{"kind": "indicator", "name": "x", "indicator": "NOPE"}],
    }
    MLModel.objects.filter(pk=requested.pk).update(feature_set=broken)

    failed = model_train(model_pk=requested.pk)

    body = api_client.get(f"/api/training/models/{failed.model_id}").json()
    assert (body["status"], body["job_status"]) == ("failed", "failed")
    assert "NOPE" in body["error"]
    assert (
        "failed to train"
        in _error_fields(api_client.get(f"/api/training/models/{failed.model_id}/predict"))["model_id"][0]
    )
    assert model_train(model_pk=requested.pk) is None  # a redelivered message changes nothing


def test_a_model_whose_training_keeps_losing_its_worker_fails_with_the_reason(
    api_client, btc_hourly, settings
):
    settings.CELERY_TASK_MAX_ATTEMPTS = 1
    spec = training_spec_build(
        symbol="BTCUSD", timeframe="1h", model_type="price_prediction", lookback_period=1000
    )
    requested = model_train_request(spec=spec)
    # Its one attempt was claimed, then the worker died: the lease ran out without a renewal.
    MLModel.objects.filter(pk=requested.pk).update(
        status="running", attempts=1, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    jobs_sweep(send=lambda task, args: None)

    body = api_client.get(f"/api/training/models/{requested.model_id}").json()
    assert (body["status"], body["job_status"]) == ("failed", "failed")
    assert "stopped renewing the lease" in body["error"]
