"""fetch_candles runs the real ccxt client against a fake exchange: paginated, idempotent, backfilling."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.market import selectors
from apps.market.domain.candle_files import read_candles
from apps.market.models import Candle, Instrument
from tests.fakes.exchange import Fault
from tests.integration.market.conftest import BTC_HOURLY

pytestmark = pytest.mark.django_db
SINCE, UNTIL = "2019-01-01", "2019-03-01"


def _fetch(*extra: str) -> str:
    out = StringIO()
    call_command(
        "fetch_candles",
        "--exchange",
        "binance",
        "--symbol",
        "BTCUSDT",
        "--timeframe",
        "1h",
        *extra,
        stdout=out,
        stderr=StringIO(),
    )
    return out.getvalue()


def test_fetching_a_range_stores_every_final_candle_once(fake_exchange):
    fake_exchange.load_klines("BTCUSDT", "1h", BTC_HOURLY)

    first = _fetch("--since", SINCE, "--until", UNTIL)
    again = _fetch("--since", SINCE, "--until", UNTIL)

    instrument = Instrument.objects.get(symbol="BTCUSDT", exchange="binance")
    stored = selectors.candles_frame(instrument=instrument, timeframe="1h")
    expected = read_candles(BTC_HOURLY).loc["2019-01-01":"2019-02-28 23:00"]
    assert len(stored) == len(expected) == 1416
    assert (stored["close"].to_numpy() == expected["close"].to_numpy()).all()
    assert "1416 inserted" in first
    assert "0 inserted, 0 updated, 1416 unchanged" in again
    assert len(fake_exchange.requests("GET /api/v3/klines")) >= 4  # 1000-bar pages, twice
    assert instrument.ccxt_symbol == "BTC/USDT"
    assert instrument.min_notional is not None


def test_a_gap_left_by_an_import_is_backfilled_from_the_exchange(fake_exchange, tmp_path):
    fake_exchange.load_klines("BTCUSDT", "1h", BTC_HOURLY)
    frame = read_candles(BTC_HOURLY).loc["2019-01-01":"2019-01-10"]
    holed = frame.drop(frame.index[50:60])
    path = tmp_path / "holed.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        + "\n".join(
            f"{int(t.timestamp() * 1000)},{r.open},{r.high},{r.low},{r.close},{r.volume}"
            for t, r in holed.iterrows()
        )
    )
    call_command("import_candles", str(path), "--symbol", "BTCUSDT", "--timeframe", "1h", stdout=StringIO())

    output = _fetch("--since", "2019-01-11", "--until", "2019-01-12")

    instrument = Instrument.objects.get(symbol="BTCUSDT")
    assert "10 backfilled" in output
    assert "0 gap(s)" in output
    assert Candle.objects.filter(instrument=instrument).count() == len(frame) + 24


def test_an_exchange_that_keeps_failing_exits_non_zero_and_stores_nothing(fake_exchange):
    fake_exchange.load_klines("BTCUSDT", "1h", BTC_HOURLY)
    fake_exchange.script("GET /api/v3/klines", *[Fault.server_error(503)] * 5)

    with pytest.raises(CommandError, match=r"TemporaryProviderError.*nothing was stored"):
        _fetch("--since", SINCE, "--until", UNTIL)
    assert Candle.objects.count() == 0


def test_an_unknown_symbol_or_bad_date_exits_non_zero(fake_exchange):
    with pytest.raises(CommandError, match="nothing was fetched"):
        call_command(
            "fetch_candles", "--symbol", "NOPEUSDT", "--timeframe", "1h", "--since", SINCE, stdout=StringIO()
        )
    with pytest.raises(CommandError, match="not a date"):
        call_command(
            "fetch_candles",
            "--symbol",
            "BTCUSDT",
            "--timeframe",
            "1h",
            "--since",
            "yesterday",
            stdout=StringIO(),
        )
    assert Instrument.objects.count() == 0


def test_the_forming_candle_is_never_stored(fake_exchange):
    hour_ms = 3_600_000
    forming = int(datetime.now(UTC).timestamp() * 1000) // hour_ms * hour_ms
    rows = [[forming - k * hour_ms, 100.0, 101.0, 99.0, 100.5, 3.0] for k in range(5, -1, -1)]
    fake_exchange.load_klines("BTCUSDT", "1h", rows)

    _fetch("--since", datetime.fromtimestamp((forming - 5 * hour_ms) / 1000, UTC).isoformat())

    times = list(Candle.objects.order_by("open_time").values_list("open_time", flat=True))
    assert len(times) == 5
    assert times[-1] == datetime.fromtimestamp((forming - hour_ms) / 1000, UTC)
