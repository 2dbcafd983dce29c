"""Chart patterns on zigzag price paths whose swings, levels and formations are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from apps.market.domain.candles import INDEX_NAME
from apps.market.domain.patterns import Detection, detect
from apps.market.domain.patterns.base import Bars
from apps.market.domain.patterns.chart.swings import SWING_ORDER, find_swings

WICK = 0.5


def zigzag(*vertices: tuple[int, float]) -> pd.DataFrame:
    """Closes on straight lines between (bar, price) vertices; each candle opens at the previous
    close and has ``WICK`` of shadow on both sides, so a vertex bar holds the swing's extreme."""
    bars, prices = zip(*vertices, strict=True)
    close = np.interp(np.arange(bars[-1] + 1), bars, prices)
    open_ = np.concatenate(([close[0]], close[:-1]))
    index = pd.date_range("2022-01-03", periods=len(close), freq="h", tz="UTC", name=INDEX_NAME)
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + WICK,
            "low": np.minimum(open_, close) - WICK,
            "close": close,
            "volume": 1.0,
        },
        index=index,
    )


def only(frame: pd.DataFrame, name: str) -> list[Detection]:
    return detect(frame, [name])


def one(frame: pd.DataFrame, name: str) -> Detection:
    detections = only(frame, name)
    assert len(detections) == 1, f"expected one {name}, got {len(detections)}"
    return detections[0]


def test_swings_are_the_zigzag_vertices_each_confirmed_order_bars_later():
    frame = zigzag((0, 100), (10, 110), (20, 100), (30, 112), (40, 102), (43, 104))
    swings = find_swings(Bars(frame))
    assert [(s.kind, s.index, s.price) for s in swings] == [
        ("high", 10, 110.5),
        ("low", 20, 99.5),
        ("high", 30, 112.5),
    ]
    assert all(s.confirmed == s.index + SWING_ORDER for s in swings)


def test_a_low_with_fewer_than_order_bars_after_it_is_not_yet_a_swing():
    frame = zigzag((0, 100), (10, 110), (20, 100), (30, 112), (40, 102), (43, 104))
    assert [d.start_index for d in only(frame, "swing_low")] == [20]
    assert [d.confirmed_index for d in only(frame, "swing_high")] == [15, 35]


def test_two_equal_tops_and_a_close_below_the_dip_between_are_a_double_top():
    frame = zigzag((0, 100), (30, 120), (50, 105), (70, 120), (100, 95))
    detection = one(frame, "double_top")
    assert (detection.start_index, detection.direction) == (30, "bearish")
    # Falling 25/30 a bar from 120 at bar 70, the first close under the 104.5 low is on bar 89.
    assert detection.end_index == detection.confirmed_index == 89
    assert detection.levels["neckline"] == pytest.approx(104.5)
    assert detection.levels["target"] == pytest.approx(104.5 - (120.5 - 104.5))


def test_a_double_top_is_not_reported_until_the_neckline_breaks():
    frame = zigzag((0, 100), (30, 120), (50, 105), (70, 120), (100, 107))
    assert only(frame, "double_top") == []


def test_tops_of_different_height_are_not_a_double_top():
    frame = zigzag((0, 100), (30, 120), (50, 105), (70, 130), (100, 95))
    assert only(frame, "double_top") == []


def test_two_equal_bottoms_and_a_close_above_the_peak_between_are_a_double_bottom():
    frame = zigzag((0, 120), (30, 100), (50, 115), (70, 100), (100, 125))
    detection = one(frame, "double_bottom")
    assert (detection.start_index, detection.direction) == (30, "bullish")
    assert detection.levels["neckline"] == pytest.approx(115.5)
    assert detection.levels["target"] == pytest.approx(115.5 + (115.5 - 99.5))


def test_a_high_head_between_equal_shoulders_then_a_neckline_break_is_head_and_shoulders():
    frame = zigzag((0, 100), (20, 115), (35, 105), (55, 125), (75, 105), (95, 115), (125, 90))
    detection = one(frame, "head_and_shoulders")
    assert (detection.start_index, detection.direction) == (20, "bearish")
    assert detection.confirmed_index > 95 + SWING_ORDER
    assert detection.levels["head"] == pytest.approx(125.5)
    assert detection.levels["neckline"] == pytest.approx(104.5)
    assert detection.levels["target"] == pytest.approx(104.5 - 21.0)


def test_the_mirror_image_is_an_inverse_head_and_shoulders():
    frame = zigzag((0, 120), (20, 105), (35, 115), (55, 95), (75, 115), (95, 105), (125, 130))
    detection = one(frame, "inverse_head_and_shoulders")
    assert (detection.start_index, detection.direction) == (20, "bullish")
    assert detection.levels["neckline"] == pytest.approx(115.5)


def test_flat_highs_over_rising_lows_are_an_ascending_triangle():
    frame = zigzag((0, 95), (15, 120), (30, 105), (45, 120), (60, 110), (75, 120), (90, 112))
    detection = only(frame, "ascending_triangle")[0]
    assert detection.direction == "bullish"
    assert detection.levels["upper"] == pytest.approx(120.5)
    assert detection.levels["lower"] > detection.levels["lower_start"]


def test_falling_highs_over_flat_lows_are_a_descending_triangle():
    frame = zigzag((0, 125), (15, 100), (30, 115), (45, 100), (60, 110), (75, 100), (90, 108))
    detection = only(frame, "descending_triangle")[0]
    assert detection.direction == "bearish"
    assert detection.levels["lower"] == pytest.approx(99.5)


def test_falling_highs_over_rising_lows_are_a_symmetrical_triangle():
    frame = zigzag((0, 95), (15, 125), (30, 100), (45, 120), (60, 105), (75, 115), (90, 108))
    assert only(frame, "symmetrical_triangle")[0].direction == "neutral"


def test_parallel_rising_highs_and_lows_are_a_rising_channel():
    frame = zigzag((0, 100), (15, 110), (30, 105), (45, 115), (60, 110), (75, 120), (90, 115))
    detection = only(frame, "channel")[0]
    assert detection.direction == "bullish"
    assert detection.levels["upper"] - detection.levels["lower"] == pytest.approx(
        detection.levels["upper_start"] - detection.levels["lower_start"], abs=0.01
    )


def test_a_formation_is_reported_once_however_long_it_lasts():
    frame = zigzag(*[(15 * i, 100 + 10 * (i % 2) + 2.5 * i) for i in range(12)])
    assert len(only(frame, "channel")) == 1


def test_three_rising_lows_on_a_line_are_a_bullish_trend_line():
    frame = zigzag((0, 110), (10, 100), (25, 115), (40, 106), (55, 125), (70, 112), (85, 120))
    detection = one(frame, "trend_line")
    assert (detection.start_index, detection.end_index, detection.direction) == (10, 70, "bullish")
    assert detection.confirmed_index == 70 + SWING_ORDER
    assert detection.touches == 3
    assert detection.levels["end"] == pytest.approx(111.5)


def test_three_falling_highs_on_a_line_are_a_bearish_trend_line():
    frame = zigzag((0, 100), (10, 130), (25, 110), (40, 124), (55, 100), (70, 118), (85, 105))
    assert one(frame, "trend_line").direction == "bearish"


def test_a_trend_line_that_closes_cut_through_is_not_reported():
    frame = zigzag((0, 110), (10, 100), (25, 115), (32, 95), (40, 106), (55, 125), (70, 112), (85, 120))
    assert [d for d in only(frame, "trend_line") if d.start_index == 10] == []


RANGE = ((0, 105), (10, 100), (25, 110), (40, 100), (55, 110), (70, 100), (85, 110), (100, 104))


def test_repeated_lows_at_one_price_are_support_that_strengthens_with_each_touch():
    supports = only(zigzag(*RANGE), "support")
    assert [(d.start_index, d.touches) for d in supports] == [(10, 2), (10, 3)]
    assert [d.confidence for d in supports] == [0.5, 0.75]
    assert supports[-1].levels["price"] == pytest.approx(99.5)
    assert supports[-1].confirmed_index == 70 + SWING_ORDER


def test_repeated_highs_at_one_price_are_resistance():
    resistances = only(zigzag(*RANGE), "resistance")
    assert [(d.start_index, d.touches, d.direction) for d in resistances] == [
        (25, 2, "bearish"),
        (25, 3, "bearish"),
    ]
    assert resistances[-1].levels["price"] == pytest.approx(110.5)


def test_a_close_well_above_a_twice_touched_resistance_is_a_bullish_breakout():
    frame = zigzag(*RANGE, (130, 125))
    breakouts = only(frame, "breakout")
    assert [(d.direction, d.touches) for d in breakouts] == [("bullish", 3)]
    detection = breakouts[0]
    assert detection.levels["level"] == pytest.approx(110.5)
    assert detection.levels["close"] > 110.5
    assert detection.end_index == detection.confirmed_index > 100


def test_a_close_well_below_a_twice_touched_support_is_a_bearish_breakout():
    breakouts = only(zigzag(*RANGE, (130, 80)), "breakout")
    assert [(d.direction, d.levels["level"]) for d in breakouts] == [("bearish", pytest.approx(99.5))]


def test_staying_inside_the_range_breaks_nothing():
    assert only(zigzag(*RANGE, (110, 108)), "breakout") == []
