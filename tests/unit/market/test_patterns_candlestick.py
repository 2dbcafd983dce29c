"""Candlestick patterns on hand-built bars whose answer is known."""

from __future__ import annotations

import pandas as pd
import pytest

from apps.market.domain.candles import INDEX_NAME
from apps.market.domain.patterns import Detection, detect

Bar = tuple[float, float, float, float]  # open, high, low, close


def frame_of(bars: list[Bar]) -> pd.DataFrame:
    index = pd.date_range("2022-03-07", periods=len(bars), freq="h", tz="UTC", name=INDEX_NAME)
    frame = pd.DataFrame(bars, columns=["open", "high", "low", "close"], index=index)
    return frame.assign(volume=1.0)


def trend(direction: int, bars: int = 12, start: float = 120.0) -> list[Bar]:
    """Bars moving one point each in ``direction`` (+1 up, -1 down), with short wicks: the average
    body is 1 and the 5-bar SMA slopes that way."""
    out = []
    price = start
    for _ in range(bars):
        close = price + direction
        out.append((price, max(price, close) + 0.2, min(price, close) - 0.2, close))
        price = close
    return out


def after(direction: int, *pattern: Bar) -> list[Bar]:
    """The pattern's bars after a trend that ends where the pattern starts."""
    first_open = pattern[0][0]
    prefix = trend(direction, start=first_open - 12 * direction)
    return prefix + list(pattern)


def found(bars: list[Bar], name: str) -> list[Detection]:
    return detect(frame_of(bars), [name])


def assert_found_at_end(bars: list[Bar], name: str, span: int, direction: str) -> Detection:
    matches = [d for d in found(bars, name) if d.end_index == len(bars) - 1]
    assert len(matches) == 1, f"{name} not found on the last bar"
    detection = matches[0]
    assert detection.start_index == len(bars) - span
    assert detection.confirmed_index == detection.end_index
    assert detection.direction == direction
    assert detection.kind == "candlestick"
    assert 0.5 <= detection.confidence <= 1.0
    assert detection.levels["high"] >= detection.levels["low"]
    return detection


def assert_not_at_end(bars: list[Bar], name: str) -> None:
    assert all(d.end_index != len(bars) - 1 for d in found(bars, name))


HAMMER: Bar = (100.0, 100.6, 98.0, 100.5)  # body 0.5 at the top, lower shadow 2.0, upper 0.1
INVERTED: Bar = (100.0, 102.6, 99.9, 100.5)  # body 0.5 at the bottom, upper shadow 2.1


def test_a_bar_that_closes_where_it_opened_is_a_doji():
    detection = assert_found_at_end(after(-1, (100.0, 101.0, 99.0, 100.02)), "doji", 1, "neutral")
    assert detection.confidence > 0.8


def test_a_bar_with_a_real_body_is_not_a_doji():
    assert_not_at_end(after(-1, (100.0, 101.0, 99.0, 100.5)), "doji")


def test_a_long_lower_shadow_after_a_fall_is_a_hammer_and_not_a_hanging_man():
    assert_found_at_end(after(-1, HAMMER), "hammer", 1, "bullish")
    assert_not_at_end(after(-1, HAMMER), "hanging_man")


def test_the_same_bar_after_a_rise_is_a_hanging_man_and_not_a_hammer():
    assert_found_at_end(after(+1, HAMMER), "hanging_man", 1, "bearish")
    assert_not_at_end(after(+1, HAMMER), "hammer")


def test_a_long_upper_shadow_after_a_fall_is_an_inverted_hammer():
    assert_found_at_end(after(-1, INVERTED), "inverted_hammer", 1, "bullish")
    assert_not_at_end(after(-1, INVERTED), "shooting_star")


def test_a_long_upper_shadow_after_a_rise_is_a_shooting_star():
    assert_found_at_end(after(+1, INVERTED), "shooting_star", 1, "bearish")
    assert_not_at_end(after(+1, INVERTED), "inverted_hammer")


def test_a_larger_bullish_body_covering_a_bearish_one_after_a_fall_is_bullish_engulfing():
    bars = after(-1, (100.0, 100.2, 98.8, 99.0), (99.0, 100.6, 98.9, 100.5))
    assert_found_at_end(bars, "bullish_engulfing", 2, "bullish")


def test_an_engulfing_body_must_be_larger():
    assert_not_at_end(after(-1, (100.0, 100.2, 98.8, 99.0), (99.0, 100.1, 98.9, 100.0)), "bullish_engulfing")


def test_a_larger_bearish_body_covering_a_bullish_one_after_a_rise_is_bearish_engulfing():
    bars = after(+1, (100.0, 101.2, 99.8, 101.0), (101.0, 101.1, 99.4, 99.5))
    assert_found_at_end(bars, "bearish_engulfing", 2, "bearish")


def test_a_small_bullish_body_inside_a_long_bearish_one_after_a_fall_is_a_bullish_harami():
    bars = after(-1, (100.0, 100.2, 96.8, 97.0), (97.5, 98.6, 97.4, 98.5))
    assert_found_at_end(bars, "bullish_harami", 2, "bullish")


def test_a_small_bearish_body_inside_a_long_bullish_one_after_a_rise_is_a_bearish_harami():
    bars = after(+1, (100.0, 103.2, 99.8, 103.0), (102.5, 102.6, 101.4, 101.5))
    assert_found_at_end(bars, "bearish_harami", 2, "bearish")


def test_a_bullish_bar_closing_past_the_middle_of_a_long_bearish_one_is_a_piercing_line():
    bars = after(-1, (100.0, 100.2, 96.8, 97.0), (97.0, 99.1, 96.9, 99.0))
    detection = assert_found_at_end(bars, "piercing_line", 2, "bullish")
    assert detection.confidence == pytest.approx(0.5 + 0.5 * (99.0 - 98.5) / (100.0 - 98.5))


def test_a_bullish_bar_closing_below_the_middle_is_not_a_piercing_line():
    assert_not_at_end(after(-1, (100.0, 100.2, 96.8, 97.0), (97.0, 98.4, 96.9, 98.3)), "piercing_line")


def test_a_bearish_bar_closing_past_the_middle_of_a_long_bullish_one_is_dark_cloud_cover():
    bars = after(+1, (100.0, 103.2, 99.8, 103.0), (103.0, 103.1, 100.9, 101.0))
    assert_found_at_end(bars, "dark_cloud_cover", 2, "bearish")


def test_long_bearish_small_star_and_strong_bullish_bars_after_a_fall_are_a_morning_star():
    bars = after(-1, (100.0, 100.2, 96.8, 97.0), (97.0, 97.1, 96.5, 96.8), (96.8, 99.1, 96.7, 99.0))
    assert_found_at_end(bars, "morning_star", 3, "bullish")


def test_a_third_bar_that_stays_low_does_not_make_a_morning_star():
    bars = after(-1, (100.0, 100.2, 96.8, 97.0), (97.0, 97.1, 96.5, 96.8), (96.8, 98.1, 96.7, 98.0))
    assert_not_at_end(bars, "morning_star")


def test_long_bullish_small_star_and_strong_bearish_bars_after_a_rise_are_an_evening_star():
    bars = after(+1, (100.0, 103.2, 99.8, 103.0), (103.0, 103.5, 102.9, 103.2), (103.2, 103.3, 100.9, 101.0))
    assert_found_at_end(bars, "evening_star", 3, "bearish")


def test_three_strong_rising_bullish_bars_are_three_white_soldiers():
    soldiers = [(100.0, 101.6, 99.9, 101.5), (101.5, 103.1, 101.4, 103.0), (103.0, 104.6, 102.9, 104.5)]
    assert_found_at_end(after(-1, *soldiers), "three_white_soldiers", 3, "bullish")


def test_soldiers_with_long_upper_shadows_do_not_count():
    tired = [(100.0, 101.6, 99.9, 101.5), (101.5, 104.0, 101.4, 103.0), (103.0, 104.6, 102.9, 104.5)]
    assert_not_at_end(after(-1, *tired), "three_white_soldiers")


def test_three_strong_falling_bearish_bars_are_three_black_crows():
    crows = [(100.0, 100.1, 98.4, 98.5), (98.5, 98.6, 96.9, 97.0), (97.0, 97.1, 95.4, 95.5)]
    assert_found_at_end(after(+1, *crows), "three_black_crows", 3, "bearish")
