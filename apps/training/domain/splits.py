"""Time-ordered splits with purge gaps, and walk-forward folds for out-of-sample predictions.

Positions are row numbers of consecutive bars. The label of row t reads bars t+1..t+h, so a split
that ends at row e has "seen" bars up to e-1+h. Every split below starts ``h`` rows after the
previous one ends: no bar read by an earlier split's labels is a later split's row.
"""

from __future__ import annotations

from dataclasses import dataclass

# Fewer rows in a split are no evidence: too few to fit on, stop early on, or score.
MIN_SPLIT_ROWS = 50


class SplitError(ValueError):
    """Too little history for the requested splits."""


@dataclass(frozen=True)
class Splits:
    """Row ranges for fitting, early stopping (and threshold choice), and the honest test."""

    train: slice
    validation: slice
    test: slice


@dataclass(frozen=True)
class Fold:
    """One walk-forward step: fit on ``train``, stop early on ``validation``, predict ``predict``.

    ``last_seen`` is the last bar any of the fold's labels read; every predicted row is after it.
    """

    train: slice
    validation: slice
    predict: slice
    last_seen: int


def _size(part: slice) -> int:
    return int(part.stop - part.start)


def _purged_tail(start: int, stop: int, horizon: int, tail_fraction: float) -> tuple[slice, slice]:
    """Split rows [start, stop) into a head and a tail of ``tail_fraction``, ``horizon`` rows apart."""
    usable = stop - start - horizon
    tail = round(usable * tail_fraction)
    return slice(start, stop - tail - horizon), slice(stop - tail, stop)


def time_splits(
    n_rows: int,
    horizon: int,
    *,
    validation_fraction: float = 0.15,
    test_fraction: float = 0.15,
    min_rows: int = MIN_SPLIT_ROWS,
) -> Splits:
    """Train, validation and test row ranges over ``n_rows`` labelled rows, in time order.

    The two purge gaps of ``horizon`` rows are dropped; the fractions apply to what remains.
    """
    _check_settings(horizon, validation_fraction, test_fraction)
    usable = n_rows - 2 * horizon
    n_test = round(usable * test_fraction)
    fit_stop = n_rows - n_test - horizon
    train, validation = _purged_tail(0, fit_stop, horizon, validation_fraction / (1 - test_fraction))
    splits = Splits(train, validation, slice(n_rows - n_test, n_rows))
    sizes = {name: _size(getattr(splits, name)) for name in ("train", "validation", "test")}
    if min(sizes.values()) < min_rows:
        raise SplitError(
            f"{n_rows} labelled rows give train/validation/test of "
            f"{sizes['train']}/{sizes['validation']}/{sizes['test']}; each needs at least {min_rows}"
        )
    return splits


def _check_settings(horizon: int, validation_fraction: float, test_fraction: float) -> None:
    if horizon < 1:
        raise SplitError(f"horizon must be at least 1 bar, got {horizon}")
    fractions_ok = min(validation_fraction, test_fraction) > 0 and validation_fraction + test_fraction < 1
    if not fractions_ok:
        raise SplitError("validation_fraction and test_fraction must be positive and sum to less than 1")


def time_splits_min_rows(
    horizon: int,
    *,
    validation_fraction: float = 0.15,
    test_fraction: float = 0.15,
    min_rows: int = MIN_SPLIT_ROWS,
) -> int:
    """The fewest labelled rows :func:`time_splits` accepts with these settings.

    Found by asking ``time_splits`` itself, from the count that would fit three splits of
    ``min_rows`` and two purge gaps with no rounding, so it cannot drift from what training does.
    """
    _check_settings(horizon, validation_fraction, test_fraction)
    n_rows = 3 * min_rows + 2 * horizon
    while True:
        try:
            time_splits(
                n_rows,
                horizon,
                validation_fraction=validation_fraction,
                test_fraction=test_fraction,
                min_rows=min_rows,
            )
        except SplitError:
            n_rows += 1
        else:
            return n_rows


def walk_forward_folds(
    n_rows: int,
    horizon: int,
    *,
    min_train: int,
    step: int,
    first_row: int = 0,
    max_train: int | None = None,
    validation_fraction: float = 0.15,
) -> list[Fold]:
    """Folds whose predictions cover rows ``first_row + min_train + horizon`` .. ``n_rows - 1``.

    Fold k fits rows [a, e) with ``e = first_row + min_train + k * step`` (``a`` trails by at most
    ``max_train`` rows, else starts at ``first_row``) and predicts rows [e + h, e + h + step): the
    fitted labels end at bar e - 1 + h, before the first predicted row. Rows of the last ``h`` bars
    have features but no label: they are predicted, never fitted.
    """
    if step < 1 or min_train < 1:
        raise SplitError("step and min_train must be at least 1")
    folds = []
    fit_stop = first_row + min_train
    while fit_stop + horizon < n_rows:
        fit_start = first_row if max_train is None else max(first_row, fit_stop - max_train)
        train, validation = _purged_tail(fit_start, fit_stop, horizon, validation_fraction)
        if _size(train) < 1 or _size(validation) < 1:
            raise SplitError(
                f"min_train={min_train} leaves no room for a purged validation tail (h={horizon})"
            )
        predict = slice(fit_stop + horizon, min(fit_stop + horizon + step, n_rows))
        folds.append(Fold(train, validation, predict, last_seen=fit_stop - 1 + horizon))
        fit_stop += step
    return folds
