"""The series' summary rows tell what the candles themselves would, after every kind of candle write.

Health, the market API and the services read these rows instead of aggregating the candle table;
each step below writes candles another way and then checks the rows against the aggregate.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
from django.core.management import call_command
from django.db.models import Count, Max, Min

from apps.market import selectors
from apps.market.domain.candle_files import read_candles
from apps.market.errors import MarketInputError
from apps.market.models import Candle, CandleSeries, Instrument
from apps.market.services.candle_fetch import candles_fetch
from apps.market.services.candles import candles_import_file, candles_resample, candles_store
from apps.market.services.instruments import instrument_delete
from tests.integration.market.conftest import BTC_HOURLY

pytestmark = pytest.mark.django_db


def aggregated() -> list[tuple]:
    """(instrument, timeframe, first open, newest open, count) of each series, from the candles."""
    rows = (
        Candle.objects.order_by()
        .values_list("instrument_id", "timeframe")
        .annotate(Min("open_time"), Max("open_time"), Count("id"))
    )
    return sorted(rows)


def summarised() -> list[tuple]:
    rows = CandleSeries.objects.values_list(
        "instrument_id", "timeframe", "first_open", "newest_open", "count"
    )
    return sorted(rows)


def assert_summaries_match_the_candles() -> None:
    assert summarised() == aggregated()
    for instrument in Instrument.objects.all():
        stored = Candle.objects.filter(instrument=instrument).order_by("timeframe").values_list("timeframe")
        assert selectors.candle_timeframes(instrument=instrument) == [t for (t,) in stored.distinct()]
    newest = (
        Candle.objects.filter(instrument__active=True)
        .order_by("instrument__symbol", "timeframe")
        .values_list("instrument__symbol", "instrument__exchange", "timeframe")
        .annotate(Max("open_time"))
    )
    assert [tuple(row.values()) for row in selectors.newest_candles_by_series()] == list(newest)


def csv(path: Path, frame: pd.DataFrame) -> Path:
    rows = (
        f"{int(t.timestamp() * 1000)},{r.open},{r.high},{r.low},{r.close},{r.volume}"
        for t, r in frame.iterrows()
    )
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    return path


def test_every_candle_write_keeps_the_summary_rows_equal_to_the_candles(fake_exchange, tmp_path):
    call_command("load_demo_data", stdout=StringIO())
    assert len(summarised()) == 4
    assert_summaries_match_the_candles()

    btc = Instrument.objects.get(symbol="BTCUSD", exchange="coinbase")
    hourly = read_candles(BTC_HOURLY)
    # Rewritten values over the newest bars, and bars before the first: both ends move or hold.
    changed = hourly.iloc[-10:].assign(volume=hourly["volume"].iloc[-10:] + 1)
    candles_store(instrument=btc, timeframe="1h", frame=changed)
    earlier = hourly.iloc[:48].set_axis(hourly.index[:48] - pd.Timedelta(hours=48))
    candles_store(instrument=btc, timeframe="1h", frame=earlier.rename_axis("open_time"))
    assert_summaries_match_the_candles()

    candles_resample(instrument=btc, from_timeframe="1h", to_timeframe="4h")
    assert_summaries_match_the_candles()

    # An import with a hole, then a fetch past it that backfills the hole from the exchange.
    fake_exchange.load_klines("BTCUSDT", "1h", BTC_HOURLY)
    window = hourly.loc["2019-01-01":"2019-01-10"]
    candles_import_file(
        path=csv(tmp_path / "holed.csv", window.drop(window.index[50:60])),
        symbol="BTCUSDT",
        timeframe="1h",
        exchange="binance",
    )
    usdt = Instrument.objects.get(symbol="BTCUSDT", exchange="binance")
    report = candles_fetch(
        instrument=usdt,
        timeframe="1h",
        since=pd.Timestamp("2019-01-09", tz="UTC"),
        until=pd.Timestamp("2019-01-12", tz="UTC"),
    )
    assert report.backfilled == 10
    assert_summaries_match_the_candles()

    # A refused import changes nothing; an inactive instrument leaves health's list; a deleted one
    # takes its rows along.
    broken = csv(tmp_path / "broken.csv", hourly.loc["2019-02-01":"2019-02-02"])
    broken.write_text(broken.read_text() + "not,a,candle,row,at,all\n")
    with pytest.raises(MarketInputError):
        candles_import_file(path=broken, symbol="BTCUSDT", timeframe="1h", exchange="binance")
    Instrument.objects.filter(symbol="ETHUSD").update(active=False)
    instrument_delete(instrument=Instrument.objects.get(symbol="LTCUSD"))
    assert_summaries_match_the_candles()
    assert {row["symbol"] for row in selectors.newest_candles_by_series()} == {"BTCUSD", "BTCUSDT"}


def test_a_write_that_only_changes_prices_still_dates_the_summary_row(btc_hourly):
    # The row says when candles were last written, counts unchanged or not.
    series = CandleSeries.objects.get(instrument=btc_hourly, timeframe="1h")
    frame = selectors.candles_frame(instrument=btc_hourly, timeframe="1h", limit=3)
    frame["close"] = frame["low"]  # still within the bar, another price

    counts = candles_store(instrument=btc_hourly, timeframe="1h", frame=frame)

    written = CandleSeries.objects.get(pk=series.pk)
    assert (counts.inserted, counts.updated) == (0, 3)
    assert written.count == series.count and written.updated_at > series.updated_at
