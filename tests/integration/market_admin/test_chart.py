"""The instrument chart page and its data: local scripts only, aligned series, clear 400s, staff only."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

import numpy as np
import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from apps.market.domain.patterns import PATTERNS
from apps.market.models import Candle
from apps.market.services.instruments import instrument_get_or_create

pytestmark = pytest.mark.django_db

ASSET_URL = re.compile(r'<(?:script|link|img)\b[^>]*?\b(?:src|href)="([^"]+)"')


def _chart_url(instrument) -> str:
    return reverse("admin:market_instrument_chart", args=[instrument.pk])


def _data_url(instrument) -> str:
    return reverse("admin:market_instrument_chart_data", args=[instrument.pk])


def _outputs(body) -> dict[str, dict]:
    """Every indicator output of a data answer by ``LABEL.output``."""
    return {f"{i['label']}.{o['name']}": o for i in body["indicators"] for o in i["outputs"]}


def _served(client, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200, url
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_the_chart_page_loads_its_scripts_and_styles_from_this_site_only(admin_client, btc):
    response = admin_client.get(_chart_url(btc), {"indicators": "SMA(50),RSI"})
    page = response.content.decode()
    assets = ASSET_URL.findall(page)

    assert response.status_code == 200
    assert "/static/market/vendor/lightweight-charts.standalone.production.js" in assets
    assert "/static/market/chart.js" in assets
    assert [url for url in assets if not url.startswith("/")] == []
    assert re.search(r"<script[^>]+src=\"(https?:)?//", page) is None
    for url in assets:
        assert _served(admin_client, url), url
    for own_file in ("/static/market/chart.js", "/static/market/chart.css"):
        assert b"http" not in _served(admin_client, own_file)


def test_the_vendored_library_is_the_release_its_readme_names(admin_client):
    vendor = "/static/market/vendor/"
    readme = _served(admin_client, f"{vendor}README.md").decode()
    library = _served(admin_client, f"{vendor}lightweight-charts.standalone.production.js")

    assert hashlib.sha256(library).hexdigest() in readme
    assert b"TradingView Lightweight Charts\xe2\x84\xa2 v4.2.3" in library
    assert "Apache License" in _served(admin_client, f"{vendor}LICENSE").decode()


def test_the_chart_page_offers_the_stored_timeframes_and_keeps_the_query(admin_client, btc):
    response = admin_client.get(_chart_url(btc), {"indicators": "SMA(50),BB(20,2)", "bars": 800})
    page = response.content.decode()

    assert '<option value="1h" selected>1h</option>' in page
    assert 'value="SMA(50),BB(20,2)"' in page
    assert 'value="800"' in page
    assert _data_url(btc) in page


def test_the_data_has_one_value_per_candle_for_every_indicator_output(admin_client, btc):
    response = admin_client.get(
        _data_url(btc),
        {"timeframe": "1h", "bars": 300, "indicators": "SMA(50),BB(20,2),RSI,MACD", "patterns": "none"},
    )
    body = response.json()
    newest = Candle.objects.filter(instrument=btc).latest("open_time")
    closes = np.array(
        Candle.objects.filter(instrument=btc)
        .order_by("-open_time")
        .values_list("close", flat=True)[:300][::-1]
    )
    outputs = _outputs(body)

    assert response.status_code == 200
    assert body["count"] == len(body["times"]) == 300
    assert body["times"][-1] == int(newest.open_time.timestamp())
    assert np.all(np.diff(body["times"]) > 0)
    assert body["candles"]["close"] == closes.tolist()
    assert {len(output["values"]) for output in outputs.values()} == {300}
    assert outputs["SMA(50).value"]["values"][-1] == pytest.approx(closes[-50:].mean(), rel=1e-12)
    assert outputs["SMA(50).value"]["values"][0] is not None  # warmed up on the bars before the window
    assert 0 <= min(outputs["RSI(14).value"]["values"]) <= max(outputs["RSI(14).value"]["values"]) <= 100


def test_price_scaled_outputs_overlay_the_candles_and_oscillators_get_their_own_pane(admin_client, btc):
    body = admin_client.get(
        _data_url(btc), {"timeframe": "1h", "bars": 100, "indicators": "EMA(20),BB(20,2),PSAR,RSI,MACD"}
    ).json()
    panes = {label: output["pane"] for label, output in _outputs(body).items()}
    styles = {label: output["style"] for label, output in _outputs(body).items()}

    assert panes["EMA(20).value"] == panes["BB(20,2).upper"] == panes["PSAR(0.02,0.2).value"] == "price"
    assert panes["BB(20,2).percent_b"] == "BB(20,2)"
    assert panes["RSI(14).value"] == "RSI(14)"
    assert panes["MACD(12,26,9).signal"] == panes["MACD(12,26,9).histogram"] == "MACD(12,26,9)"
    assert styles["MACD(12,26,9).histogram"] == "histogram"
    assert styles["PSAR(0.02,0.2).value"] == "dots"
    assert styles["PSAR(0.02,0.2).trend"] == "hidden"


def test_indicators_still_warming_up_are_null(admin_client, young_instrument):
    body = admin_client.get(
        _data_url(young_instrument), {"timeframe": "1h", "bars": 500, "indicators": "SMA(20)"}
    ).json()
    values = _outputs(body)["SMA(20).value"]["values"]

    assert body["count"] == 60
    assert values[:19] == [None] * 19
    assert values[19] == pytest.approx(np.mean(body["candles"]["close"][:20]), rel=1e-12)


def test_detected_patterns_lie_within_the_bars_shown(admin_client, btc):
    body = admin_client.get(_data_url(btc), {"timeframe": "1h", "bars": 500, "patterns": "all"}).json()
    first, last = (datetime.fromtimestamp(body["times"][i], tz=UTC) for i in (0, -1))

    assert len(body["patterns"]) > 0
    for detection in body["patterns"]:
        assert detection["pattern"] in PATTERNS
        assert detection["direction"] in {"bullish", "bearish", "neutral"}
        assert first <= datetime.fromisoformat(detection["start_time"])
        assert datetime.fromisoformat(detection["end_time"]) <= last


def test_patterns_can_be_chosen_by_kind_name_or_left_out(admin_client, btc):
    def names(patterns: str) -> set[str]:
        body = admin_client.get(
            _data_url(btc), {"timeframe": "1h", "bars": 1000, "patterns": patterns}
        ).json()
        return {detection["pattern"] for detection in body["patterns"]}

    assert names("none") == set()
    assert names("doji,double_top") <= {"doji", "double_top"}
    assert "doji" in names("candlestick")
    assert {PATTERNS[name].kind for name in names("chart")} == {"chart"}


@pytest.mark.parametrize(
    ("query", "field", "reason"),
    [
        ({"indicators": "SMA(50),FOO"}, "indicators", "unknown indicator 'FOO'; valid: "),
        ({"indicators": "SMA(0)"}, "indicators", "period must be a whole number from 1"),
        ({"timeframe": "4h"}, "timeframe", "no 4h candles for this instrument; stored: 1h"),
        ({"timeframe": "7x"}, "timeframe", "stored: 1h"),
        ({"bars": 5001}, "bars", "less than or equal to 5000"),
        ({"bars": "many"}, "bars", "whole number"),
        ({"patterns": "doji,teacup"}, "patterns", "unknown pattern(s) teacup; valid: all, none"),
    ],
)
def test_it_rejects_bad_input_with_a_400_naming_the_field(admin_client, btc, query, field, reason):
    response = admin_client.get(_data_url(btc), {"timeframe": "1h", **query})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert list(error["fields"]) == [field]
    assert reason in error["fields"][field][0]
    assert error["message"].startswith(f"{field}: ")


def test_an_unknown_instrument_is_a_404(admin_client, btc):
    missing = reverse("admin:market_instrument_chart_data", args=[btc.pk + 1000])

    assert admin_client.get(missing).status_code == 404


@pytest.mark.parametrize("url_of", [_chart_url, _data_url])
def test_anonymous_users_are_sent_to_the_admin_login(btc, url_of):
    response = Client().get(url_of(btc), {"timeframe": "1h"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_users_who_are_not_staff_are_sent_to_the_admin_login(client, user, btc):
    client.force_login(user)

    response = client.get(_data_url(btc), {"timeframe": "1h"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_staff_need_permission_to_view_instruments(client, staff_user, btc):
    client.force_login(staff_user)
    assert client.get(_data_url(btc), {"timeframe": "1h"}).status_code == 403

    staff_user.user_permissions.add(Permission.objects.get(codename="view_instrument"))
    assert client.get(_data_url(btc), {"timeframe": "1h"}).status_code == 200


def test_the_chart_page_of_an_instrument_without_candles_says_so(admin_client):
    empty = instrument_get_or_create(symbol="XRPUSD", exchange="coinbase")

    response = admin_client.get(_chart_url(empty))

    assert response.status_code == 200
    assert "No candles are stored for this instrument yet." in response.content.decode()


def test_the_instrument_form_links_to_the_chart(admin_client, btc):
    change = admin_client.get(reverse("admin:market_instrument_change", args=[btc.pk]))
    add = admin_client.get(reverse("admin:market_instrument_add"))

    assert _chart_url(btc) in change.content.decode()
    assert add.status_code == 200
