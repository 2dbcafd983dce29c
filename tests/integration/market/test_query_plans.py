"""PostgreSQL plans of the per-request market queries: none reads the candle table by a Seq Scan.

The planner's choice means something only on a table of realistic size with fresh statistics, so
each test stores 50,000 candles through the bulk path (whose own ANALYZE runs on commit) and then
reads the plan PostgreSQL makes, in ``EXPLAIN (FORMAT JSON)``, of every query the code sends.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.core import clock
from apps.health.checks import check_market_data
from apps.market import selectors
from apps.market.models import Candle, CandleSeries, Instrument
from apps.market.services.candles import ANALYZE_AFTER_ROWS, candles_store
from apps.market.services.instruments import instrument_get_or_create

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.postgresql,  # plans are PostgreSQL's; CI runs these on PostgreSQL
]

INSTRUMENTS = 5
BARS = 10_000  # per instrument: 50,000 candles in all
CANDLE_TABLE = "market_candle"
INDEX_READS = {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}


def hourly_candles(bars: int, seed: int) -> pd.DataFrame:
    """A random walk of closed hourly candles ending with the newest closed one."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, bars)))
    open_ = np.concatenate(([100.0], close[:-1]))
    newest = pd.Timestamp(clock.now()).floor("1h") - pd.Timedelta(hours=1)
    index = pd.date_range(end=newest, periods=bars, freq="1h", tz="UTC", name="open_time")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": rng.gamma(2.0, 5.0, bars),
        },
        index=index,
    )


@pytest.fixture
def stored(django_capture_on_commit_callbacks) -> list[Instrument]:
    """Five instruments of 10,000 hourly candles, each stored by one bulk write and its ANALYZE."""
    assert BARS >= ANALYZE_AFTER_ROWS  # so that every write refreshes the statistics
    instruments = []
    for number in range(INSTRUMENTS):
        instrument = instrument_get_or_create(
            symbol=f"PLAN{number}USDT", exchange="binance", timeframes=["1h"]
        )
        with django_capture_on_commit_callbacks(execute=True):
            candles_store(instrument=instrument, timeframe="1h", frame=hourly_candles(BARS, seed=number))
        instruments.append(instrument)
    return instruments


def plan_nodes(sql: str) -> Iterator[dict[str, Any]]:
    """Every node of PostgreSQL's plan of ``sql`` (not run: plain EXPLAIN)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        document = cursor.fetchone()[0]
    plan = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
    pending = [plan]
    while pending:
        node = pending.pop()
        yield node
        pending.extend(node.get("Plans", []))


def candle_reads(call: Callable[[], Any]) -> tuple[Any, list[str]]:
    """What ``call`` returns, and the node type of every read of the candle table in the plans of
    the SELECTs it sent."""
    with CaptureQueriesContext(connection) as queries:
        result = call()
    reads = [
        node["Node Type"]
        for query in queries.captured_queries
        if query["sql"].lstrip().upper().startswith(("SELECT", "WITH"))
        for node in plan_nodes(query["sql"])
        if node.get("Relation Name") == CANDLE_TABLE
    ]
    return result, reads


def test_a_query_over_the_whole_candle_table_is_planned_as_a_seq_scan(stored):
    # The control: at this size, with these statistics, the planner does scan the table when a
    # query needs all of it (health's freshness was such a GROUP BY), so the tests below can fail.
    sql = f"SELECT instrument_id, timeframe, MAX(open_time) FROM {CANDLE_TABLE} GROUP BY 1, 2"
    assert "Seq Scan" in [node["Node Type"] for node in plan_nodes(sql)]


def test_health_market_freshness_reads_no_candle(stored):
    component, reads = candle_reads(check_market_data)

    assert reads == []
    assert len(component["series"]) == INSTRUMENTS
    assert component["status"] == "healthy"


def test_an_instruments_timeframes_read_no_candle(stored):
    timeframes, reads = candle_reads(lambda: selectors.candle_timeframes(instrument=stored[2]))

    assert reads == []
    assert timeframes == ["1h"]


def test_the_newest_candles_are_read_through_the_index(api_client, stored):
    response, reads = candle_reads(
        lambda: api_client.get("/api/market/data", {"symbol": "PLAN3USDT", "timeframe": "1h", "limit": 1000})
    )

    assert response.status_code == 200
    assert response.json()["count"] == 1000
    assert reads  # the candles are read, and only through the index
    assert set(reads) <= INDEX_READS, reads


def test_indicators_of_the_newest_candles_are_read_through_the_index(api_client, stored):
    query = {"symbol": "PLAN1USDT", "timeframe": "1h", "limit": 1000, "indicators": "RSI,MACD,BB(20,2)"}
    response, reads = candle_reads(lambda: api_client.get("/api/market/data/indicators", query))

    assert response.status_code == 200
    assert response.json()["count"] == 1000
    assert reads
    assert set(reads) <= INDEX_READS, reads


def test_a_bulk_write_refreshes_the_statistics_of_the_candle_table(stored):
    # ANALYZE ran on each write's commit: the planner knows every new instrument's share of the table.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT most_common_vals::text FROM pg_stats WHERE tablename = %s AND attname = 'instrument_id'",
            [CANDLE_TABLE],
        )
        (common,) = cursor.fetchone()
    known = {int(value) for value in common.strip("{}").split(",")}
    assert {instrument.pk for instrument in stored} <= known


def test_the_instrument_list_of_the_admin_reads_no_candle(admin_client, stored):
    response, reads = candle_reads(lambda: admin_client.get(reverse("admin:market_instrument_changelist")))

    assert response.status_code == 200
    assert reads == []
    counts = {row.symbol: row.candle_count for row in response.context["cl"].result_list}
    assert counts == {f"PLAN{number}USDT": BARS for number in range(INSTRUMENTS)}


@pytest.mark.parametrize(
    "narrowed",
    [
        {},
        {"timeframe__exact": "1h"},
        {"instrument__id__exact": "{pk}", "timeframe__exact": "1h"},
        {"instrument__id__exact": "{pk}", "timeframe__exact": "1h", "year": "{year}", "month": "1", "p": "2"},
        {"_facets": "True"},
    ],
)
def test_the_candle_list_of_the_admin_reads_candles_only_through_the_index(admin_client, stored, narrowed):
    # Django's defaults sorted every candle by its instrument's symbol, counted them and asked for
    # their first and last open time and distinct years: four Seq Scans of the table.
    instrument = stored[1]
    year = CandleSeries.objects.get(instrument=instrument).newest_open.year
    query = {key: value.format(pk=instrument.pk, year=year) for key, value in narrowed.items()}
    url = reverse("admin:market_candle_changelist")

    response, reads = candle_reads(lambda: admin_client.get(url, query))

    assert response.status_code == 200
    assert reads and set(reads) <= INDEX_READS, reads
    candles = Candle.objects.all()
    if "instrument__id__exact" in query:
        candles = candles.filter(instrument=instrument)
    if "year" in query:
        january = datetime(year, 1, 1, tzinfo=UTC)
        candles = candles.filter(open_time__gte=january, open_time__lt=january.replace(month=2))
    assert response.context["cl"].result_count == candles.count() > 100
