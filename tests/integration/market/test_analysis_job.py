"""The 30-minute market analysis: one analysis per slot, offline-tolerant, signals and events stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from apps.core import clock
from apps.market.models import MarketAnalysis, MarketEvent, Signal
from apps.market.services.analyses import analysis_run_all
from tests.fakes.http import closed_port_url

pytestmark = pytest.mark.django_db
SLOT_TIME = datetime(2026, 3, 1, 12, 40, tzinfo=UTC)


@pytest.fixture
def offline(settings):
    """The exchange cannot be reached: every fetch fails at once."""
    settings.CCXT_URLS_OVERRIDE = {"coinbase": closed_port_url().removesuffix("/ping")}
    settings.CCXT_MAX_RETRIES = 0


def test_running_the_job_twice_in_a_slot_stores_one_analysis_per_series(btc_hourly, offline):
    first = analysis_run_all(now=SLOT_TIME)
    signals, events = Signal.objects.count(), MarketEvent.objects.count()
    second = analysis_run_all(now=SLOT_TIME + timedelta(minutes=10))

    assert len(first) == 1
    assert second == []
    analysis = MarketAnalysis.objects.get()
    assert analysis.slot == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert analysis.status == "completed"
    assert (Signal.objects.count(), MarketEvent.objects.count()) == (signals, events)


def test_an_offline_fetch_is_recorded_and_the_stored_candles_are_analysed(btc_hourly, offline):
    analysis = analysis_run_all(now=SLOT_TIME)[0]

    assert analysis.fetch_status == "failed"
    assert "Error" in analysis.fetch_message
    assert analysis.last_candle_time == datetime(2019, 10, 17, 9, tzinfo=UTC)
    assert analysis.indicators["RSI(14)"] is not None
    assert 0 <= analysis.indicators["RSI(14)"] <= 100
    assert analysis.regime["trend"] in {"up", "down", "range"}
    assert analysis.summary
    assert analysis.commentary["status"] == "none"
    assert isinstance(analysis.patterns, list)


def test_stale_data_is_analysed_but_no_signal_is_derived_from_it(btc_hourly, offline):
    with clock.replaying(SLOT_TIME):  # the shipped history ended in 2019
        analysis = analysis_run_all(now=SLOT_TIME)[0]

    assert analysis.stale is True
    assert analysis.freshness.startswith("the newest 1h candle closed 2019-10-17 10:00 UTC")
    assert analysis.summary.startswith("Stale data:")
    assert not Signal.objects.exists() and not MarketEvent.objects.exists()
    assert analysis.commentary == {"status": "none", "reason": "the market data is stale"}


def test_fresh_data_gives_signals_and_events(btc_hourly, offline):
    live = datetime(2019, 10, 17, 10, 20, tzinfo=UTC)  # twenty minutes after the newest candle closed
    with clock.replaying(live):
        analysis = analysis_run_all(now=live)[0]

    assert analysis.stale is False
    assert "20 minutes ago" in analysis.freshness
    assert Signal.objects.filter(analysis=analysis).exists()


def test_the_next_slot_gets_its_own_analysis_but_events_of_the_same_bar_are_not_repeated(btc_hourly, offline):
    analysis_run_all(now=SLOT_TIME)
    events = MarketEvent.objects.count()
    analysis_run_all(now=SLOT_TIME + timedelta(minutes=30))

    assert MarketAnalysis.objects.count() == 2
    assert MarketEvent.objects.count() == events


def test_the_analysis_api_lists_signals_and_events(api_client, btc_hourly, offline):
    analysis_run_all(now=SLOT_TIME)

    body = api_client.get("/api/market/analyses?symbol=BTCUSD").json()
    assert body["count"] == 1
    assert {"signals", "events", "indicators", "regime", "patterns", "fetch_status"} <= set(
        body["results"][0]
    )
    assert api_client.get("/api/market/signals?symbol=BTCUSD").status_code == 200
    assert api_client.get("/api/market/events?kind=gap").status_code == 200
    assert api_client.get("/api/market/events?kind=bogus").status_code == 400


def test_analyze_market_command_reports_each_series(btc_hourly, offline):
    out = StringIO()
    call_command("analyze_market", "--symbol", "BTCUSD", "--no-fetch", stdout=out)
    assert "BTCUSD 1h: completed" in out.getvalue()


def test_the_job_is_scheduled_every_30_minutes():
    from django_celery_beat.models import PeriodicTask

    from workers.schedules import sync_schedules

    sync_schedules()
    task = PeriodicTask.objects.get(task="market.analysis_run_all")
    assert task.crontab.minute == "*/30"
