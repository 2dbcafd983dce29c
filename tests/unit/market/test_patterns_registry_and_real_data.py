"""The pattern registry, and every detector run on two years of real BTC/USD hourly candles."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest

from apps.market.domain.patterns import PATTERNS, PatternError, detect, pattern_names
from apps.market.domain.patterns.chart.swings import SWING_ORDER
from tests.unit.market.synthetic import random_walk

CANDLESTICKS = {
    "doji", "hammer", "inverted_hammer", "hanging_man", "shooting_star", "bullish_engulfing",
    "bearish_engulfing", "bullish_harami", "bearish_harami", "piercing_line", "dark_cloud_cover",
    "morning_star", "evening_star", "three_white_soldiers", "three_black_crows",
}  # fmt: skip
CHARTS = {
    "swing_high", "swing_low", "support", "resistance", "breakout", "double_top", "double_bottom",
    "head_and_shoulders", "inverse_head_and_shoulders", "ascending_triangle", "descending_triangle",
    "symmetrical_triangle", "channel", "trend_line",
}  # fmt: skip


@pytest.fixture(scope="module")
def detections(btc_1h):
    return detect(btc_1h)


def test_the_registry_lists_every_pattern_by_kind():
    assert set(pattern_names("candlestick")) == CANDLESTICKS
    assert set(pattern_names("chart")) == CHARTS
    assert pattern_names() == list(PATTERNS)


def test_unknown_pattern_names_are_rejected_with_the_valid_ones():
    with pytest.raises(PatternError, match=r"unknown pattern double_tops; valid: doji, .*double_top"):
        detect(random_walk(1, bars=100), ["doji", "double_tops"])


def test_a_frame_without_prices_is_rejected():
    with pytest.raises(PatternError, match="missing close"):
        detect(random_walk(1, bars=100).drop(columns=["close"]))


def test_detect_runs_only_the_named_patterns():
    found = detect(random_walk(4, bars=600), ["doji", "swing_high"])
    assert {d.pattern for d in found} == {"doji", "swing_high"}


@pytest.mark.parametrize("name", sorted(CANDLESTICKS | CHARTS))
def test_every_pattern_documents_its_rule(name):
    assert len(PATTERNS[name].description) > 60


@pytest.mark.parametrize("bars", [0, 1, 3, 11])
def test_frames_too_short_for_a_swing_give_no_chart_patterns(bars):
    frame = random_walk(2, bars=20).iloc[:bars]
    assert detect(frame, pattern_names("chart")) == []
    assert all(d.end_index < bars for d in detect(frame))


def test_every_real_detection_is_well_formed(btc_1h, detections):
    index = btc_1h.index
    for d in detections:
        assert 0.0 <= d.confidence <= 1.0, d
        assert 0 <= d.start_index <= d.end_index <= d.confirmed_index < len(btc_1h), d
        assert (d.start_time, d.end_time, d.confirmed_time) == (
            index[d.start_index],
            index[d.end_index],
            index[d.confirmed_index],
        )
        assert d.kind == PATTERNS[d.pattern].kind
        assert d.direction in {"bullish", "bearish", "neutral"}
        assert d.levels, d
        assert all(math.isfinite(v) for v in d.levels.values()), d
        if d.kind == "candlestick":
            assert d.confirmed_index == d.end_index
        if d.pattern in {"swing_high", "swing_low"}:
            assert d.confirmed_index == d.start_index + SWING_ORDER


def test_every_pattern_occurs_in_two_years_of_hourly_candles(detections):
    counts = Counter(d.pattern for d in detections)
    assert set(counts) == CANDLESTICKS | CHARTS
    for common in ("doji", "hammer", "bullish_engulfing", "bearish_engulfing", "swing_high", "swing_low"):
        assert counts[common] > 300, common
    for name in ("support", "resistance", "breakout", "trend_line", "channel"):
        assert counts[name] > 50, name


def test_detections_come_sorted_by_the_bar_they_became_known(detections):
    confirmed = [d.confirmed_index for d in detections]
    assert confirmed == sorted(confirmed)


def test_prices_in_levels_are_within_reach_of_the_market(btc_1h, detections):
    low, high = btc_1h["low"].min(), btc_1h["high"].max()
    for d in detections:
        if d.pattern in {"support", "resistance", "breakout", "double_top", "double_bottom"}:
            for name, price in d.levels.items():
                if name != "target":
                    assert low <= price <= high, (d, name)


def test_swing_highs_are_highs_and_lows_are_lows(btc_1h, detections):
    high, low = btc_1h["high"].to_numpy(), btc_1h["low"].to_numpy()
    for d in detections:
        window = slice(max(0, d.start_index - SWING_ORDER), d.start_index + SWING_ORDER + 1)
        if d.pattern == "swing_high":
            assert d.levels["price"] == high[d.start_index] == high[window].max()
        if d.pattern == "swing_low":
            assert d.levels["price"] == low[d.start_index] == low[window].min()


def _key(d):
    levels = tuple(sorted((name, round(value, 6)) for name, value in d.levels.items()))
    return (
        d.pattern,
        d.start_index,
        d.end_index,
        d.confirmed_index,
        d.direction,
        round(d.confidence, 9),
        levels,
    )


@pytest.mark.parametrize("cut", [700, 2222, 3999])
def test_no_detection_depends_on_bars_after_its_confirmation(btc_1h, cut):
    """What detect() reports up to bar t on all the data is exactly what it reports on data ending at t."""
    frame = btc_1h.iloc[5000:9000]
    everything = detect(frame)
    known_at_cut = {_key(d) for d in everything if d.confirmed_index <= cut}
    assert known_at_cut == {_key(d) for d in detect(frame.iloc[: cut + 1])}
    assert len(known_at_cut) > 100


def test_detections_serialise_to_json(detections):
    payload = json.dumps([d.to_dict() for d in detections[:50]])
    first = json.loads(payload)[0]
    assert first["start_time"].startswith("2017-07")
    assert set(first) >= {"pattern", "kind", "direction", "confidence", "levels", "confirmed_index"}


def test_patterns_run_on_a_random_walk_as_well():
    found = detect(random_walk(9, bars=2000))
    assert len(found) > 100
    assert all(np.isfinite(d.confidence) for d in found)
