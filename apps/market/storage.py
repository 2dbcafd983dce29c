"""Bulk candle upserts: PostgreSQL binary COPY into a staging table, SQLite batched INSERTs.

Both upsert on (instrument, timeframe, open_time): a new bar is inserted, a bar whose values
changed is updated, an identical bar is left alone, so importing a range twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db import connection

from apps.market.domain.candles import COLUMNS

_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds: PostgreSQL's timestamp zero
_PG_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_PG_COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)
_VALUE_COLUMNS = ", ".join(COLUMNS)
_CHANGED = " OR ".join(f"market_candle.{c} IS DISTINCT FROM EXCLUDED.{c}" for c in COLUMNS)
_UPDATE = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS)


@dataclass(frozen=True)
class UpsertCounts:
    inserted: int
    updated: int
    unchanged: int

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged


def upsert_candles(instrument_id: int, timeframe: str, frame: pd.DataFrame) -> UpsertCounts:
    """Upsert a validated candle frame; call inside a transaction."""
    if frame.empty:
        return UpsertCounts(0, 0, 0)
    if connection.vendor == "postgresql":
        inserted, updated = _upsert_postgresql(instrument_id, timeframe, frame)
    else:
        inserted, updated = _upsert_generic(instrument_id, timeframe, frame)
    return UpsertCounts(inserted, updated, len(frame) - inserted - updated)


def _pg_binary_rows(frame: pd.DataFrame, key: tuple[int, str] | None = None) -> bytes:
    """Rows in PostgreSQL's binary COPY format, built by numpy rather than row by row in Python.

    With ``key`` (instrument id, timeframe) each row starts with those two columns.
    """
    layout = [("fields", ">i2")]
    if key:
        layout += [("id_len", ">i4"), ("id", ">i8"), ("tf_len", ">i4"), ("tf", f"S{len(key[1])}")]
    layout += [("time_len", ">i4"), ("time", ">i8")]
    for column in COLUMNS:
        layout += [(f"{column}_len", ">i4"), (column, ">f8")]
    rows = np.empty(len(frame), dtype=np.dtype(layout))
    rows["fields"] = 1 + len(COLUMNS) + (2 if key else 0)
    if key:
        rows["id_len"], rows["id"] = 8, key[0]
        rows["tf_len"], rows["tf"] = len(key[1]), key[1].encode()
    rows["time_len"] = 8
    rows["time"] = frame.index.as_unit("us").asi8 - _PG_EPOCH_US
    for column in COLUMNS:
        rows[f"{column}_len"] = 8
        rows[column] = frame[column].to_numpy(dtype=np.float64)
    return _PG_COPY_HEADER + rows.tobytes() + _PG_COPY_TRAILER


def _upsert_postgresql(instrument_id: int, timeframe: str, frame: pd.DataFrame) -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM market_candle WHERE instrument_id = %s AND timeframe = %s "
            "AND open_time BETWEEN %s AND %s)",
            [instrument_id, timeframe, frame.index[0], frame.index[-1]],
        )
        if not cursor.fetchone()[0]:
            # Nothing stored in this range (the usual append): copy straight into the table. A
            # concurrent writer of the same bars makes the unique constraint fail the transaction.
            columns = f"instrument_id, timeframe, open_time, {_VALUE_COLUMNS}"
            with cursor.copy(f"COPY market_candle ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(_pg_binary_rows(frame, key=(instrument_id, timeframe)))
            return len(frame), 0
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS candle_stage "
            "(open_time timestamptz, open float8, high float8, low float8, close float8, volume float8)"
        )
        cursor.execute("TRUNCATE candle_stage")
        with cursor.copy(
            f"COPY candle_stage (open_time, {_VALUE_COLUMNS}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.write(_pg_binary_rows(frame))
        cursor.execute(
            f"""
            WITH written AS (
                INSERT INTO market_candle (instrument_id, timeframe, open_time, {_VALUE_COLUMNS})
                SELECT %s, %s, open_time, {_VALUE_COLUMNS} FROM candle_stage
                ON CONFLICT (instrument_id, timeframe, open_time) DO UPDATE SET {_UPDATE} WHERE {_CHANGED}
                RETURNING xmax = 0 AS inserted
            )
            SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM written
            """,  # noqa: S608  (only constant column names are interpolated)
            [instrument_id, timeframe],
        )
        inserted, updated = cursor.fetchone()
        cursor.execute("TRUNCATE candle_stage")
    return inserted, updated


def _upsert_generic(instrument_id: int, timeframe: str, frame: pd.DataFrame) -> tuple[int, int]:
    # The text form Django's SQLite backend stores for an aware datetime (naive UTC).
    times = frame.index.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S").tolist()
    values = frame[list(COLUMNS)].to_numpy(dtype=np.float64).tolist()
    rows = [(instrument_id, timeframe, time, *bar) for time, bar in zip(times, values, strict=True)]
    # Only constant column names are interpolated into the SQL.
    statement = (
        f"INSERT INTO market_candle (instrument_id, timeframe, open_time, {_VALUE_COLUMNS}) "  # noqa: S608
        f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
        f"ON CONFLICT (instrument_id, timeframe, open_time) DO UPDATE SET {_UPDATE} WHERE {_CHANGED}"
    )
    count_sql = (
        "SELECT count(*) FROM market_candle "
        "WHERE instrument_id = %s AND timeframe = %s AND open_time BETWEEN %s AND %s"
    )
    span = [instrument_id, timeframe, times[0], times[-1]]
    with connection.cursor() as cursor:
        cursor.execute(count_sql, span)
        before = cursor.fetchone()[0]
        written = 0
        for start in range(0, len(rows), 5000):
            cursor.executemany(statement, rows[start : start + 5000])
            written += max(cursor.rowcount, 0)
        cursor.execute(count_sql, span)
        inserted = cursor.fetchone()[0] - before
    return inserted, written - inserted
