"""The column detectors find exactly what the object-per-hit reference found, on real and synthetic bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from apps.market.domain.candle_files import read_candles
from apps.market.domain.patterns import detect, find, pattern_names
from tests.unit.market import patterns_reference
from tests.unit.market.conftest import data_file
from tests.unit.market.synthetic import random_walk

DAILY = {
    "btc-daily": "btc_usd_coinbase_1d_2014-12-01_2019-10-17.csv",
    "eth-daily": "eth_usd_bitstamp_1d_2017-11-09_2020-01-17.csv",
    "ltc-daily": "ltc_usd_bitstamp_1d_2017-06-25_2020-01-17.csv",
}
WALKS = {
    "walk-9": lambda: random_walk(9, bars=3000),
    "walk-3-with-halts": lambda: random_walk(3, halts=True),
    "walk-5-short": lambda: random_walk(5, bars=40),
}


def every_field(detections: list) -> list[tuple]:
    return [tuple(d.to_dict().items()) for d in detections]


def assert_identical(frame: pd.DataFrame) -> None:
    expected = patterns_reference.detect(frame)
    assert every_field(detect(frame)) == every_field(expected)
    assert find(frame).to_dicts() == [d.to_dict() for d in expected]


def test_real_hourly_btc_gives_the_same_detections_in_the_same_order(btc_1h):
    found = find(btc_1h)
    assert {hits.pattern for hits in found.hits if len(hits)} == set(pattern_names())
    assert_identical(btc_1h)


@pytest.mark.parametrize("name", sorted(DAILY))
def test_real_daily_candles_give_the_same_detections(name):
    assert_identical(read_candles(data_file(DAILY[name])))


@pytest.mark.parametrize("name", sorted(WALKS))
def test_random_walks_give_the_same_detections(name):
    assert_identical(WALKS[name]())


@pytest.mark.parametrize("names", [["doji"], ["support", "breakout"], ["channel", "hammer", "trend_line"]])
def test_a_chosen_few_patterns_come_in_the_same_order(btc_1h, names):
    frame = btc_1h.iloc[3000:8000]
    assert every_field(detect(frame, names)) == every_field(patterns_reference.detect(frame, names))


@pytest.mark.parametrize("bar", [0, 4000, 4990, 5000])
def test_since_keeps_the_rows_confirmed_from_a_bar_on(btc_1h, bar):
    frame = btc_1h.iloc[:5000]
    everything = find(frame)
    kept = everything.since(bar)
    assert kept.to_dicts() == [d for d in everything.to_dicts() if d["confirmed_index"] >= bar]
    assert np.all(kept.confirmed_index >= bar)
