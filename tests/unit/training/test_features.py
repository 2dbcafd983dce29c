"""Features: built from bars up to each row only, scale-free, serialisable, warm-up aware."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from apps.training.domain.features import (
    CORE_V1,
    CandleFeature,
    FeatureError,
    FeatureSet,
    IndicatorFeature,
    LogReturnFeature,
    TimeFeature,
    VolatilityFeature,
    VolumeZScoreFeature,
    build_features,
    feature_matrix,
    get_feature_set,
)


def test_core_v1_is_shipped_and_every_feature_can_be_computed() -> None:
    assert get_feature_set("core_v1") is CORE_V1
    CORE_V1.validate()
    assert len(CORE_V1.columns) >= 20


@pytest.mark.parametrize("cut", [600, 1_777, 4_000, 5_999])
def test_a_row_is_the_same_whether_or_not_later_bars_exist(walk: pd.DataFrame, cut: int) -> None:
    full = build_features(walk, CORE_V1)
    truncated = build_features(walk.iloc[: cut + 1], CORE_V1)
    np.testing.assert_allclose(truncated.iloc[-1], full.iloc[cut], rtol=1e-9, atol=1e-12)


def test_changing_future_bars_changes_no_earlier_row(walk: pd.DataFrame) -> None:
    cut = 3_000
    changed = walk.copy()
    changed.iloc[cut + 1 :, :4] *= 1.5
    changed.iloc[cut + 1 :, 4] *= 9.0
    before = build_features(walk, CORE_V1).iloc[: cut + 1]
    after = build_features(changed, CORE_V1)
    pd.testing.assert_frame_equal(after.iloc[: cut + 1], before, rtol=1e-9)
    assert not np.allclose(after.iloc[cut + 1], before.iloc[-1], equal_nan=True)


def test_the_newest_row_from_the_trailing_warmup_matches_the_full_history(walk: pd.DataFrame) -> None:
    tail = walk.iloc[-(CORE_V1.warmup + 1) :]
    np.testing.assert_allclose(
        build_features(tail, CORE_V1).iloc[-1], build_features(walk, CORE_V1).iloc[-1], rtol=1e-6, atol=1e-8
    )


def test_every_feature_is_defined_after_the_warmup(walk: pd.DataFrame) -> None:
    features = build_features(walk, CORE_V1)
    assert not features.iloc[CORE_V1.warmup :].isna().any().any()


def test_features_do_not_depend_on_the_price_level(walk: pd.DataFrame) -> None:
    richer = walk.copy()
    richer[["open", "high", "low", "close"]] *= 1_000.0
    pd.testing.assert_frame_equal(
        build_features(richer, CORE_V1), build_features(walk, CORE_V1), rtol=1e-7, atol=1e-9
    )


def test_log_returns_look_back_the_given_number_of_bars(walk: pd.DataFrame) -> None:
    values = build_features(walk, FeatureSet("r", 1, (LogReturnFeature(3),)))["log_return_3"].to_numpy()
    close = walk["close"].to_numpy()
    assert np.isnan(values[:3]).all()
    np.testing.assert_allclose(values[3:], np.log(close[3:] / close[:-3]))


def test_volatility_is_the_std_of_the_last_window_bar_returns(walk: pd.DataFrame) -> None:
    values = build_features(walk, FeatureSet("v", 1, (VolatilityFeature(24),)))["volatility_24"]
    returns = np.log(walk["close"]).diff()
    np.testing.assert_allclose(values.iloc[24:], returns.rolling(24).std(ddof=0).iloc[24:], rtol=1e-9)
    assert values.iloc[:24].isna().all()


def test_candle_shape_splits_the_range_into_body_and_wicks() -> None:
    frame = pd.DataFrame(
        {
            "open": [10.0, 12.0],
            "high": [14.0, 12.0],
            "low": [9.0, 12.0],
            "close": [12.0, 12.0],
            "volume": [1.0, 1.0],
        }
    )
    parts = build_features(frame, FeatureSet("c", 1, tuple(CandleFeature(p) for p in CandleFeature.PARTS)))
    assert parts.iloc[0].to_dict() == pytest.approx(
        {
            "candle_body": 0.4,
            "candle_upper_wick": 0.4,
            "candle_lower_wick": 0.2,
            "candle_range": np.log(14 / 9),
        }
    )
    assert parts.iloc[1][["candle_body", "candle_upper_wick", "candle_lower_wick"]].isna().all()


def test_a_flat_volume_window_gives_a_missing_zscore_not_an_infinite_one() -> None:
    frame = pd.DataFrame({c: np.full(30, 5.0) for c in ("open", "high", "low", "close", "volume")})
    values = build_features(frame, FeatureSet("z", 1, (VolumeZScoreFeature(10),)))["volume_z_10"]
    assert values.isna().all()


def test_time_features_put_hour_and_weekday_on_the_unit_circle() -> None:
    monday_6am = pd.DatetimeIndex(["2024-01-01 06:00"], tz="UTC")
    frame = pd.DataFrame({c: [1.0] for c in ("open", "high", "low", "close", "volume")}, index=monday_6am)
    row = build_features(frame, FeatureSet("t", 1, tuple(TimeFeature(p) for p in TimeFeature.PARTS))).iloc[0]
    assert row.to_dict() == pytest.approx(
        {"time_hour_sin": 1.0, "time_hour_cos": 0.0, "time_weekday_sin": 0.0, "time_weekday_cos": 1.0},
        abs=1e-12,
    )


def test_time_features_read_an_epoch_millisecond_timestamp_column(walk: pd.DataFrame) -> None:
    as_column = walk.reset_index(drop=True)
    as_column["timestamp"] = walk.index.as_unit("ms").asi8
    time_set = FeatureSet("t", 1, tuple(TimeFeature(p) for p in TimeFeature.PARTS))
    np.testing.assert_allclose(build_features(as_column, time_set), build_features(walk, time_set))


def test_time_features_need_bar_times() -> None:
    frame = pd.DataFrame({c: [1.0] for c in ("open", "high", "low", "close", "volume")})
    with pytest.raises(FeatureError, match="DatetimeIndex"):
        build_features(frame, FeatureSet("t", 1, (TimeFeature("hour_sin"),)))


def test_a_feature_set_round_trips_through_json() -> None:
    data = json.loads(json.dumps(CORE_V1.to_dict()))
    assert (data["name"], data["version"]) == ("core", 1)
    assert FeatureSet.from_dict(data) == CORE_V1


def test_an_unknown_indicator_is_reported_by_feature_name() -> None:
    broken = FeatureSet("x", 1, (IndicatorFeature("magic", "NOPE", (3,), transform="scaled"),))
    with pytest.raises(FeatureError, match="magic: unknown indicator 'NOPE'"):
        broken.validate()


def test_an_unknown_feature_kind_is_rejected() -> None:
    with pytest.raises(FeatureError, match="unknown feature kind 'astrology'"):
        FeatureSet.from_dict({"name": "x", "version": 1, "specs": [{"kind": "astrology"}]})


def test_duplicate_columns_are_rejected() -> None:
    with pytest.raises(FeatureError, match="duplicate"):
        FeatureSet("x", 1, (LogReturnFeature(1), LogReturnFeature(1)))


def test_the_warmup_covers_ten_periods_of_the_longest_indicator() -> None:
    sma = IndicatorFeature("close_vs_sma_50", "SMA", (50,), transform="vs_close")
    assert FeatureSet("x", 1, (sma, LogReturnFeature(24))).warmup == 500


@pytest.mark.parametrize("last_rows", [1, 7])
def test_building_only_the_newest_rows_gives_the_same_values(walk: pd.DataFrame, last_rows: int) -> None:
    newest = feature_matrix(walk, CORE_V1, last_rows=last_rows)
    np.testing.assert_array_equal(newest, build_features(walk, CORE_V1).to_numpy()[-last_rows:])
