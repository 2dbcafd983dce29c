"""The market admin: every list loads, candles and analyses are read-only, actions enqueue tasks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.market.admin_candles import YearFilter
from apps.market.domain.candle_files import read_candles
from apps.market.models import Candle, Instrument, MarketAnalysis
from apps.market.services.candles import candles_store
from apps.market.services.instruments import instrument_get_or_create
from tests.integration.enqueued import enqueued
from tests.integration.market_admin.conftest import BTC_1H

pytestmark = pytest.mark.django_db

MODELS = ("instrument", "candle", "marketanalysis", "signal", "marketevent")


def _instrument_with_candles(symbol: str, candles: int, timeframes: list[str] | None = None) -> Instrument:
    instrument = instrument_get_or_create(symbol=symbol, exchange="coinbase", timeframes=timeframes)
    candles_store(instrument=instrument, timeframe="1h", frame=read_candles(BTC_1H).iloc[:candles])
    return instrument


def _post_action(client, action: str, instruments: list[Instrument]):
    url = reverse("admin:market_instrument_changelist")
    response = client.post(url, {"action": action, "_selected_action": [i.pk for i in instruments]})
    assert response.status_code == 302
    return response


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.mark.parametrize("model", MODELS)
def test_every_market_list_loads(admin_client, analysis, model):
    response = admin_client.get(reverse(f"admin:market_{model}_changelist"))

    assert response.status_code == 200
    assert "BTCUSD" in response.content.decode()


def test_the_candle_list_filters_by_instrument_and_timeframe_and_date(admin_client, btc):
    url = reverse("admin:market_candle_changelist")
    series = {"instrument__id__exact": btc.pk, "timeframe__exact": "1h"}
    unnarrowed = admin_client.get(url).context["cl"]
    assert not [
        spec for spec in unnarrowed.filter_specs if isinstance(spec, YearFilter)
    ]  # once a series is chosen

    chosen = admin_client.get(url, series)
    changelist = chosen.context["cl"]
    (year_filter,) = [spec for spec in changelist.filter_specs if isinstance(spec, YearFilter)]
    years = [choice["display"] for choice in year_filter.choices(changelist)]
    assert years[1:] == [str(y) for y in range(btc.series.get().newest_open.year, 2017 - 1, -1)]
    response = admin_client.get(url, {**series, "year": 2019, "month": 10})
    shown = list(response.context["cl"].result_list)

    assert response.status_code == 200
    assert len(shown) == 100
    assert {(c.instrument_id, c.timeframe, f"{c.open_time:%Y-%m}") for c in shown} == {
        (btc.pk, "1h", "2019-10")
    }
    assert shown[0].open_time > shown[-1].open_time  # newest first
    october = Candle.objects.filter(
        instrument=btc, timeframe="1h", open_time__gte=datetime(2019, 10, 1, tzinfo=UTC)
    ).filter(open_time__lt=datetime(2019, 11, 1, tzinfo=UTC))
    assert response.context["cl"].result_count == october.count() > 300  # the data ends on the 17th
    assert admin_client.get(url, {**series, "year": "MMXIX"}).url.endswith("?e=1")


def test_the_instrument_list_shows_candle_counts_without_a_query_per_instrument(admin_client):
    _instrument_with_candles("AAAUSD", 30)
    url = reverse("admin:market_instrument_changelist")
    with CaptureQueriesContext(connection) as one_instrument:
        admin_client.get(url)
    _instrument_with_candles("BBBUSD", 40)
    _instrument_with_candles("CCCUSD", 50)
    with CaptureQueriesContext(connection) as three_instruments:
        response = admin_client.get(url)

    assert len(three_instruments) == len(one_instrument)
    counts = {row.symbol: row.candle_count for row in response.context["cl"].result_list}
    assert counts == {"AAAUSD": 30, "BBBUSD": 40, "CCCUSD": 50}
    assert '<td class="field-candle_count">50</td>' in response.content.decode()


def test_the_instrument_list_links_each_instrument_to_its_chart(admin_client, btc):
    response = admin_client.get(reverse("admin:market_instrument_changelist"))

    assert reverse("admin:market_instrument_chart", args=[btc.pk]) in response.content.decode()


def test_candles_cannot_be_added_changed_or_deleted(admin_client, btc):
    candle = Candle.objects.filter(instrument=btc).first()
    change_url = reverse("admin:market_candle_change", args=[candle.pk])

    assert admin_client.get(reverse("admin:market_candle_add")).status_code == 403
    assert admin_client.post(change_url, {"open": 1, "high": 1, "low": 1, "close": 1}).status_code == 403
    assert admin_client.get(reverse("admin:market_candle_delete", args=[candle.pk])).status_code == 403
    changelist = admin_client.get(reverse("admin:market_candle_changelist"))
    assert "delete_selected" not in changelist.content.decode()
    candle_before = (candle.open, candle.close)
    candle.refresh_from_db()
    assert (candle.open, candle.close) == candle_before


def test_a_candle_page_shows_the_bar_read_only(admin_client, btc):
    candle = Candle.objects.filter(instrument=btc).first()
    response = admin_client.get(reverse("admin:market_candle_change", args=[candle.pk]))

    assert response.status_code == 200
    assert 'name="close"' not in response.content.decode()
    assert 'name="_save"' not in response.content.decode()


def test_an_analysis_shows_its_signals_and_events_read_only(admin_client, analysis):
    response = admin_client.get(reverse("admin:market_marketanalysis_change", args=[analysis.pk]))
    page = response.content.decode()

    assert response.status_code == 200
    assert "RSI(14) crossed above 30" in page
    assert "volume 4.2 standard deviations" in page
    assert 'name="signals-0-reason"' not in page
    assert admin_client.get(reverse("admin:market_marketanalysis_add")).status_code == 403


def test_fetch_now_enqueues_one_candle_fetch_per_timeframe(admin_client, django_capture_on_commit_callbacks):
    btc = _instrument_with_candles("BTCUSD", 30, timeframes=["1h", "1d"])
    eth = _instrument_with_candles("ETHUSD", 30, timeframes=["1h"])

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _post_action(admin_client, "fetch_candles_now", [btc, eth])

    assert enqueued(callbacks) == sorted(
        [
            ("market.candles_fetch_latest", (btc.pk, "1h")),
            ("market.candles_fetch_latest", (btc.pk, "1d")),
            ("market.candles_fetch_latest", (eth.pk, "1h")),
        ]
    )
    assert _messages(response) == ["Enqueued 3 candle fetch task(s)."]


def test_analyse_now_enqueues_one_analysis_per_timeframe(admin_client, django_capture_on_commit_callbacks):
    btc = _instrument_with_candles("BTCUSD", 30, timeframes=["1h", "4h"])

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _post_action(admin_client, "analyse_now", [btc])

    rows = MarketAnalysis.objects.filter(instrument=btc).order_by("timeframe")
    assert [(row.timeframe, row.status) for row in rows] == [("1h", "pending"), ("4h", "pending")]
    assert enqueued(callbacks) == [("market.analysis_run", (row.pk,)) for row in rows]
    assert _messages(response) == ["Enqueued 2 analysis task(s)."]


def test_analyse_now_does_not_repeat_an_analysis_made_for_the_slot(
    admin_client, django_capture_on_commit_callbacks
):
    btc = _instrument_with_candles("BTCUSD", 30, timeframes=["1h"])
    with django_capture_on_commit_callbacks(execute=False):
        _post_action(admin_client, "analyse_now", [btc])
    MarketAnalysis.objects.filter(instrument=btc).update(status="completed")  # a worker ran it

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _post_action(admin_client, "analyse_now", [btc])

    assert enqueued(callbacks) == []
    assert MarketAnalysis.objects.filter(instrument=btc).count() == 1
    assert _messages(response)[-1].startswith("Enqueued 0 analysis task(s). 1 already analysed (or running)")


def test_an_instrument_without_timeframes_uses_those_of_its_stored_candles(
    admin_client, django_capture_on_commit_callbacks
):
    instrument = _instrument_with_candles("LTCUSD", 30, timeframes=[])

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _post_action(admin_client, "analyse_now", [instrument])

    row = MarketAnalysis.objects.get(instrument=instrument)
    assert row.timeframe == "1h"
    assert enqueued(callbacks) == [("market.analysis_run", (row.pk,))]


def test_it_warns_about_an_instrument_with_nothing_to_fetch(admin_client, django_capture_on_commit_callbacks):
    empty = instrument_get_or_create(symbol="XRPUSD", exchange="coinbase")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _post_action(admin_client, "fetch_candles_now", [empty])

    assert callbacks == []
    assert _messages(response) == [
        "Enqueued 0 candle fetch task(s).",
        "Nothing to do for XRPUSD: no timeframes set and no candles stored.",
    ]
