"""Splits: time-ordered, purged by the horizon, and walk-forward folds that never predict what they saw."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.training.domain.splits import SplitError, time_splits, walk_forward_folds


def test_splits_are_in_time_order_with_a_gap_of_h_rows_between_them() -> None:
    splits = time_splits(10_000, 6)
    assert splits.train.start == 0
    assert splits.validation.start == splits.train.stop + 6
    assert splits.test.start == splits.validation.stop + 6
    assert splits.test.stop == 10_000


def test_the_fractions_apply_to_the_rows_left_after_the_gaps() -> None:
    splits = time_splits(10_024, 12, validation_fraction=0.2, test_fraction=0.1)
    sizes = [s.stop - s.start for s in (splits.train, splits.validation, splits.test)]
    assert sizes == [7_000, 2_000, 1_000]


@given(
    n_rows=st.integers(400, 50_000),
    horizon=st.integers(1, 48),
    validation_fraction=st.floats(0.1, 0.3),
    test_fraction=st.floats(0.1, 0.3),
)
def test_no_label_of_a_split_reads_a_bar_of_the_next_split(
    n_rows: int, horizon: int, validation_fraction: float, test_fraction: float
) -> None:
    splits = time_splits(
        n_rows, horizon, validation_fraction=validation_fraction, test_fraction=test_fraction, min_rows=1
    )
    # The label of row t reads bars up to t + horizon.
    assert (splits.train.stop - 1) + horizon < splits.validation.start
    assert (splits.validation.stop - 1) + horizon < splits.test.start
    assert splits.test.stop == n_rows


def test_it_refuses_a_history_too_short_for_three_splits() -> None:
    with pytest.raises(SplitError, match="each needs at least 50"):
        time_splits(300, 24)


def test_it_refuses_fractions_that_leave_no_training_rows() -> None:
    with pytest.raises(SplitError, match="sum to less than 1"):
        time_splits(1_000, 1, validation_fraction=0.5, test_fraction=0.5)


@given(
    n_rows=st.integers(300, 5_000),
    horizon=st.integers(1, 24),
    min_train=st.integers(100, 250),
    step=st.integers(1, 400),
    max_train=st.one_of(st.none(), st.integers(100, 400)),
)
def test_every_walk_forward_prediction_comes_after_all_bars_its_model_saw(
    n_rows: int, horizon: int, min_train: int, step: int, max_train: int | None
) -> None:
    folds = walk_forward_folds(
        n_rows, horizon, min_train=min_train, step=step, first_row=30, max_train=max_train
    )
    for fold in folds:
        assert fold.train.stop - 1 + horizon < fold.validation.start
        assert fold.last_seen == fold.validation.stop - 1 + horizon
        assert fold.last_seen < fold.predict.start
        assert fold.train.start >= 30
        if max_train is not None:
            assert fold.validation.stop - fold.train.start <= max_train


def test_walk_forward_predictions_cover_the_history_once_from_the_first_fold_on() -> None:
    folds = walk_forward_folds(1_000, 5, min_train=200, step=150, first_row=40)
    predicted = [row for fold in folds for row in range(fold.predict.start, fold.predict.stop)]
    assert predicted == list(range(40 + 200 + 5, 1_000))


def test_a_walk_forward_model_is_refitted_every_step_on_all_earlier_rows() -> None:
    folds = walk_forward_folds(1_000, 1, min_train=200, step=300, first_row=0)
    assert [(f.train.start, f.validation.stop) for f in folds] == [(0, 200), (0, 500), (0, 800)]


def test_a_rolling_walk_forward_window_keeps_only_max_train_rows() -> None:
    folds = walk_forward_folds(1_000, 1, min_train=200, step=300, max_train=250)
    assert [(f.train.start, f.validation.stop) for f in folds] == [(0, 200), (250, 500), (550, 800)]
