"""CSV imports refuse a hostile file in one line and change nothing; a good file streams in, whole."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from apps.core import clock
from apps.market.errors import MarketInputError
from apps.market.models import Candle, CandleSeries, Instrument
from apps.market.services.candles import candles_import_file

pytestmark = pytest.mark.django_db

NOW = datetime(2024, 3, 1, 12, 9, tzinfo=UTC)  # nine minutes into the 12:00 hourly candle
START = int(datetime(2024, 2, 20, tzinfo=UTC).timestamp() * 1000)
HOUR = 3_600_000
FORMING = 252  # hours from START to the candle still forming at NOW (2024-03-01 12:00)
HEADER = "timestamp,open,high,low,close,volume"
REPO_ROOT = Path(__file__).resolve().parents[3]


def bar(hour: int, values: str = "10,12,9,11,5") -> str:
    """A CSV row ``hour`` hours after START; the default values are a valid candle."""
    return f"{START + hour * HOUR},{values}"


def write(path: Path, *lines: str) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def snapshot() -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Every row of the three tables an import writes, every column but the automatic timestamps."""
    return (
        list(Instrument.objects.order_by("pk").values_list()),
        list(Candle.objects.order_by("pk").values_list()),
        list(
            CandleSeries.objects.order_by("pk").values_list(
                "instrument", "timeframe", "first_open", "newest_open", "count"
            )
        ),
    )


def run(path: Path, *options: str, symbol: str = "SOLUSDT", timeframe: str = "1h") -> str:
    out = StringIO()
    with clock.replaying(NOW):
        call_command(
            "import_candles", str(path), "--symbol", symbol, "--timeframe", timeframe, *options, stdout=out
        )
    return out.getvalue()


def assert_refused(path: Path, message: str, *options: str, symbol: str = "SOLUSDT") -> None:
    """The command fails with one line matching ``message``, and no row was created or changed."""
    before = snapshot()
    with pytest.raises(CommandError) as refused:
        run(path, *options, symbol=symbol)
    text = str(refused.value)
    assert "\n" not in text
    assert re.search(message, text), text
    assert text.endswith("(nothing was imported)")
    assert snapshot() == before


@pytest.fixture(autouse=True)
def ethusdt(tmp_path: Path) -> Instrument:
    """An instrument with stored candles, so that "nothing changed" covers existing rows too."""
    run(write(tmp_path / "eth.csv", HEADER, bar(0), bar(1), bar(2)), symbol="ETHUSDT")
    return Instrument.objects.get(symbol="ETHUSDT")


# --- refusals: each one line, nothing created or changed ---------------------------------------------


def test_a_candle_beyond_the_forming_one_is_refused(tmp_path):
    path = write(tmp_path / "future.csv", HEADER, bar(FORMING - 1), bar(FORMING), bar(FORMING + 1))
    assert_refused(path, r"future\.csv: candle at 2024-03-01 13:00:00\+00:00 opens in the future")


def test_a_candle_dated_2100_is_refused(tmp_path):
    path = write(tmp_path / "2100.csv", HEADER, bar(0), "4102444800000,10,12,9,11,5")
    assert_refused(path, "candle at 2100-01-01 00:00:00\\+00:00 opens in the future")


def test_a_nan_price_is_refused(tmp_path):
    path = write(tmp_path / "nan.csv", HEADER, bar(0), bar(1, "10,12,9,NaN,5"))
    assert_refused(path, "line 3: a price or the volume is not a finite number")


@pytest.mark.parametrize("infinite", ["inf", "-inf", "1e400", "Infinity"])
def test_an_infinite_price_is_refused(tmp_path, infinite):
    path = write(tmp_path / "inf.csv", HEADER, bar(0, f"10,{infinite},9,11,5"))
    assert_refused(path, "line 2: a price or the volume is not a finite number")


@pytest.mark.parametrize("values", ["0,12,9,11,5", "10,12,-9,11,5", "-0,12,9,11,5"])
def test_a_zero_or_negative_price_is_refused(tmp_path, values):
    path = write(tmp_path / "zero.csv", HEADER, bar(0), bar(1, values))
    assert_refused(path, "line 3: a price is zero or negative")


@pytest.mark.parametrize(
    "values", ["1e300,1e300,1e300,1e300,5", "10,2e12,9,11,5", "1e-13,1e-13,1e-13,1e-13,5"]
)
def test_a_price_outside_the_bounds_is_refused(tmp_path, values):
    path = write(tmp_path / "absurd.csv", HEADER, bar(0, values))
    assert_refused(path, r"line 2: a price is outside 1e-12 \.\. 1e\+12")


def test_a_volume_above_the_bound_is_refused(tmp_path):
    path = write(tmp_path / "volume.csv", HEADER, bar(0, "10,12,9,11,1e19"))
    assert_refused(path, r"line 2: volume is above 1e\+18")


def test_high_below_low_is_refused(tmp_path):
    path = write(tmp_path / "inverted.csv", HEADER, bar(0, "10,9,12,11,5"))
    assert_refused(path, r"line 2: high is below low \(timestamp=\d+, open=10, high=9, low=12")


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ("13,12,9,11,5", "high is below the open or the close"),
        ("10,12,9,8,5", "low is above the open or the close"),
    ],
)
def test_an_open_or_close_outside_low_and_high_is_refused(tmp_path, values, problem):
    path = write(tmp_path / "outside.csv", HEADER, bar(0), bar(1, values))
    assert_refused(path, f"line 3: {problem}")


def test_a_negative_volume_is_refused(tmp_path):
    path = write(tmp_path / "volume.csv", HEADER, bar(0, "10,12,9,11,-1"), bar(1, "10,12,9,11,-2"))
    assert_refused(path, r"line 2: volume is negative \(.*\), and 1 more")


def test_an_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert_refused(
        path, "empty.csv: the file is empty; expected the header timestamp,open,high,low,close,volume"
    )


def test_a_header_only_file_is_refused_and_leaves_no_instrument(tmp_path):
    path = write(tmp_path / "header.csv", HEADER, "")
    assert_refused(path, "header.csv: the file has no candles")
    assert not Instrument.objects.filter(symbol="SOLUSDT").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            (HEADER + "\n" + bar(0) + "\n" + bar(1) + ",é\n").encode("latin-1"),
            "line 3: the byte 0xe9 is not UTF-8",
        ),
        ((HEADER + "\n" + bar(0) + "\n").encode("utf-16"), "line 1: the byte 0xff is not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "line 1: the byte 0x89 is not UTF-8"),
    ],
)
def test_a_file_that_is_not_utf8_is_refused(tmp_path, content, message):
    path = tmp_path / "latin.csv"
    path.write_bytes(content)
    assert_refused(path, f"latin.csv: {message} text; save the file as UTF-8")


def test_a_nul_byte_is_refused(tmp_path):
    path = tmp_path / "nul.csv"
    path.write_bytes(f"{HEADER}\n{bar(0)}\n{bar(1)}\x00\n".encode())
    assert_refused(path, "line 3: a NUL byte: this is not a text file")


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("timestamp,open,high,low,close", "volume"),
        ("date,open,high,low,close,volume", "timestamp"),
        ("timestamp;open;high;low;close;volume", "timestamp, open, high, low, close, volume"),
    ],
)
def test_a_missing_column_is_refused(tmp_path, header, missing):
    path = write(tmp_path / "columns.csv", header, bar(0))
    assert_refused(path, f"line 1: missing column\\(s\\) {missing}: the header must name")


@pytest.mark.parametrize(
    "stamp", ["2024-02-20 00:00:00", "yesterday", str(START // 1000), f"{START}.5", "", "1e400"]
)
def test_an_unparsable_date_is_refused(tmp_path, stamp):
    path = write(tmp_path / "dates.csv", HEADER, bar(0), f"{stamp},10,12,9,11,5")
    assert_refused(path, "line 3: timestamp .* is not an epoch time in whole milliseconds")


def test_a_repeated_time_with_other_values_is_refused(tmp_path):
    path = write(tmp_path / "repeat.csv", HEADER, bar(0), bar(1), bar(1, "10,12,9,11.5,5"))
    assert_refused(path, r"line 4: the time 2024-02-20 01:00:00\+00:00 repeats line 3's with other values")


def test_rows_out_of_time_order_are_refused(tmp_path):
    path = write(tmp_path / "order.csv", HEADER, bar(1), bar(0))
    assert_refused(path, "line 3: the time is earlier than the previous candle's .* must be in time order")


def test_a_cell_that_is_not_a_number_is_refused(tmp_path):
    path = write(tmp_path / "cell.csv", HEADER, bar(0), bar(1, "10,12,9,n/a,5"))
    assert_refused(path, "line 3: close 'n/a' is not a number")


def test_a_row_with_an_extra_field_is_refused(tmp_path):
    path = write(tmp_path / "fields.csv", HEADER, bar(0), bar(1) + ",7")
    assert_refused(path, r"line 3: expected 6 fields \(timestamp,open,high,low,close,volume\), got 7")


def test_a_file_whose_only_candle_is_forming_is_refused_and_leaves_no_instrument(tmp_path):
    path = write(tmp_path / "forming.csv", HEADER, bar(FORMING))
    assert_refused(path, "forming.csv: nothing to import: its only candle is still forming")


def test_a_bad_row_at_the_end_of_a_long_file_undoes_every_chunk_before_it(tmp_path, ethusdt):
    # Existing candles corrected, new ones added, over many chunks; then one bad row on the last line.
    rows = [bar(hour, "10,12,9,11.5,5") for hour in range(200)] + [bar(200, "10,12,9,11,-5")]
    path = write(tmp_path / "late.csv", HEADER, *rows)
    before = snapshot()

    with (
        clock.replaying(NOW),
        pytest.raises(MarketInputError, match=r"late\.csv: line 202: volume is negative"),
    ):
        candles_import_file(path=path, symbol="ETHUSDT", timeframe="1h", exchange="binance", chunk_bytes=256)

    assert snapshot() == before


def test_an_existing_instrument_gains_no_timeframe_from_a_refused_file(tmp_path, ethusdt):
    path = write(tmp_path / "daily.csv", HEADER, bar(0), bar(24, "10,12,9,n/a,5"))
    assert_refused(path, "line 3: close 'n/a' is not a number", "--timeframe", "1d", symbol="ETHUSDT")
    assert Instrument.objects.get(pk=ethusdt.pk).timeframes == ["1h"]


def test_the_command_exits_with_status_1_and_one_line_on_stderr(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(f"{HEADER}\n{bar(0)},é\n".encode("latin-1"))
    # The refusal comes before any query, so a scratch SQLite file is database enough.
    env = {**os.environ, "VAR_DIR": str(tmp_path), "LOG_LEVEL": "WARNING"}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "import_candles",
            str(path),
            "--symbol",
            "SOLUSDT",
            "--timeframe",
            "1h",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "CommandError: latin.csv: line 2: the byte 0xe9 is not UTF-8 text; save the file as UTF-8 "
        "(nothing was imported)"
    ]


# --- symbols ----------------------------------------------------------------------------------------


def test_a_symbol_that_cannot_be_split_is_refused_naming_the_option(tmp_path):
    path = write(tmp_path / "goog.csv", HEADER, bar(0))
    assert_refused(
        path, "cannot tell base and quote currencies apart in 'GOOG'; pass --ccxt-symbol", symbol="GOOG"
    )


def test_a_stock_imports_with_its_ccxt_symbol(tmp_path):
    path = write(tmp_path / "goog.csv", HEADER, *(bar(24 * day) for day in range(5)))
    output = run(
        path, "--ccxt-symbol", "GOOG/USD", "--exchange", "nasdaq", "--timeframe", "1d", symbol="GOOG"
    )

    goog = Instrument.objects.get(symbol="GOOG")
    assert (goog.exchange, goog.ccxt_symbol, goog.base, goog.quote) == ("nasdaq", "GOOG/USD", "GOOG", "USD")
    assert "GOOG 1d: 5 inserted" in output
    assert Candle.objects.filter(instrument=goog, timeframe="1d").count() == 5


@pytest.mark.parametrize(
    "ccxt_symbol", ["GOOG", "GOOG/", "/USD", "GOOG/USD/X", "GO OG/USD", "A" * 17 + "/USD"]
)
def test_a_malformed_ccxt_symbol_is_refused(tmp_path, ccxt_symbol):
    path = write(tmp_path / "goog.csv", HEADER, bar(0))
    assert_refused(
        path,
        "a ccxt symbol is BASE/QUOTE such as BTC/USDT or GOOG/USD",
        "--ccxt-symbol",
        ccxt_symbol,
        symbol="GOOG",
    )


def test_a_ccxt_symbol_that_contradicts_the_existing_instrument_is_refused(tmp_path):
    path = write(tmp_path / "eth.csv", HEADER, bar(3))
    assert_refused(
        path, "ETHUSDT on binance is ETH/USDT, not ETH/USDC", "--ccxt-symbol", "ETH/USDC", symbol="ETHUSDT"
    )


def test_a_symbol_longer_than_its_column_is_refused(tmp_path):
    path = write(tmp_path / "long.csv", HEADER, bar(0))
    assert_refused(path, "a symbol must be 1 to 32 printable characters", symbol="X" * 40 + "USDT")


# --- streaming, idempotence -----------------------------------------------------------------------


def random_walk_rows(bars: int, seed: int = 5) -> list[str]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, bars)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, bars))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, bars))
    volume = rng.gamma(2.0, 5.0, bars)
    return [
        bar(hour, f"{o!r},{h!r},{lo!r},{c!r},{v!r}")
        for hour, (o, h, lo, c, v) in enumerate(np.column_stack((open_, high, low, close, volume)).tolist())
    ]


def stored(symbol: str) -> list[tuple]:
    return list(
        Candle.objects.filter(instrument__symbol=symbol)
        .order_by("open_time")
        .values_list("timeframe", "open_time", "open", "high", "low", "close", "volume")
    )


def series(symbol: str) -> tuple:
    return (
        CandleSeries.objects.filter(instrument__symbol=symbol)
        .values_list("timeframe", "first_open", "newest_open", "count")
        .get()
    )


def test_a_file_imported_in_many_chunks_is_stored_as_in_one(tmp_path):
    rows = random_walk_rows(FORMING)
    # Blank lines, a quoted row and CRLF line ends send some chunks through the exact reader.
    rows[10], rows[20] = rows[10] + "\r", '"' + rows[20].replace(",", '","') + '"'
    path = write(tmp_path / "walk.csv", HEADER, *rows[:100], "", *rows[100:])

    with clock.replaying(NOW):
        chunked = candles_import_file(
            path=path, symbol="SOLUSDT", timeframe="1h", exchange="binance", chunk_bytes=300
        )
        whole = candles_import_file(path=path, symbol="ADAUSDT", timeframe="1h", exchange="binance")

    assert chunked.counts == whole.counts
    assert chunked.counts.inserted == FORMING
    assert stored("SOLUSDT") == stored("ADAUSDT")
    assert series("SOLUSDT") == series("ADAUSDT")
    assert series("SOLUSDT")[3] == FORMING


def test_importing_a_file_again_stores_nothing_twice_and_reports_it_unchanged(tmp_path):
    path = write(tmp_path / "walk.csv", HEADER, *random_walk_rows(150))
    first = run(path)
    rows = stored("SOLUSDT")

    with clock.replaying(NOW):
        again = candles_import_file(
            path=path, symbol="SOLUSDT", timeframe="1h", exchange="binance", chunk_bytes=200
        )

    assert "150 inserted, 0 updated, 0 unchanged" in first
    assert "0 inserted, 0 updated, 150 unchanged" in again.describe()
    assert stored("SOLUSDT") == rows
    assert series("SOLUSDT")[3] == 150


def test_a_row_repeated_exactly_is_stored_once_and_reported(tmp_path):
    path = write(tmp_path / "pages.csv", HEADER, bar(0), bar(1), bar(1), bar(2))
    output = run(path)

    assert "3 inserted" in output
    assert "1 repeated row(s) skipped" in output
    assert len(stored("SOLUSDT")) == 3


def test_the_candle_still_forming_is_left_out(tmp_path):
    path = write(tmp_path / "live.csv", HEADER, bar(FORMING - 2), bar(FORMING - 1), bar(FORMING))
    output = run(path)

    assert "2 inserted" in output
    assert series("SOLUSDT")[2] == datetime(2024, 3, 1, 11, tzinfo=UTC)


def test_gaps_are_reported_from_the_stored_series(tmp_path):
    run(write(tmp_path / "a.csv", HEADER, bar(0), bar(1), bar(5)))
    output = run(write(tmp_path / "b.csv", HEADER, bar(9), bar(10)))

    # 2..4 and 6..8 are missing in the stored series 0, 1, 5, 9, 10
    assert "2 gap(s), 6 candle(s) missing" in output
