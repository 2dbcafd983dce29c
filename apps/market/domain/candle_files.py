"""Candle files: the bundled CSV layout and ccxt's JSON rows, read a chunk at a time and refused
with the line and the reason when they are not candles.

**Files** come in two layouts: the CSV of the bundled data (a header naming ``timestamp, open,
high, low, close, volume`` in any order, other columns ignored; timestamp = open time in epoch
milliseconds) and ccxt's ``fetch_ohlcv`` rows as a JSON array ``[[timestamp_ms, open, high, low,
close, volume], ...]``. :class:`CandleFile` reads either and hands out candle frames a chunk at a
time: a CSV file is streamed (memory is bounded by :data:`CSV_CHUNK_BYTES` whatever the file's
size), a JSON file is read whole and so is limited to :data:`MAX_JSON_BYTES`. Both refuse, naming
the line (CSV) or the candle (JSON) and the reason: text that is not UTF-8 or has a NUL byte, a
missing header or column, a cell that is not a number, a timestamp that is not epoch milliseconds
from 1973 to 5138, a candle outside the bounds above or impossible (high below low, open or close
outside them), rows out of time order. A row that repeats the previous one exactly (the page
boundary of a download) is skipped and counted; a repeated time with other values is refused.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from apps.market.domain.candles import COLUMNS, CandleError, candle_frame, value_problems

CSV_HEADER = ("timestamp", *COLUMNS)
# A CSV file is parsed this many bytes at a time (about 20k candles of a typical export): parsing
# takes about ten times the chunk's size in memory (26 MB, measured), and larger chunks are no faster.
CSV_CHUNK_BYTES = 2 * 1024 * 1024
# A candle line is about 100 bytes; a longer line is not a candle file, and the bound keeps a file
# without newlines from being read into memory whole.
MAX_LINE_BYTES = 64 * 1024
# JSON has to be parsed whole: 64 MiB is about 600k candles of ccxt's rows. Larger files: use CSV.
MAX_JSON_BYTES = 64 * 1024 * 1024

# Epoch milliseconds from 1973 to 5138: a seconds timestamp (~1.7e9) or microseconds (~1.7e15) is
# out of range, which catches the usual unit mix-up.
_MS_RANGE = (1e11, 1e14)

_BOM = b"\xef\xbb\xbf"
_NEWLINE, _CARRIAGE_RETURN, _COMMA = ord("\n"), ord("\r"), ord(",")
# The bytes of a plain block: pandas' C reader agrees with float() on every number written with
# them, and only on those (it reads "True" as 1 and "8e 8" as 8e8).
_PLAIN_BYTES = np.zeros(256, dtype=np.bool_)
_PLAIN_BYTES[list(b"0123456789+-.eE,\r\n")] = True
_SHOWN_CHARS = 60  # of a cell or header quoted back in a message, so a hostile one stays short


class CandleFile:
    """The candles of a ``.csv`` or ``.json`` file, handed out as candle frames a chunk at a time.

    Iterating reads the file from the start and validates it as it goes (see the module docstring):
    the first problem raises CandleError naming the file, the line or candle, and the fault, so a
    caller that stores chunks as they come must be ready to undo them. Together the frames form one
    candle frame: open times increase strictly across chunks too. ``repeats`` counts the rows
    skipped so far for repeating the previous row exactly. OSError (an unreadable file) passes through.
    """

    def __init__(self, path: str | Path, *, chunk_bytes: int = CSV_CHUNK_BYTES) -> None:
        self.path = Path(path)
        self.chunk_bytes = chunk_bytes
        self._kind = self.path.suffix.lower()
        if self._kind not in (".csv", ".json"):
            raise CandleError(f"{self.path.name}: unknown candle file type; expected one of .csv, .json")
        self._rows = _Rows("line" if self._kind == ".csv" else "candle")

    @property
    def repeats(self) -> int:
        return self._rows.repeats

    def __iter__(self) -> Iterator[pd.DataFrame]:
        self._rows = _Rows(self._rows.place)
        try:
            with self.path.open("rb") as source:
                if self._kind == ".csv":
                    yield from _csv_chunks(source, self.chunk_bytes, self._rows)
                else:
                    yield from _json_chunks(source, self._rows)
        except CandleError as error:
            raise CandleError(f"{self.path.name}: {error}") from None


def read_candles(path: str | Path) -> pd.DataFrame:
    """Every candle of a ``.csv`` or ``.json`` file as one candle frame (empty when it has none)."""
    return _concat(list(CandleFile(path)))


def parse_csv(text: str) -> pd.DataFrame:
    """Parse CSV text: a header naming ``timestamp,open,high,low,close,volume`` (epoch ms open times).

    Blank lines are ignored. Errors name the line: ``line 7: close 'n/a' is not a number``.
    """
    return _concat(list(_csv_chunks(io.BytesIO(text.encode("utf-8")), CSV_CHUNK_BYTES, _Rows("line"))))


def parse_json(text: str) -> pd.DataFrame:
    """Parse a JSON array of ``[timestamp_ms, open, high, low, close, volume]`` rows (ccxt's OHLCV)."""
    return _jsoncandle_frame(text, _Rows("candle"))


def candles_from_rows(rows: Sequence[Sequence[float]]) -> pd.DataFrame:
    """A candle frame from ccxt ``fetch_ohlcv`` rows ``[[timestamp_ms, o, h, l, c, v], ...]``.

    Errors name the 1-based candle: ``candle 3: expected 6 values [timestamp, ...], got 5``.
    """
    return _rowscandle_frame(rows, _Rows("candle"))


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        return candle_frame(np.empty(0, dtype=np.int64), np.empty((0, len(COLUMNS))))
    return frames[0] if len(frames) == 1 else pd.concat(frames)


# CSV: the header, then blocks of whole lines; each block is parsed by pandas' C reader when it is
# plain (the usual case, and the fast one) and by the csv module otherwise, which is exact about
# every cell and names the line of a problem. Either way the rows go through the same checks.


def _csv_chunks(source: BinaryIO, chunk_bytes: int, rows: _Rows) -> Iterator[pd.DataFrame]:
    header = _csv_header(source)
    for block, first_line in _blocks(source, chunk_bytes):
        parsed = _fast_rows(block, header)
        if parsed is None:
            table, lines = _exact_rows(block, first_line, header)
        else:
            table, lines = parsed[0], first_line + parsed[1]
        times, values = rows.check(table, lines)
        if len(times):
            yield candle_frame(times, values)


def _csv_header(source: BinaryIO) -> list[str]:
    """The header's column names, lower case; the six of :data:`CSV_HEADER` must be among them."""
    raw = source.readline(MAX_LINE_BYTES + 1)
    if not raw:
        raise CandleError(
            f"the file is empty; expected the header {','.join(CSV_HEADER)} and a candle a line"
        )
    if len(raw) > MAX_LINE_BYTES:
        raise CandleError(f"line 1 is longer than {MAX_LINE_BYTES} bytes: this is not a candle file")
    raw = raw.removeprefix(_BOM)
    _check_text(raw, 1)
    text = raw.decode("utf-8").rstrip("\r\n")
    try:
        names = [cell.strip().lower() for cell in next(csv.reader([text]), [])]
    except csv.Error as error:
        raise CandleError(f"line 1: the header is not a CSV line ({error})") from None
    missing = [name for name in CSV_HEADER if name not in names]
    if missing:
        raise CandleError(
            f"line 1: missing column(s) {', '.join(missing)}: the header must name "
            f"{','.join(CSV_HEADER)} (in any order), got {_clip(text)!r}"
        )
    twice = [name for name in CSV_HEADER if names.count(name) > 1]
    if twice:
        raise CandleError(f"line 1: the header names {', '.join(twice)} more than once")
    return names


def _blocks(source: BinaryIO, chunk_bytes: int) -> Iterator[tuple[bytes, int]]:
    """The rest of the file in blocks of whole lines, each ending with a newline, with the number of
    its first line; text that is not UTF-8 or has a NUL byte is refused with its line."""
    pending, line = b"", 2
    while True:
        data = source.read(chunk_bytes)
        if not data and not pending:
            return
        pending += data
        cut = pending.rfind(b"\n") + 1 if data else len(pending)
        if cut == 0:  # no whole line yet: read on, within bounds
            if len(pending) > MAX_LINE_BYTES:
                raise CandleError(
                    f"line {line} is longer than {MAX_LINE_BYTES} bytes: this is not a candle file"
                )
            continue
        block, pending = pending[:cut], pending[cut:]
        if not block.endswith(b"\n"):  # the last line of a file that does not end with a newline
            block += b"\n"
        _check_text(block, line)
        yield block, line
        line += block.count(b"\n")
        if len(pending) > MAX_LINE_BYTES:
            raise CandleError(f"line {line} is longer than {MAX_LINE_BYTES} bytes: this is not a candle file")


def _check_text(raw: bytes, first_line: int) -> None:
    """Refuse a NUL byte or bytes that are not UTF-8, naming the line of the first one."""
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as error:
            line = first_line + raw.count(b"\n", 0, error.start)
            raise CandleError(
                f"line {line}: the byte {raw[error.start]:#04x} is not UTF-8 text; save the file as UTF-8"
            ) from None
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = first_line + raw.count(b"\n", 0, nul)
        raise CandleError(f"line {line}: a NUL byte: this is not a text file")


def _fast_rows(block: bytes, header: list[str]) -> tuple[NDArray[np.float64], NDArray[np.int64]] | None:
    """The block's rows by pandas' C reader: an (n, 6) array in :data:`CSV_HEADER` order, and each
    row's offset from the block's first line.

    None when the block is not plain: a byte other than digits, signs, points, exponents, commas and
    line ends (letters, spaces, quotes: a file with a text column goes this way too), a carriage
    return that does not end a line, a line with another number of fields than the header (pandas
    would pad or drop fields silently), or a cell pandas cannot read as a number. The exact reader
    then takes the block.
    """
    data = np.frombuffer(block, dtype=np.uint8)
    if not _PLAIN_BYTES[data].all() or (b"\r" in block and block.count(b"\r") != block.count(b"\r\n")):
        return None
    ends = np.flatnonzero(data == _NEWLINE)
    fields = np.diff(np.searchsorted(np.flatnonzero(data == _COMMA), ends), prepend=0) + 1
    lengths = np.diff(ends, prepend=-1) - 1
    blank = (lengths == 0) | ((lengths == 1) & (data[ends - 1] == _CARRIAGE_RETURN))
    if (fields[~blank] != len(header)).any():
        return None
    names = [name if name in CSV_HEADER else f"_ignored_{i}" for i, name in enumerate(header)]
    try:
        frame = pd.read_csv(
            io.BytesIO(block),
            header=None,
            names=names,
            usecols=list(CSV_HEADER),
            dtype=dict.fromkeys(CSV_HEADER, np.float64),
            keep_default_na=False,  # "NA" or "null" is no number; only an empty cell becomes NaN
            na_values=[""],
            engine="c",
        )
    except ValueError:
        return None
    table = frame[list(CSV_HEADER)].to_numpy(dtype=np.float64)
    offsets = np.flatnonzero(~blank)
    if len(table) != len(offsets) or np.isnan(table).any():  # an empty cell: the exact reader names it
        return None
    return table, offsets


def _exact_rows(
    block: bytes, first_line: int, header: list[str]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The block's rows read one at a time by the csv module, with their line numbers: slower than
    :func:`_fast_rows`, exact about every cell, and the reader that names a malformed line."""
    positions = [header.index(name) for name in CSV_HEADER]
    reader = csv.reader(io.StringIO(block.decode("utf-8")))
    rows: list[list[float]] = []
    lines: list[int] = []
    while True:
        line = first_line + reader.line_num
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            line = first_line + reader.line_num - 1
            if "new-line character" in str(error):  # the csv module's advice does not apply here
                raise CandleError(f"line {line}: a carriage return inside the line") from None
            raise CandleError(f"line {line}: not a CSV line ({error})") from None
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            raise CandleError(
                f"line {line}: expected {len(header)} fields ({_clip(','.join(header))}), got {len(record)}"
            )
        rows.append([_number(record[at], name, line) for name, at in zip(CSV_HEADER, positions, strict=True)])
        lines.append(line)
    table = np.array(rows, dtype=np.float64).reshape(len(rows), len(CSV_HEADER))
    return table, np.array(lines, dtype=np.int64)


def _number(cell: str, name: str, line: int) -> float:
    text = cell.strip()
    # float() also reads "1_000" and the digits of other scripts: no exchange writes those.
    if text.isascii() and "_" not in text:
        try:
            return float(text)
        except ValueError:
            pass
    expected = "an epoch time in whole milliseconds" if name == "timestamp" else "a number"
    raise CandleError(f"line {line}: {name} {_clip(cell)!r} is not {expected}")


# JSON: read whole (within MAX_JSON_BYTES), then the same checks as CSV rows.


def _json_chunks(source: BinaryIO, rows: _Rows) -> Iterator[pd.DataFrame]:
    raw = source.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise CandleError(
            f"larger than {MAX_JSON_BYTES // 2**20} MiB: JSON is read whole; "
            "convert it to CSV, which is streamed"
        )
    _check_text(raw, 1)
    frame = _jsoncandle_frame(raw.removeprefix(_BOM).decode("utf-8"), rows)
    if len(frame):
        yield frame


def _jsoncandle_frame(text: str, rows: _Rows) -> pd.DataFrame:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CandleError(f"line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise CandleError("invalid JSON: nested too deeply") from None
    return _rowscandle_frame(parsed, rows)


def _rowscandle_frame(parsed: object, rows: _Rows) -> pd.DataFrame:
    if not isinstance(parsed, list | tuple):
        raise CandleError(
            "expected a list of [timestamp, open, high, low, close, volume] rows, "
            f"got {type(parsed).__name__}"
        )
    table = np.empty((len(parsed), len(CSV_HEADER)), dtype=np.float64)
    for number, row in enumerate(parsed, start=1):
        if not isinstance(row, list | tuple) or len(row) != len(CSV_HEADER):
            raise CandleError(
                f"candle {number}: expected {len(CSV_HEADER)} values [{', '.join(CSV_HEADER)}], "
                f"got {_clip(repr(row))}"
            )
        for column, (name, value) in enumerate(zip(CSV_HEADER, row, strict=True)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise CandleError(f"candle {number}: {name} must be a number, got {_clip(repr(value))}")
            try:
                table[number - 1, column] = value
            except OverflowError:  # an integer of hundreds of digits: JSON has no limit
                raise CandleError(f"candle {number}: {name} is too large a number") from None
    times, values = rows.check(table, np.arange(1, len(parsed) + 1))
    return candle_frame(times, values)


class _Rows:
    """The checks of parsed rows, a chunk at a time: plausible timestamps, valid values, time order.

    The last row is kept, so order and repeats are checked across chunks as well; ``place`` names a
    row in messages ("line" in CSV files, "candle" in JSON).
    """

    def __init__(self, place: str) -> None:
        self.place = place
        self.repeats = 0
        self._last: tuple[int, NDArray[np.float64], int] | None = None  # time, values, number

    def check(
        self, table: NDArray[np.float64], numbers: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Open times (epoch ms) and (n, 5) values of the rows of ``table`` ((n, 6) in
        :data:`CSV_HEADER` order; ``numbers[i]`` names row i), exact repeats left out."""
        if not len(table):
            return np.empty(0, dtype=np.int64), np.empty((0, len(COLUMNS)))
        stamps, values = table[:, 0], table[:, 1:]
        whole = np.isfinite(stamps) & (stamps == np.floor(stamps))
        plausible = whole & (stamps >= _MS_RANGE[0]) & (stamps < _MS_RANGE[1])
        if not plausible.all():
            i = int(np.flatnonzero(~plausible)[0])
            raise CandleError(
                f"{self.place} {numbers[i]}: timestamp {_show(stamps[i])!r} is not an epoch time in "
                "whole milliseconds (1973 to 5138)"
            )
        problems = value_problems(values)
        if problems:
            raise CandleError("; ".join(self._first(what, bad, table, numbers) for what, bad in problems))
        times = stamps.astype(np.int64)
        last_time, last_values, last_number = self._last or (int(times[0]) - 1, values[0], 0)
        previous = np.concatenate(([last_time], times[:-1]))
        previous_numbers = np.concatenate(([last_number], numbers[:-1]))
        earlier = times < previous
        if earlier.any():
            i = int(np.flatnonzero(earlier)[0])
            raise CandleError(
                f"{self.place} {numbers[i]}: the time is earlier than the previous candle's "
                f"({_time(times[i])} after {_time(previous[i])} on {self.place} {previous_numbers[i]}); "
                "candles must be in time order"
            )
        repeat = times == previous
        if repeat.any():
            previous_values = np.concatenate((last_values[np.newaxis], values[:-1]))
            changed = repeat & (values != previous_values).any(axis=1)
            if changed.any():
                i = int(np.flatnonzero(changed)[0])
                raise CandleError(
                    f"{self.place} {numbers[i]}: the time {_time(times[i])} repeats {self.place} "
                    f"{previous_numbers[i]}'s with other values"
                )
            self.repeats += int(repeat.sum())
            times, values, numbers = times[~repeat], values[~repeat], numbers[~repeat]
        if len(times):
            self._last = (int(times[-1]), values[-1].copy(), int(numbers[-1]))
        return times, values

    def _first(
        self, description: str, bad: NDArray[np.bool_], table: NDArray[np.float64], numbers: NDArray[np.int64]
    ) -> str:
        i = int(np.flatnonzero(bad)[0])
        more = int(bad.sum()) - 1
        shown = ", ".join(
            f"{name}={_show(value)}" for name, value in zip(CSV_HEADER, table[i].tolist(), strict=True)
        )
        return f"{self.place} {numbers[i]}: {description} ({shown})" + (f", and {more} more" if more else "")


def _show(value: float) -> str:
    """A parsed number as a file would write it: ``1500000000000``, ``2.5``, ``inf``."""
    return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(float(value))


def _time(ms: np.int64 | int) -> str:
    return str(pd.Timestamp(int(ms), unit="ms", tz="UTC"))


def _clip(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."
