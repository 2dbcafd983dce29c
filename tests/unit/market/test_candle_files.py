"""Candle files streamed a chunk at a time: the same candles and the same refusals whatever the chunking."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.market.domain import candle_files, candles
from apps.market.domain.candle_files import CandleFile, parse_csv, read_candles
from apps.market.domain.candles import CandleError

HEADER = "timestamp,open,high,low,close,volume"
T0 = 1_498_906_800_000  # 2017-07-01 11:00 UTC
HOUR = 3_600_000
CHUNKS = [1, 7, 64, 1000, 2 * 1024 * 1024]


def row(hour: int, values: str = "1,2,0.5,1.5,3") -> str:
    return f"{T0 + hour * HOUR},{values}"


def walk(bars: int, seed: int = 11) -> list[str]:
    """Rows of a random walk, its floats written in full (``repr``), as exports of computed prices are."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, bars)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, bars))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, bars))
    table = np.column_stack((open_, high, low, close, rng.gamma(2.0, 5.0, bars))).tolist()
    return [row(hour, ",".join(map(repr, values))) for hour, values in enumerate(table)]


def frames(path: Path, chunk_bytes: int) -> tuple[pd.DataFrame, int]:
    """The file's candles read in chunks of ``chunk_bytes``, joined, with the repeats skipped."""
    file = CandleFile(path, chunk_bytes=chunk_bytes)
    chunks = list(file)
    return (pd.concat(chunks) if chunks else read_candles(path).iloc[:0]), file.repeats


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode())
    return path


def python_read(lines: list[str]) -> pd.DataFrame:
    """The candles of CSV rows read by Python's own float(), the reference for every reader."""
    table = np.array([[float(cell) for cell in line.split(",")] for line in lines])
    index = pd.DatetimeIndex(
        pd.to_datetime(table[:, 0].astype(np.int64), unit="ms", utc=True), name="open_time"
    )
    return pd.DataFrame(table[:, 1:], index=index, columns=["open", "high", "low", "close", "volume"])


@pytest.mark.parametrize("chunk_bytes", CHUNKS)
def test_every_chunking_reads_the_same_candles_with_the_fast_reader(tmp_path, monkeypatch, chunk_bytes):
    lines = walk(300)
    path = write(tmp_path / "walk.csv", HEADER + "\n" + "\n".join(lines) + "\n")

    def exact_reader_used(*args: object) -> None:
        raise AssertionError("a plain file must not need the csv-module reader")

    monkeypatch.setattr(candle_files, "_exact_rows", exact_reader_used)
    found, repeats = frames(path, chunk_bytes)

    pd.testing.assert_frame_equal(found, python_read(lines), check_exact=True, check_index_type=False)
    assert repeats == 0


def test_the_fast_and_the_exact_reader_agree(tmp_path):
    lines = walk(500)
    plain = write(tmp_path / "plain.csv", HEADER + "\n" + "\n".join(lines) + "\n")
    # Quotes send every chunk to the csv-module reader.
    quoted = write(
        tmp_path / "quoted.csv",
        HEADER + "\n" + "\n".join(f'"{line}"'.replace(",", '","') for line in lines) + "\n",
    )

    pd.testing.assert_frame_equal(read_candles(quoted), read_candles(plain), check_exact=True)


@pytest.mark.parametrize("chunk_bytes", CHUNKS)
def test_layout_variations_read_alike(tmp_path, chunk_bytes):
    expected = parse_csv(f"{HEADER}\n{row(0)}\n{row(1)}\n{row(2)}\n")
    variants = {
        "crlf_bom": b"\xef\xbb\xbf" + f"{HEADER}\r\n{row(0)}\r\n{row(1)}\r\n{row(2)}\r\n".encode(),
        "no_final_newline": f"{HEADER}\n{row(0)}\n{row(1)}\n{row(2)}".encode(),
        "blank_lines": f"{HEADER}\n\n{row(0)}\n   \n{row(1)}\n,,,,,\n{row(2)}\n\n\n".encode(),
        "reordered_with_extra_column": (
            "Volume, Close ,timestamp,trades,open,high,low\n"
            + "\n".join(f"3,1.5,{T0 + hour * HOUR},77,1,2,0.5" for hour in range(3))
            + "\n"
        ).encode(),
    }
    for name, content in variants.items():
        path = tmp_path / f"{name}.csv"
        path.write_bytes(content)
        pd.testing.assert_frame_equal(frames(path, chunk_bytes)[0], expected, check_exact=True, obj=name)


@pytest.mark.parametrize("chunk_bytes", CHUNKS)
def test_an_exact_repeat_is_skipped_and_counted_across_chunks(tmp_path, chunk_bytes):
    path = write(tmp_path / "pages.csv", "\n".join([HEADER, row(0), row(1), row(1), row(1), row(2)]) + "\n")

    found, repeats = frames(path, chunk_bytes)

    assert len(found) == 3
    assert repeats == 2


@pytest.mark.parametrize("chunk_bytes", CHUNKS)
def test_problems_name_their_line_whatever_the_chunk(tmp_path, chunk_bytes):
    head = [row(hour) for hour in range(40)]  # lines 2 to 41; the faulty row is line 42
    cases = {
        "value": ([*head, row(40, "1,2,0.5,1.5,-3")], "line 42: volume is negative"),
        "cell": ([*head, row(40, "1,2,0.5,x,3")], "line 42: close 'x' is not a number"),
        "repeat": ([*head, row(39, "1,2,0.5,1.4,3")], "line 42: the time .* repeats line 41's"),
        "earlier": ([*head, row(5)], r"line 42: the time is earlier .* on line 41\)"),
        "fields": ([*head, row(40) + ","], "line 42: expected 6 fields"),
        "utf8": ([*head, row(40) + "\udcff"], "line 42: the byte 0xff is not UTF-8 text"),
    }
    for name, (rows, message) in cases.items():
        path = tmp_path / f"{name}.csv"
        path.write_bytes(("\n".join([HEADER, *rows]) + "\n").encode("utf-8", "surrogateescape"))
        with pytest.raises(CandleError, match=f"{name}.csv: {message}"):
            list(CandleFile(path, chunk_bytes=chunk_bytes))


def test_a_carriage_return_inside_a_line_is_refused(tmp_path):
    path = write(tmp_path / "cr.csv", f"{HEADER}\n{row(0)}\r{row(1)}\n")
    with pytest.raises(CandleError, match="line 2: a carriage return inside the line"):
        read_candles(path)


def test_a_line_without_end_is_refused_without_reading_it_whole(tmp_path):
    path = tmp_path / "endless.csv"
    path.write_bytes(HEADER.encode() + b"\n" + b"1" * (candle_files.MAX_LINE_BYTES + 10))
    with pytest.raises(CandleError, match=r"line 2 is longer than 65536 bytes"):
        list(CandleFile(path, chunk_bytes=1024))


def test_a_header_only_file_has_no_candles(tmp_path):
    path = write(tmp_path / "header.csv", HEADER + "\n")
    assert list(CandleFile(path)) == []
    assert read_candles(path).empty


def test_a_header_naming_a_column_twice_is_refused(tmp_path):
    path = write(tmp_path / "twice.csv", HEADER + ",close\n")
    with pytest.raises(CandleError, match="line 1: the header names close more than once"):
        read_candles(path)


# --- JSON -------------------------------------------------------------------------------------------


def test_json_is_checked_like_csv(tmp_path):
    path = write(
        tmp_path / "rows.json",
        json.dumps([[T0, 1, 2, 0.5, 1.5, 3], [T0, 1, 2, 0.5, 1.5, 3], [T0 + HOUR, 1e13, 2e13, 1, 1, 1]]),
    )
    with pytest.raises(CandleError, match=r"rows\.json: candle 3: a price is outside 1e-12 \.\. 1e\+12"):
        read_candles(path)


def test_json_repeats_are_skipped_too(tmp_path):
    path = write(tmp_path / "rows.json", json.dumps([[T0, 1, 2, 0.5, 1.5, 3], [T0, 1, 2, 0.5, 1.5, 3]]))
    file = CandleFile(path)
    assert sum(len(chunk) for chunk in file) == 1
    assert file.repeats == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "invalid JSON: nested too deeply"),
        (f"[[{T0}, {10**400}, 2, 0.5, 1.5, 3]]", "candle 1: open is too large a number"),
        (b"[\xff]", "line 1: the byte 0xff is not UTF-8 text"),
    ],
)
def test_hostile_json_is_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "rows.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(CandleError, match=message):
        read_candles(path)


def test_json_larger_than_its_bound_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(candle_files, "MAX_JSON_BYTES", 100)
    path = write(tmp_path / "rows.json", json.dumps([[T0 + i * HOUR, 1, 2, 0.5, 1.5, 3] for i in range(10)]))
    with pytest.raises(CandleError, match="convert it to CSV, which is streamed"):
        read_candles(path)


# --- the fast reader reads numbers exactly as Python does -------------------------------------------


def python_volume(cell: str) -> float | None:
    """The volume a cell holds by the definition (Python's float() of ASCII text), None if invalid."""
    text = cell.strip()
    try:
        value = float(text) if text.isascii() and "_" not in text else None
    except ValueError:
        return None
    return value if value is not None and 0 <= value <= candles.MAX_VOLUME else None


@settings(max_examples=400, deadline=None)
@given(
    cell=st.one_of(
        st.text(alphabet="0123456789+-.eE TtrueFalsnIifx_", max_size=8),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
    )
)
def test_a_cell_is_read_as_python_reads_it_or_refused(cell):
    text = f"{HEADER}\n{row(0, f'1,2,0.5,1.5,{cell}')}\n"
    expected = python_volume(cell)
    if expected is None:
        with pytest.raises(CandleError, match="line 2: "):
            parse_csv(text)
    else:
        assert parse_csv(text)["volume"].iloc[0] == expected
