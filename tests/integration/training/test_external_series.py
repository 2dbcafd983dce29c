"""ML_PROBA and ML_RETURN for backtests: walk-forward outputs that no model which saw the bar produced."""

from __future__ import annotations

import numpy as np
import pytest

from apps.market import selectors as market
from apps.training import selectors
from apps.training import series as training_series
from apps.training.services.promotion import model_promote_if_better
from tests.integration.training.conftest import SCHEDULED_LOOKBACK, train_now

pytestmark = pytest.mark.django_db

WARMUP = 500  # bars the core v1 features need behind a row
BARS = 3000


@pytest.fixture
def recent(btc_hourly):
    """The newest 3000 bars: the window a backtest would run over, with stored history before it."""
    return market.candles_frame(instrument=btc_hourly, timeframe="1h", limit=BARS)


def test_both_series_are_aligned_to_the_frame_and_predicted_from_its_first_bar(btc_hourly, recent):
    series = training_series.ml_series_compute(instrument=btc_hourly, timeframe="1h", frame=recent)

    assert set(series) == {"ML_PROBA", "ML_RETURN"}
    assert all(len(values) == len(recent) for values in series.values())
    # The stored bars before the frame hold a whole lookback window: every bar has a prediction.
    assert np.isfinite(series["ML_PROBA"]).all()
    assert ((series["ML_PROBA"] > 0) & (series["ML_PROBA"] < 1)).all()
    assert np.isfinite(series["ML_RETURN"]).all()
    assert np.abs(series["ML_RETURN"]).max() < 0.1


def test_changing_later_bars_never_changes_an_earlier_value(btc_hourly, recent):
    cut = 1700
    altered = recent.copy()
    altered.iloc[cut:, :4] *= np.linspace(1.0, 1.3, len(recent) - cut)[:, None]

    before = training_series.ml_series_compute(instrument=btc_hourly, timeframe="1h", frame=recent)
    after = training_series.ml_series_compute(instrument=btc_hourly, timeframe="1h", frame=altered)

    for name in ("ML_PROBA", "ML_RETURN"):
        np.testing.assert_array_equal(before[name][:cut], after[name][:cut], err_msg=name)
        assert not np.array_equal(before[name][cut:], after[name][cut:]), name


def test_bars_no_model_could_have_predicted_yet_are_nan(btc_hourly):
    oldest = market.candles_frame(instrument=btc_hourly, timeframe="1h", end=None)[:BARS]

    proba = training_series.ml_series_compute(instrument=btc_hourly, timeframe="1h", frame=oldest)["ML_PROBA"]

    # The first model needs the features' warm-up and a lookback window, then a purge gap of 1 bar.
    first = WARMUP + SCHEDULED_LOOKBACK + 1  # TRAINING_LOOKBACK_BARS: no champion to copy
    assert np.isnan(proba[:first]).all()
    assert np.isfinite(proba[first:]).all()


def test_the_series_follow_the_champions_settings(btc_hourly, recent):
    default = training_series.ml_series_compute(instrument=btc_hourly, timeframe="1h", frame=recent)
    champion = train_now(hyperparameters={"max_depth": 2, "n_estimators": 50})
    assert model_promote_if_better(candidate=champion).promoted

    following = training_series.ml_series_compute(instrument=btc_hourly, timeframe="1h", frame=recent)

    assert not np.array_equal(default["ML_PROBA"], following["ML_PROBA"], equal_nan=True)
    np.testing.assert_array_equal(default["ML_RETURN"], following["ML_RETURN"])  # no return champion


def test_readers_see_the_series_only_once_the_training_side_computed_them(btc_hourly, recent):
    assert selectors.ml_series_stored(instrument=btc_hourly, timeframe="1h", frame=recent) is None

    computed = training_series.ml_series_compute(instrument=btc_hourly, timeframe="1h", frame=recent)
    stored = selectors.ml_series_stored(instrument=btc_hourly, timeframe="1h", frame=recent)

    for name in ("ML_PROBA", "ML_RETURN"):
        np.testing.assert_array_equal(stored[name], computed[name])
    newer = market.candles_frame(instrument=btc_hourly, timeframe="1h", limit=BARS - 1)
    assert selectors.ml_series_stored(instrument=btc_hourly, timeframe="1h", frame=newer) is None


def test_a_repeated_request_is_answered_from_the_cache(btc_hourly, recent, monkeypatch):
    fits = []
    fit = training_series.walk_forward
    monkeypatch.setattr(training_series, "walk_forward", lambda *a, **k: fits.append(1) or fit(*a, **k))

    first = training_series.ml_series_compute(instrument=btc_hourly, timeframe="1h", frame=recent)
    second = training_series.ml_series_compute(instrument=btc_hourly, timeframe="1h", frame=recent)

    assert len(fits) == 2  # one walk-forward per series, the first time only
    np.testing.assert_array_equal(first["ML_PROBA"], second["ML_PROBA"])


def test_an_empty_frame_gives_empty_series(btc_hourly, recent):
    series = training_series.ml_series_compute(instrument=btc_hourly, timeframe="1h", frame=recent.iloc[:0])

    assert {name: len(values) for name, values in series.items()} == {"ML_PROBA": 0, "ML_RETURN": 0}
