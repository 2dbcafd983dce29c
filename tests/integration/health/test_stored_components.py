"""GET /api/health checks the database, the cache and the broker itself and reads every other
component back from the newest snapshot: a bounded number of queries, stale snapshots said so."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pandas as pd
import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.health import services, stored
from apps.health.checks import LIVE_COMPONENTS, STORED_COMPONENTS
from apps.health.models import HealthSnapshot
from apps.market.services.candles import candles_store
from apps.market.services.instruments import instrument_get_or_create
from apps.strategies.models import Strategy, StrategyStatus, StrategyType
from apps.trading.models import StrategyAllocation
from apps.trading.services.accounts import account_create
from tests.fakes.http import closed_port_url
from tests.integration.health.snapshots import take_snapshot
from workers import app as celery_app

pytestmark = pytest.mark.django_db


def _store_hourly(symbol: str, *, hours_old: int = 1) -> None:
    instrument = instrument_get_or_create(symbol=symbol, exchange="binance", timeframes=["1h"])
    newest = pd.Timestamp(timezone.now()).floor("1h") - pd.Timedelta(hours=hours_old)
    index = pd.date_range(end=newest, periods=3, freq="1h", tz="UTC", name="open_time")
    frame = pd.DataFrame({"open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 3.0}, index=index)
    candles_store(instrument=instrument, timeframe="1h", frame=frame)


def _stored_checked_at(snapshot: HealthSnapshot) -> dict[str, str]:
    return {name: snapshot.document["components"][name]["checked_at"] for name in STORED_COMPONENTS}


def test_the_components_are_those_of_the_newest_snapshot_not_computed_on_the_request(staff_client):
    _store_hourly("BTCUSDT")
    snapshot = take_snapshot()
    _store_hourly("ETHUSDT", hours_old=48)  # after the snapshot: not seen until the next one

    body = staff_client.get("/api/health").json()

    components = body["components"]
    assert set(components) == set(LIVE_COMPONENTS) | set(STORED_COMPONENTS)
    assert list(components["market_data"]["series"]) == ["BTCUSDT@binance 1h"]
    assert components["workers"]["message"] == f"Checked by worker {snapshot.worker}"
    read_back = {name: components[name]["checked_at"] for name in STORED_COMPONENTS if name != "scheduler"}
    assert read_back == {k: v for k, v in _stored_checked_at(snapshot).items() if k != "scheduler"}
    assert all(components[name]["checked_at"] > snapshot.finished_at.isoformat() for name in LIVE_COMPONENTS)

    take_snapshot()
    market = staff_client.get("/api/health").json()["components"]["market_data"]
    assert sorted(market["series"]) == ["BTCUSDT@binance 1h", "ETHUSDT@binance 1h"]
    assert market["message"] == "Stale: ETHUSDT@binance 1h"


def test_a_snapshot_past_the_bound_is_reported_stale_not_computed_again(staff_client, settings):
    _store_hourly("BTCUSDT")
    snapshot = take_snapshot()
    long_ago = timezone.now() - timedelta(seconds=settings.HEALTH_SCHEDULER_MAX_AGE_SECONDS + 60)
    HealthSnapshot.objects.filter(pk=snapshot.pk).update(finished_at=long_ago)
    stored.newest_publish()  # as the worker left it when it took the snapshot, that long ago
    _store_hourly("ETHUSDT")

    response = staff_client.get("/api/health")

    body = response.json()
    assert (response.status_code, body["status"]) == (200, "degraded")
    note = f"Stale: last computed at {long_ago:%Y-%m-%d %H:%M:%S} UTC; "
    for name in set(STORED_COMPONENTS) - {"scheduler"}:
        component = body["components"][name]
        assert component["status"] in ("degraded", "unhealthy"), name
        assert component["message"].startswith(note), name
        assert component["checked_at"] == _stored_checked_at(snapshot)[name]
    assert body["components"]["market_data"]["message"] == note + "Market data service operational"
    assert list(body["components"]["market_data"]["series"]) == ["BTCUSDT@binance 1h"]
    assert body["components"]["workers"]["status"] == "degraded"  # healthy when computed, stale now


def test_a_stale_cache_entry_is_checked_against_the_database(staff_client, settings):
    old = take_snapshot()
    long_ago = timezone.now() - timedelta(seconds=settings.HEALTH_SCHEDULER_MAX_AGE_SECONDS + 60)
    HealthSnapshot.objects.filter(pk=old.pk).update(finished_at=long_ago)
    stored.newest_publish()
    entry = cache.get(stored.CACHE_KEY)
    fresh = take_snapshot()
    cache.set(stored.CACHE_KEY, entry)  # the fresh snapshot's publication was lost (a Redis blip)

    jobs = staff_client.get("/api/health").json()["components"]["jobs"]

    assert jobs["checked_at"] == _stored_checked_at(fresh)["jobs"]
    assert not jobs["message"].startswith("Stale")


def test_the_scheduler_is_the_age_of_the_newest_beat_snapshot_even_when_a_requested_one_is_newer(
    staff_client,
):
    beat = services.snapshot_take_for_current_slot(celery_app=celery_app)
    requested = take_snapshot()

    components = staff_client.get("/api/health").json()["components"]

    assert beat is not None and requested.finished_at > beat.finished_at
    assert (components["scheduler"]["status"], components["scheduler"]["last_run_at"]) == (
        "healthy",
        beat.finished_at.isoformat(),
    )
    assert components["jobs"]["checked_at"] == _stored_checked_at(requested)["jobs"]


def test_before_any_snapshot_the_components_are_computed_on_the_request_and_nothing_is_stored(staff_client):
    _store_hourly("BTCUSDT")

    components = staff_client.get("/api/health").json()["components"]

    assert list(components["market_data"]["series"]) == ["BTCUSDT@binance 1h"]
    assert components["scheduler"]["message"] == "No scheduled run has completed yet"
    assert all(components[name]["checked_at"] for name in STORED_COMPONENTS)
    assert not HealthSnapshot.objects.exists()


def _queries_of_a_request(client, user, *, allocations: int, series: int) -> tuple[int, int]:
    """The queries of GET /api/health reading the cache entry, then the database (no entry)."""
    account = account_create(
        owner=user, name=f"Auto {allocations}", starting_cash=Decimal(10000), auto_trading=True
    )
    instrument = instrument_get_or_create(symbol="BTCUSDT", exchange="binance", timeframes=["1h"])
    for number in range(allocations):
        strategy = Strategy.objects.create(
            strategy_id=f"strategy_{allocations}_{number}",
            name=f"S{allocations}-{number}",
            type=StrategyType.CUSTOM,
            instrument=instrument,
            timeframe="1h",
            status=StrategyStatus.ACTIVE,
        )
        StrategyAllocation.objects.create(account=account, strategy=strategy)
    for number in range(series):
        _store_hourly(f"S{series}X{number}USDT")
    take_snapshot()

    counts = []
    for _ in ("cache", "database"):
        with CaptureQueriesContext(connection) as queries:
            body = client.get("/api/health").json()
        assert body["components"]["trading_orchestrator"]["strategies"] == allocations
        assert len(body["components"]["market_data"]["series"]) >= series
        counts.append(len(queries))
        cache.delete(stored.CACHE_KEY)
    account.delete()  # and its allocations
    return counts[0], counts[1]


def test_a_request_sends_the_same_few_queries_for_1_allocation_and_series_as_for_50(anon_client, user):
    few = _queries_of_a_request(anon_client, user, allocations=1, series=1)
    many = _queries_of_a_request(anon_client, user, allocations=50, series=12)

    # SELECT 1; without the cache entry, one more: the newest snapshot and the newest beat run's time.
    assert few == many == (1, 2)


def test_with_redis_down_it_answers_503_from_the_database(anon_client, settings):
    _store_hourly("BTCUSDT")
    snapshot = take_snapshot()
    nowhere = closed_port_url().replace("http://", "redis://").replace("/ping", "/0")
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": nowhere,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1, "IGNORE_EXCEPTIONS": True},
        }
    }
    original = celery_app.conf.broker_url
    celery_app.conf.broker_url = nowhere
    try:
        response = anon_client.get("/api/health")
    finally:
        celery_app.conf.broker_url = original

    components = response.json()["components"]
    assert response.status_code == 503
    assert {name: components[name]["status"] for name in LIVE_COMPONENTS} == {
        "database": "healthy",
        "cache": "degraded",
        "broker": "unhealthy",
    }
    assert components["market_data"]["checked_at"] == _stored_checked_at(snapshot)["market_data"]
