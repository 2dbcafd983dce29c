"""Candle frames: timeframes, validation, gaps, resampling and the CSV and JSON parsers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from apps.market.domain.candle_files import candles_from_rows, parse_csv, parse_json, read_candles
from apps.market.domain.candles import (
    COLUMNS,
    INDEX_NAME,
    TIMEFRAMES,
    CandleError,
    Gap,
    candle_problems,
    find_gaps,
    parse_timeframe,
    resample,
    validate_candles,
)
from tests.unit.market.synthetic import random_walk

HEADER = "timestamp,open,high,low,close,volume\n"
T0 = 1_498_906_800_000  # 2017-07-01 11:00 UTC
HOUR = 3_600_000


def csv_rows(*rows: str) -> str:
    return HEADER + "".join(f"{row}\n" for row in rows)


def hourly(bars: int, start: str = "2021-01-04 00:00") -> pd.DataFrame:
    frame = random_walk(3, bars=bars)
    frame.index = pd.date_range(start, periods=bars, freq="h", tz="UTC", name=INDEX_NAME)
    return frame


# --- timeframes ------------------------------------------------------------------------------------


def test_every_timeframe_has_its_duration():
    assert {name: tf.duration for name, tf in TIMEFRAMES.items()} == {
        "1m": pd.Timedelta(minutes=1),
        "5m": pd.Timedelta(minutes=5),
        "15m": pd.Timedelta(minutes=15),
        "30m": pd.Timedelta(minutes=30),
        "1h": pd.Timedelta(hours=1),
        "4h": pd.Timedelta(hours=4),
        "1d": pd.Timedelta(days=1),
        "1w": pd.Timedelta(weeks=1),
    }
    assert parse_timeframe("4h").milliseconds == 4 * HOUR


def test_unknown_timeframes_are_rejected_with_the_valid_ones():
    with pytest.raises(CandleError, match="unknown timeframe '2h'; valid: 1m, 5m, 15m, 30m, 1h, 4h, 1d, 1w"):
        parse_timeframe("2h")


def test_weeks_start_on_monday_and_other_timeframes_on_utc_multiples():
    times = pd.DatetimeIndex(["2024-05-16 13:47", "2024-05-19 23:59"], tz="UTC")  # a Thursday and a Sunday
    assert list(parse_timeframe("1w").floor(times)) == [pd.Timestamp("2024-05-13", tz="UTC")] * 2
    assert parse_timeframe("4h").floor(times)[0] == pd.Timestamp("2024-05-16 12:00", tz="UTC")
    assert parse_timeframe("15m").floor(times)[0] == pd.Timestamp("2024-05-16 13:45", tz="UTC")


# --- validation ------------------------------------------------------------------------------------


def test_a_well_formed_frame_is_valid():
    frame = hourly(50)
    assert candle_problems(frame) == []
    assert validate_candles(frame) is frame


def set_value(frame: pd.DataFrame, position: int, column: str, value: float) -> pd.DataFrame:
    spoiled = frame.copy()
    spoiled.iloc[position, spoiled.columns.get_loc(column)] = value
    return spoiled


@pytest.mark.parametrize(
    ("spoil", "problem"),
    [
        (lambda f: f.drop(columns=["volume"]), "missing columns: volume"),
        (lambda f: f.astype({"close": "float32"}), "column close has dtype float32, expected float64"),
        (lambda f: f.tz_localize(None), "the index must be a UTC DatetimeIndex of open times"),
        (lambda f: f.reset_index(drop=True), "the index must be a UTC DatetimeIndex"),
        (
            lambda f: set_value(f, 7, "high", f["low"].iloc[7]),
            "high is below the open or the close on 1 candle",
        ),
        (lambda f: set_value(f, 9, "low", f["high"].iloc[9]), "low is above the open or the close"),
        (lambda f: f.assign(volume=-f["volume"]), "volume is negative on 50 candle"),
        (lambda f: set_value(f, 3, "open", np.nan), "not a finite number"),
        (lambda f: set_value(f, 3, "low", 0.0), "zero or negative"),
        (lambda f: f.assign(high=f["high"] * 1e11), "a price is outside 1e-12 .. 1e+12 on 50 candle"),
        (lambda f: f * 1e-17, "a price is outside 1e-12 .. 1e+12"),
        (lambda f: set_value(f, 4, "volume", 2e18), "volume is above 1e+18 on 1 candle"),
        (lambda f: set_value(f, 5, "high", f["low"].iloc[5] / 2), "high is below low on 1 candle"),
        (lambda f: f.iloc[[0, 1, 1, 2]], "the time repeats the previous candle's on 1 candle"),
        (lambda f: f.iloc[[0, 2, 1]], "the time is earlier than the previous candle's on 1 candle"),
    ],
)
def test_invalid_frames_are_rejected_saying_why_and_where(spoil, problem):
    frame = spoil(hourly(50))
    assert any(problem in p for p in candle_problems(frame)), candle_problems(frame)
    with pytest.raises(CandleError, match="invalid candles: "):
        validate_candles(frame)


def test_a_problem_names_the_first_offending_candle():
    frame = hourly(50)
    frame.iloc[[12, 30], frame.columns.get_loc("volume")] = -1.0
    assert candle_problems(frame) == ["volume is negative on 2 candle(s), first at 2021-01-04 12:00:00+00:00"]


# --- gaps ------------------------------------------------------------------------------------------


def test_gaps_list_each_run_of_missing_candles():
    times = pd.date_range("2024-01-01", periods=10, freq="h", tz="UTC").delete([3, 6, 7])
    assert find_gaps(times, "1h") == [
        Gap(pd.Timestamp("2024-01-01 03:00", tz="UTC"), pd.Timestamp("2024-01-01 03:00", tz="UTC"), 1),
        Gap(pd.Timestamp("2024-01-01 06:00", tz="UTC"), pd.Timestamp("2024-01-01 07:00", tz="UTC"), 2),
    ]


def test_a_complete_series_has_no_gaps():
    assert find_gaps(pd.date_range("2024-01-01", periods=500, freq="5min", tz="UTC"), "5m") == []
    assert find_gaps(pd.DatetimeIndex([], tz="UTC"), "1d") == []


@pytest.mark.parametrize(
    ("times", "message"),
    [
        (["2024-01-01 00:00", "2024-01-01 00:30"], "must increase by whole 1h candles: 2024-01-01 00:00:00"),
        (["2024-01-01 02:00", "2024-01-01 01:00"], "is followed by 2024-01-01 01:00:00"),
        (["2024-01-01 02:00", "2024-01-01 02:00"], "must increase"),
    ],
)
def test_find_gaps_rejects_times_off_the_timeframe_or_out_of_order(times, message):
    with pytest.raises(CandleError, match=message):
        find_gaps(pd.DatetimeIndex(times, tz="UTC"), "1h")


def test_find_gaps_wants_time_zone_aware_times():
    with pytest.raises(CandleError, match="time-zone aware"):
        find_gaps(pd.DatetimeIndex(["2024-01-01"]), "1h")


# --- resampling ------------------------------------------------------------------------------------


def test_resampling_aggregates_first_open_max_high_min_low_last_close_and_total_volume():
    frame = hourly(8)
    four_hourly = resample(frame, "1h", "4h")
    first = frame.iloc[:4]
    assert list(four_hourly.index) == [
        pd.Timestamp("2021-01-04 00:00", tz="UTC"),
        pd.Timestamp("2021-01-04 04:00", tz="UTC"),
    ]
    assert four_hourly.iloc[0].to_dict() == pytest.approx(
        {
            "open": first["open"].iloc[0],
            "high": first["high"].max(),
            "low": first["low"].min(),
            "close": first["close"].iloc[-1],
            "volume": first["volume"].sum(),
        }
    )
    assert candle_problems(four_hourly) == []


def test_partial_buckets_at_either_end_are_dropped():
    frame = hourly(13, start="2021-01-04 02:00")  # 02:00 .. 14:00
    assert list(resample(frame, "1h", "4h").index.hour) == [4, 8]


def test_a_bucket_with_a_hole_inside_the_series_is_kept():
    frame = hourly(12).drop(pd.Timestamp("2021-01-04 05:00", tz="UTC"))
    resampled = resample(frame, "1h", "4h")
    assert list(resampled.index.hour) == [0, 4, 8]
    assert resampled["volume"].iloc[1] == pytest.approx(frame["volume"].iloc[4:7].sum())


def test_daily_candles_become_monday_weeks():
    frame = random_walk(5, bars=30)
    frame.index = pd.date_range("2024-04-29", periods=30, freq="D", tz="UTC", name=INDEX_NAME)  # a Monday
    weekly = resample(frame, "1d", "1w")
    assert list(weekly.index.day_of_week) == [0, 0, 0, 0]
    assert weekly["high"].iloc[1] == frame["high"].iloc[7:14].max()


@pytest.mark.parametrize(("source", "target"), [("1h", "1h"), ("4h", "1h"), ("1h", "1m")])
def test_resampling_only_goes_to_longer_multiples(source, target):
    with pytest.raises(CandleError, match=f"cannot resample {source} to {target}"):
        resample(hourly(10), source, target)


def test_resampling_rejects_candles_off_the_source_grid():
    frame = hourly(10)
    frame.index = frame.index + pd.Timedelta(minutes=30)
    with pytest.raises(CandleError, match="does not open on a 1h boundary"):
        resample(frame, "1h", "4h")


def test_resampling_nothing_gives_an_empty_candle_frame():
    empty = resample(hourly(10).iloc[:0], "1h", "1d")
    assert list(empty.columns) == list(COLUMNS)
    assert len(empty) == 0


# --- parsing ---------------------------------------------------------------------------------------


def test_the_csv_layout_parses_to_a_utc_indexed_frame():
    frame = parse_csv(
        csv_rows(
            f"{T0},2505.56,2513.38,2495.12,2509.17,114.6",
            f"{T0 + HOUR},2509.17,2512.87,2484.99,2488.43,157.36",
            "",
        )
    )
    assert list(frame.columns) == list(COLUMNS)
    assert frame.index.name == INDEX_NAME
    assert frame.index[0] == pd.Timestamp("2017-07-01 11:00", tz="UTC")
    assert frame.loc[frame.index[1], "close"] == 2488.43
    assert all(frame.dtypes == np.float64)


def row(hour: int, values: str = "1,2,0.5,1.5,3") -> str:
    """A CSV row ``hour`` hours after T0; the default values are a valid candle."""
    return f"{T0 + hour * HOUR},{values}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty; expected the header timestamp,open,high,low,close,volume"),
        ("date,open,high,low,close,volume\n", "line 1: missing column.s. timestamp: the header must name"),
        (
            csv_rows(row(0, "1,2,0.5,1.5")),
            r"line 2: expected 6 fields \(timestamp,open,high,low,close,volume\)",
        ),
        (csv_rows(row(0), row(1, "1,2,0.5,n/a,3")), "line 3: close 'n/a' is not a number"),
        (csv_rows(row(0), "", row(1, "1,2,0.5,1.5,")), "line 4: volume '' is not a number"),
        (csv_rows("1498906800,1,2,0.5,1.5,3"), "line 2: timestamp '1498906800' is not an epoch time"),
        (csv_rows(f"{T0}.5,1,2,0.5,1.5,3"), "line 2: timestamp .* whole milliseconds"),
        (
            csv_rows(row(0), row(1, "1,1.2,0.5,1.5,3")),
            r"line 3: high is below the open or the close \(timestamp=",
        ),
        (csv_rows(row(0, "1,2,0.5,1.5,nan")), "line 2: a price or the volume is not a finite number"),
        (csv_rows(row(0), row(0, "1,2,0.5,1.4,3")), "line 3: the time .* repeats line 2's with other values"),
        (csv_rows(row(1), row(0)), "line 3: the time is earlier"),
        (
            csv_rows(row(0, "1,2,0.5,1.5,-3"), row(1, "1,2,0.5,1.5,-3")),
            "line 2: volume is negative .*, and 1 more",
        ),
    ],
)
def test_malformed_csv_is_rejected_naming_the_line_and_the_fault(text, message):
    with pytest.raises(CandleError, match=message):
        parse_csv(text)


def test_ccxt_ohlcv_json_parses_like_the_csv():
    rows = [
        [T0, 2505.56, 2513.38, 2495.12, 2509.17, 114.6],
        [T0 + HOUR, 2509.17, 2512.87, 2484.99, 2488.43, 157],
    ]
    frame = parse_json(json.dumps(rows))
    expected = parse_csv(csv_rows(*(",".join(map(str, row)) for row in rows)))
    pd.testing.assert_frame_equal(frame, expected)
    pd.testing.assert_frame_equal(candles_from_rows(rows), expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[1, 2,", "line 1 column 8: invalid JSON: Expecting value"),
        (
            '{"candles": []}',
            "expected a list of \\[timestamp, open, high, low, close, volume\\] rows, got dict",
        ),
        (json.dumps([[T0, 1, 2, 0.5, 1.5, 3], [T0 + HOUR, 1, 2, 0.5, 1.5]]), "candle 2: expected 6 values"),
        (json.dumps([[T0, 1, 2, 0.5, 1.5, None]]), "candle 1: volume must be a number, got None"),
        (json.dumps([[T0, 1, 2, 0.5, "1.5", 3]]), "candle 1: close must be a number, got '1.5'"),
        (
            json.dumps([[T0, 1, 2, 0.5, 1.5, 3], [T0 - HOUR, 1, 2, 0.5, 1.5, 3]]),
            "candle 2: the time is earlier",
        ),
        (json.dumps([[T0 * 1000, 1, 2, 0.5, 1.5, 3]]), "candle 1: timestamp .* whole milliseconds"),
    ],
)
def test_malformed_json_is_rejected_naming_the_candle_and_the_fault(text, message):
    with pytest.raises(CandleError, match=message):
        parse_json(text)


def test_read_candles_picks_the_parser_by_suffix_and_names_the_file_in_errors(tmp_path):
    good, bad, odd = tmp_path / "btc.json", tmp_path / "btc.csv", tmp_path / "btc.txt"
    good.write_text(json.dumps([[T0, 1, 2, 0.5, 1.5, 3]]))
    bad.write_text(csv_rows(f"{T0},1,2,0.5,x,3"))
    odd.write_text("")
    assert len(read_candles(good)) == 1
    with pytest.raises(CandleError, match=r"btc\.csv: line 2: close 'x' is not a number"):
        read_candles(bad)
    with pytest.raises(
        CandleError, match=r"btc\.txt: unknown candle file type; expected one of \.csv, \.json"
    ):
        read_candles(odd)


# --- the real data ---------------------------------------------------------------------------------


def test_the_real_hourly_file_parses_whole_and_has_no_gaps(btc_1h):
    assert len(btc_1h) == 20_111
    assert btc_1h.index[0] == pd.Timestamp("2017-07-01 11:00", tz="UTC")
    assert candle_problems(btc_1h) == []
    assert find_gaps(btc_1h.index, "1h") == []


def test_the_real_daily_file_has_one_known_twelve_day_gap(btc_1d):
    assert find_gaps(btc_1d.index, "1d") == [
        Gap(pd.Timestamp("2019-03-20", tz="UTC"), pd.Timestamp("2019-03-31", tz="UTC"), 12)
    ]


def test_hourly_candles_resampled_to_days_match_the_exchanges_daily_candles(btc_1h, btc_1d):
    daily = resample(btc_1h, "1h", "1d")
    both = daily.join(btc_1d, how="inner", suffixes=("", "_exchange"))
    assert len(both) > 800
    for column in ("open", "high", "low", "close"):
        relative = (both[column] - both[f"{column}_exchange"]).abs() / both[f"{column}_exchange"]
        assert relative.median() == 0.0
        assert (relative < 1e-3).mean() > 0.9
