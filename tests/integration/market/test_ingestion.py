"""Candle imports are idempotent upserts; bad input exits non-zero and writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from apps.market import selectors
from apps.market.domain.candle_files import read_candles
from apps.market.models import Candle, Instrument
from apps.market.services.candles import candles_import_file, candles_resample
from tests.fakes.http import closed_port_url
from tests.integration.market.conftest import BTC_HOURLY

pytestmark = pytest.mark.django_db


def _write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    return path


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_importing_the_same_file_twice_changes_nothing():
    first = _run(
        "import_candles", str(BTC_HOURLY), "--symbol", "BTCUSD", "--timeframe", "1h", "--exchange", "coinbase"
    )
    rows = list(
        Candle.objects.order_by("open_time").values_list(
            "open_time", "open", "high", "low", "close", "volume"
        )
    )
    second = _run(
        "import_candles", str(BTC_HOURLY), "--symbol", "BTCUSD", "--timeframe", "1h", "--exchange", "coinbase"
    )

    assert "20111 inserted, 0 updated, 0 unchanged" in first
    assert "0 inserted, 0 updated, 20111 unchanged" in second
    assert rows == list(
        Candle.objects.order_by("open_time").values_list(
            "open_time", "open", "high", "low", "close", "volume"
        )
    )
    assert Instrument.objects.get().ccxt_symbol == "BTC/USD"


def test_a_corrected_bar_is_updated_and_new_bars_are_added(tmp_path):
    start = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
    bars = [f"{start + i * 3_600_000},10,12,9,11,5" for i in range(3)]
    candles_import_file(
        path=_write_csv(tmp_path / "a.csv", bars), symbol="ETHUSDT", timeframe="1h", exchange="binance"
    )

    corrected = [
        bars[0],
        f"{start + 3_600_000},10,12,9,11.5,5",
        bars[2],
        f"{start + 3 * 3_600_000},11,13,10,12,6",
    ]
    report = candles_import_file(
        path=_write_csv(tmp_path / "b.csv", corrected), symbol="ETHUSDT", timeframe="1h", exchange="binance"
    )

    assert (report.counts.inserted, report.counts.updated, report.counts.unchanged) == (1, 1, 2)
    assert Candle.objects.count() == 4
    assert Candle.objects.order_by("open_time")[1].close == 11.5


def test_gaps_are_reported(tmp_path):
    start = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
    bars = [f"{start + i * 3_600_000},10,12,9,11,5" for i in (0, 1, 4, 5)]
    report = candles_import_file(
        path=_write_csv(tmp_path / "gap.csv", bars), symbol="ETHUSDT", timeframe="1h", exchange="binance"
    )

    assert [(gap.start, gap.missing) for gap in report.gaps] == [
        (pd.Timestamp(start + 2 * 3_600_000, unit="ms", tz="UTC"), 2)
    ]
    assert "1 gap(s), 2 candle(s) missing" in report.describe()


def test_a_malformed_file_exits_non_zero_and_writes_nothing(tmp_path):
    start = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
    path = _write_csv(tmp_path / "bad.csv", [f"{start},10,12,9,11,5", f"{start + 3_600_000},10,12,9,n/a,5"])

    with pytest.raises(CommandError, match=r"line 3.*close.*nothing was imported"):
        _run("import_candles", str(path), "--symbol", "ETHUSDT", "--timeframe", "1h")

    assert Candle.objects.count() == 0
    assert Instrument.objects.count() == 0


def test_an_impossible_candle_is_refused(tmp_path):
    start = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
    path = _write_csv(tmp_path / "impossible.csv", [f"{start},10,9,8,11,5"])  # high below close

    with pytest.raises(CommandError, match="nothing was imported"):
        _run("import_candles", str(path), "--symbol", "ETHUSDT", "--timeframe", "1h")
    assert Candle.objects.count() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/no/such/file.csv", "--symbol", "BTCUSDT", "--timeframe", "1h"], "no such file"),
        ([str(BTC_HOURLY), "--symbol", "BTCUSDT", "--timeframe", "7h"], "unknown timeframe '7h'"),
        ([str(BTC_HOURLY), "--symbol", "BTCUSDT", "--timeframe", "1d"], "does not open on a 1d boundary"),
    ],
)
def test_bad_arguments_exit_non_zero_with_a_clear_message(args, message):
    with pytest.raises(CommandError, match=message):
        _run("import_candles", *args)
    assert Candle.objects.count() == 0


def test_higher_timeframes_are_resampled_from_stored_candles(btc_hourly):
    report = candles_resample(instrument=btc_hourly, from_timeframe="1h", to_timeframe="4h")

    hourly = selectors.candles_frame(instrument=btc_hourly, timeframe="1h")
    four_hourly = selectors.candles_frame(instrument=btc_hourly, timeframe="4h")
    first = four_hourly.index[0]
    bucket = hourly.loc[first : first + pd.Timedelta(hours=3)]
    assert report.counts.inserted == len(four_hourly) > 5000
    assert four_hourly.iloc[0]["high"] == bucket["high"].max()
    assert four_hourly.iloc[0]["volume"] == pytest.approx(bucket["volume"].sum())
    assert "4h" in Instrument.objects.get(pk=btc_hourly.pk).timeframes


def test_the_demo_data_loads_twice_without_duplicates():
    _run("load_demo_data")
    count = Candle.objects.count()
    second = _run("load_demo_data")

    assert count == 20111 + 1770 + 788 + 925
    assert Candle.objects.count() == count
    assert second.count("0 inserted, 0 updated") == 4


def test_online_the_demo_data_adds_the_brief_s_binance_markets_and_then_only_what_is_new(
    fake_exchange, settings
):
    fake_exchange.load_klines("BTCUSDT", "1h", BTC_HOURLY)
    fake_exchange.load_klines("ETHUSDT", "1h", BTC_HOURLY)
    settings.DEMO_DATA_FETCH_SINCE = datetime(2019, 10, 1, tzinfo=UTC)

    first = _run("load_demo_data")
    pages = len(fake_exchange.requests("GET /api/v3/klines"))
    second = _run("load_demo_data")

    recent = len(read_candles(BTC_HOURLY).loc["2019-10-01":])
    for symbol in ("BTCUSDT", "ETHUSDT"):
        instrument = Instrument.objects.get(symbol=symbol, exchange="binance")
        stored = selectors.candles_frame(instrument=instrument, timeframe="1h")
        assert stored.index[0] == pd.Timestamp("2019-10-01", tz="UTC")
        assert stored.index[-1] == read_candles(BTC_HOURLY).index[-1]
        assert len(stored) == recent
    assert first.count("[Binance]") == 2 and first.count(f"{recent} inserted") == 2
    assert second.count("[Binance]") == 2 and second.count("0 inserted, 0 updated") == 6
    # The second run asked only for what follows the newest stored candle.
    asked = [request.params["startTime"] for request in fake_exchange.requests("GET /api/v3/klines")[pages:]]
    assert asked and min(int(ms) for ms in asked) > int(
        pd.Timestamp("2019-10-17", tz="UTC").timestamp() * 1000
    )


def test_offline_the_demo_data_says_so_in_one_line_and_loads_the_shipped_history(settings):
    settings.CCXT_URLS_OVERRIDE = {"binance": closed_port_url()}
    settings.DEMO_DATA_FETCH_SINCE = datetime(2023, 1, 1, tzinfo=UTC)

    output = _run("load_demo_data")

    offline = [line for line in output.splitlines() if line.startswith("Offline")]
    assert len(offline) == 1 and "shipped history is loaded" in offline[0]
    assert Candle.objects.count() == 20111 + 1770 + 788 + 925
    assert not Instrument.objects.filter(exchange="binance").exists()


def test_the_offline_flag_fetches_nothing(fake_exchange, settings):
    settings.DEMO_DATA_FETCH_SINCE = datetime(2019, 10, 1, tzinfo=UTC)

    output = _run("load_demo_data", "--offline")

    assert "not fetched (--offline)" in output
    assert fake_exchange.requests("GET /api/v3/klines") == []


def test_deleting_an_instrument_deletes_its_candles(btc_hourly):
    # The candle table has no database-level foreign key (bulk imports are 2x faster without one):
    # the cascade is Django's, and this proves it still happens.
    btc_hourly.delete()
    assert Candle.objects.count() == 0
