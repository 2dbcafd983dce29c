"""The stationary block bootstrap of bar returns, with path statistics computed from blocks, not bars.

The resampling is Politis & Romano (1994), "The Stationary Bootstrap", Journal of the American
Statistical Association 89(428): a path of ``T`` bars is a chain of blocks, each starting at a bar drawn
uniformly from the ``T`` of the series and lasting a geometric number of bars with mean ``L`` (the
series wraps around its end), until ``T`` bars are filled (the last block is cut).

Materialising 1,000 paths of a million bars is 8 GB and about ten passes over it, so each path's final
return, maximum drawdown and drawdown duration are computed exactly from per-block summaries instead.
With ``S`` the log equity at the bar boundaries (``S_0 = 0``, ``S_{t+1} = S_t + log(1 + r_t)``), a block
of bars ``a .. a+l-1`` moves the path by ``S_{a+j} - S_a``. It is summarised by its total move, highest
and lowest point, deepest internal drawdown and the offset of its *last* highest point (where a peak
stands before the path goes under), all read in O(1) from a range structure built once over ``S``
(:class:`_RangeStats`). Per path, running sums and maxima over its blocks then give:

* the final log return: the sum of the moves;
* the maximum drawdown: for each block, the deeper of its internal drawdown and the fall from the
  path's high before it to the block's lowest point;
* the drawdown duration (as in :mod:`..metrics`: from the last bar at a high to the first bar back at or
  above it, or to the last bar): a stretch under water that ends inside a block ends at the first bar
  where the block reaches the old high, which takes a search. Every stretch is first bracketed by
  bounds the summaries give; only blocks whose upper bound could beat the path's best lower bound are
  searched, bar by bar, so the result is exact and the search touches few blocks;
* the level after a given number of bars (for a chart's fan of paths): the level where the block
  holding that bar starts, plus the block's move up to it, read in ``S``.

The result equals building every path bar by bar (tested). A bar return of -100% or worse is taken as
a loss of all but 1e-12 of the equity (the log of 0 has no value). Cost: O(T) to build the structure
plus O(paths * T / L) for the paths, so ``L`` sets the speed as well as how much serial dependence
survives the resampling; memory peaks near 150 MB for a million bars, whatever the number of paths.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import cast

import numpy as np
from numpy.typing import NDArray

_GROUP_BLOCKS = 2**16  # blocks drawn and summarised together: enough for numpy, few for memory
_SEARCH_POINTS = 2**22  # bar levels gathered per step of the duration search
RUIN_FLOOR = 1e-12  # what a loss of everything keeps of the equity: log(0) has no value
# Record columns: highest level, lowest level, deepest drawdown, last position of the highest level.
_MAX, _MIN, _DD, _AT = range(4)


class BootstrapError(ValueError):
    """Returns, paths or a block length the bootstrap cannot use."""


def default_mean_block_length(bars: int) -> float:
    """``sqrt(T)``: long enough to keep a strategy's holding periods and volatility regimes inside
    blocks, and a cost of O(paths * sqrt(T)). Politis & White's (2004) rate T^(1/3) targets the variance
    of the mean, not path statistics such as a drawdown."""
    return max(1.0, math.sqrt(bars))


def stationary_bootstrap_indices(
    bars: int, *, paths: int, mean_block_length: float, seed: int
) -> NDArray[np.int64]:
    """The bar indices of each path, shape (paths, bars): the same draws :func:`bootstrap_statistics`
    uses for the same arguments, materialised (for inspection and tests, not for long series)."""
    rows = []
    for starts, lengths in _blocks(bars, paths, mean_block_length, seed):
        flat_starts, flat_lengths = starts.ravel(), lengths.ravel()
        offsets = np.arange(bars * len(starts)) - np.repeat(
            np.cumsum(flat_lengths) - flat_lengths, flat_lengths
        )
        rows.append(((np.repeat(flat_starts, flat_lengths) + offsets) % bars).reshape(len(starts), bars))
    return np.concatenate(rows)


def bootstrap_statistics(
    returns: NDArray[np.float64],
    *,
    paths: int,
    mean_block_length: float,
    seed: int,
    steps: NDArray[np.int64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]:
    """Per path: the final log return, the maximum drawdown in log terms, the longest drawdown in bars
    and (one column per step) the log return after each of ``steps`` bars (0 to ``len(returns)``)."""
    levels = _log_equity(returns)
    bars = len(levels) - 1
    _check(paths, mean_block_length)
    points = np.asarray(steps, dtype=np.int64)
    if points.ndim != 1 or ((points < 0) | (points > bars)).any():
        raise BootstrapError(f"steps must be numbers of bars from 0 to {bars}")
    ranges = _RangeStats(levels, _chunk_bars(mean_block_length))
    results = [
        _path_statistics(levels, ranges, starts, lengths, points)
        for starts, lengths in _blocks(bars, paths, mean_block_length, seed)
    ]
    final, worst, durations, sampled = (np.concatenate(column) for column in zip(*results, strict=True))
    return final, worst, durations, sampled


def _log_equity(returns: NDArray[np.float64]) -> NDArray[np.float64]:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1 or len(r) == 0 or not np.isfinite(r).all():
        raise BootstrapError("returns must be a non-empty one-dimensional array of finite numbers")
    return np.concatenate(([0.0], np.cumsum(np.log(np.maximum(1.0 + r, RUIN_FLOOR)))))


def _blocks(
    bars: int, paths: int, mean_block_length: float, seed: int
) -> Iterator[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """(starts, lengths) of the blocks of successive groups of paths, one row per path; each row's
    lengths sum to ``bars``, with zero-length blocks after the last one.

    Paths are drawn in groups from one seeded stream, whole groups even when fewer paths are wanted,
    and a group's size depends only on ``bars`` and ``mean_block_length``, so that path ``i`` is the
    same whatever the number of paths asked for."""
    _check(paths, mean_block_length)
    rng = np.random.default_rng(seed)
    # log(1 - p) for p = 1 / L; floor(E / -log(1 - p)) + 1 is geometric with mean L for E ~ Exp(1).
    scale = -math.log1p(-1.0 / mean_block_length) if mean_block_length > 1.0 else math.inf
    expected = bars / mean_block_length
    width = math.ceil(expected + 6.0 * math.sqrt(expected) + 8.0)  # enough blocks but for a rare path
    group = max(1, _GROUP_BLOCKS // width)
    for first in range(0, paths, group):
        lengths = np.minimum(rng.standard_exponential((group, width)) / scale, bars).astype(np.int64) + 1
        starts = rng.integers(0, bars, (group, width))
        while (lengths.sum(axis=1) < bars).any():
            more = np.minimum(rng.standard_exponential((group, width)) / scale, bars).astype(np.int64) + 1
            lengths = np.concatenate((lengths, more), axis=1)
            starts = np.concatenate((starts, rng.integers(0, bars, (group, width))), axis=1)
        rows = min(group, paths - first)
        before = np.cumsum(lengths[:rows], axis=1) - lengths[:rows]
        lengths = np.clip(bars - before, 0, lengths[:rows])
        used = int((lengths > 0).sum(axis=1).max())
        yield starts[:rows, :used], lengths[:, :used]


def _check(paths: int, mean_block_length: float) -> None:
    if isinstance(paths, bool) or not isinstance(paths, int) or paths < 1:
        raise BootstrapError(f"paths must be a whole number >= 1, got {paths!r}")
    if not mean_block_length >= 1.0 or not math.isfinite(mean_block_length):
        raise BootstrapError(
            f"the mean block length must be a number of bars >= 1, got {mean_block_length!r}"
        )


def _chunk_bars(mean_block_length: float) -> int:
    """Bars per chunk of the range structure: about an eighth of a block, so that few blocks fall
    inside one chunk (those are summarised by brute force), and a power of two from 16 (more chunks
    would make the table over them large) to 64."""
    return 1 << min(6, max(4, int(math.log2(max(mean_block_length, 1.0) / 8.0))))


def _path_statistics(
    levels: NDArray[np.float64],
    ranges: _RangeStats,
    starts: NDArray[np.int64],
    lengths: NDArray[np.int64],
    steps: NDArray[np.int64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]:
    bars = len(levels) - 1
    move, high, low, drawdown, top = _block_summaries(levels, ranges, starts, lengths)
    # Path scans over its blocks: level at each block's start, and the path's high before the block.
    # Shifted, not ``cumsum - move``: a block must start exactly where the previous one ended, or a
    # path resting at its high would dip below it by a rounding error.
    start_level = np.zeros_like(move)
    np.cumsum(move[:, :-1], axis=1, out=start_level[:, 1:])
    crest = start_level + high
    peak = np.zeros_like(crest)
    np.maximum.accumulate(crest[:, :-1], axis=1, out=peak[:, 1:])
    worst = np.maximum(drawdown, peak - (start_level + low)).max(axis=1)
    final = start_level[:, -1] + move[:, -1]
    durations = _durations(levels, starts, lengths, start_level, peak, crest, top, bars)
    return final, worst, durations, _levels_at(levels, starts, lengths, start_level, steps)


def _levels_at(
    levels: NDArray[np.float64],
    starts: NDArray[np.int64],
    lengths: NDArray[np.int64],
    start_level: NDArray[np.float64],
    steps: NDArray[np.int64],
) -> NDArray[np.float64]:
    """Each path's level after each of ``steps`` bars: where the block holding the step's last bar
    starts, plus the block's move up to the step (the arithmetic of the block summaries, so the last
    step equals the final return exactly). Step 0 reads the first block's start: 0."""
    bars = len(levels) - 1
    rows = len(starts)
    offset = np.cumsum(lengths, axis=1) - lengths
    # Offsets rise along a row and stay <= T: shifted by row * (T + 1) they sort across rows, so one
    # search finds the block of every (path, step).
    shift = np.arange(rows)[:, None] * (bars + 1)
    last_bar = np.maximum(steps - 1, 0)
    block = np.searchsorted((offset + shift).ravel(), (shift + last_bar).ravel(), side="right") - 1
    block = block.reshape(rows, len(steps))
    first = starts.ravel()[block]
    point = first + steps - offset.ravel()[block]
    # A block past the series' end wraps round: its levels continue from S_T.
    level = np.where(
        point > bars, levels[-1] + levels[np.minimum(point - bars, bars)], levels[np.minimum(point, bars)]
    )
    return start_level.ravel()[block] + (level - levels[first])


def _block_summaries(
    levels: NDArray[np.float64], ranges: _RangeStats, starts: NDArray[np.int64], lengths: NDArray[np.int64]
) -> tuple[
    NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]
]:
    """Per block: move, highest and lowest point relative to its start, internal drawdown, and the
    offset of its last highest point. Zero-length blocks are all zeros."""
    bars = len(levels) - 1
    real = lengths > 0
    first, count = starts[real], lengths[real]
    last = first + count - 1
    wraps = np.flatnonzero(last >= bars)
    records = ranges.query(first, np.minimum(last, bars - 1))
    if len(wraps):
        # The wrapped part continues from S_T: its levels are S_T + S_j at virtual positions T + j.
        tail = ranges.query(np.zeros(len(wraps), dtype=np.int64), last[wraps] - bars)
        tail[[_MAX, _MIN]] += levels[-1]
        tail[_AT] += bars
        records[:, wraps] = _combine(records[:, wraps], tail)
    base = levels[first]
    end = np.where(
        last >= bars,
        levels[-1] + levels[np.minimum(last + 1 - bars, bars)],
        levels[np.minimum(last + 1, bars)],
    )
    out = [np.zeros(starts.shape) for _ in range(4)]
    for array, values in zip(
        out, (end - base, records[_MAX] - base, records[_MIN] - base, records[_DD]), strict=True
    ):
        array[real] = values
    top = np.zeros(starts.shape, dtype=np.int64)
    top[real] = records[_AT].astype(np.int64) - first
    move, high, low, drawdown = out
    return move, high, low, drawdown, top


def _durations(
    levels: NDArray[np.float64],
    starts: NDArray[np.int64],
    lengths: NDArray[np.int64],
    start_level: NDArray[np.float64],
    peak: NDArray[np.float64],
    crest: NDArray[np.float64],
    top: NDArray[np.int64],
    bars: int,
) -> NDArray[np.int64]:
    """The longest stretch under water of each path, in bars (see the module docstring)."""
    offset = np.cumsum(lengths, axis=1) - lengths
    reaches = crest >= peak  # the block gets back to (or starts at) the path's high
    at_high = peak == start_level
    last_high = np.where(reaches, offset + top, -1)  # path position of the block's last high point
    previous = np.zeros_like(last_high)
    np.maximum.accumulate(last_high[:, :-1], axis=1, out=previous[:, 1:])
    open_end = bars - last_high.max(axis=1)
    # A stretch ending in a block ends at its first bar back at the high: at its start if it starts
    # there, else one bar later at the earliest and at its last high point at the latest.
    lower = np.where(at_high, offset, offset + 1) - previous
    upper = np.where(at_high, offset, offset + top) - previous
    inner = np.where(at_high, top, top - 1)  # longest stretch inside the block, at most
    best = np.maximum(open_end, np.where(reaches, _stretch(lower), 0).max(axis=1))
    search = reaches & ((~at_high & (_stretch(upper) > best[:, None])) | (_stretch(inner) > best[:, None]))
    rows, columns = np.nonzero(search)
    if len(rows):
        crossing, longest_inside = _search(
            levels, starts[rows, columns], top[rows, columns], start_level[rows, columns], peak[rows, columns]
        )
        found = np.maximum(
            _stretch(offset[rows, columns] + crossing - previous[rows, columns]), longest_inside
        )
        np.maximum.at(best, rows, found)
    return cast(NDArray[np.int64], best.astype(np.int64))  # numpy types a reduction over an axis as Any


def _stretch(gap: NDArray[np.int64]) -> NDArray[np.int64]:
    """A gap between two bars at the high is a stretch under water only if some bar lies between them."""
    return np.where(gap >= 2, gap, 0)


def _search(
    levels: NDArray[np.float64],
    starts: NDArray[np.int64],
    tops: NDArray[np.int64],
    start_level: NDArray[np.float64],
    peak: NDArray[np.float64],
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """For blocks that reach the path's high: the offset of the first bar back at it, and the longest
    stretch under water between that bar and the block's last high point, bar by bar."""
    bars = len(levels) - 1
    crossing, longest = np.zeros(len(starts), dtype=np.int64), np.zeros(len(starts), dtype=np.int64)
    order = np.argsort(tops, kind="stable")
    position = 0
    while position < len(order):
        count = max(1, _SEARCH_POINTS // (int(tops[order[position]]) + 1))
        while (
            count > 1
            and count * (int(tops[order[min(position + count, len(order)) - 1]]) + 1) > _SEARCH_POINTS
        ):
            count //= 2
        batch = order[position : position + count]
        steps = np.arange(int(tops[batch].max()) + 1)
        # Points past a block's last high point repeat it: at the high, they add no stretch.
        point = starts[batch, None] + np.minimum(steps, tops[batch, None])
        level = np.where(
            point > bars, levels[-1] + levels[np.minimum(point - bars, bars)], levels[np.minimum(point, bars)]
        )
        # The same arithmetic as the block summaries, so the block's high compares as it did there.
        path_level = start_level[batch, None] + (level - levels[starts[batch], None])
        first = np.argmax(path_level >= peak[batch, None], axis=1)
        after = steps >= first[:, None]
        masked = np.where(after, level, -np.inf)
        high = after & (masked >= np.maximum.accumulate(masked, axis=1))
        last_high = np.maximum.accumulate(np.where(high, steps, -1), axis=1)
        closing = high[:, 1:] & (steps[1:] > first[:, None])
        gaps = np.where(closing, steps[1:] - last_high[:, :-1], 0)
        crossing[batch] = first
        longest[batch] = _stretch(gaps).max(axis=1, initial=0)
        position += len(batch)
    return crossing, longest


class _RangeStats:
    """Highest and lowest level, deepest drawdown and last position of the highest level of ``levels``
    (points ``0..T``) over any run of bars ``first..last`` (points ``first..last+1``), in O(1) per run.

    Bars are grouped in chunks of ``chunk`` bars. Each bar keeps the record of the run from it to the end
    of its chunk and from its chunk's start to it; a disjoint sparse table over chunk records answers
    any run of whole chunks with two records. A run spanning chunks is then suffix + whole chunks +
    prefix; a run inside one chunk (shorter than a chunk) is summarised from its levels directly.
    """

    def __init__(self, levels: NDArray[np.float64], chunk: int) -> None:
        self.levels, self.chunk = levels, chunk
        bars = len(levels) - 1
        chunks = -(-bars // chunk)
        padded = np.concatenate((levels, np.full(chunks * chunk + 1 - len(levels), levels[-1])))
        before, after = padded[:-1], padded[1:]
        position = np.arange(chunks * chunk, dtype=np.float64)
        # One record per bar: its two end points.
        bar_records = (
            np.maximum(before, after),
            np.minimum(before, after),
            np.maximum(before - after, 0.0),
            np.where(after >= before, position + 1, position),
        )
        grouped = tuple(values.reshape(chunks, chunk) for values in bar_records)
        self.prefix = np.stack(_prefix_scan(grouped), axis=-1).reshape(-1, 4)
        self.suffix = np.stack(_suffix_scan(grouped), axis=-1).reshape(-1, 4)
        self.whole = self.suffix[::chunk]
        self.depth = max(1, math.ceil(math.log2(chunks)))
        size = 1 << self.depth
        base = np.concatenate((self.whole, np.repeat(self.whole[-1:], size - chunks, axis=0)))
        self.table: NDArray[np.float64] = np.empty((self.depth, size, 4))  # then (depth * size, 4)
        for level in range(self.depth):
            half = 1 << level
            pairs = base.reshape(size // (2 * half), 2, half, 4)
            out = self.table[level].reshape(size // (2 * half), 2, half, 4)
            out[:, 0] = np.stack(_suffix_scan(tuple(pairs[:, 0, :, q] for q in range(4))), axis=-1)
            out[:, 1] = np.stack(_prefix_scan(tuple(pairs[:, 1, :, q] for q in range(4))), axis=-1)
        self.table = self.table.reshape(-1, 4)
        self.size = size

    def query(self, first: NDArray[np.int64], last: NDArray[np.int64]) -> NDArray[np.float64]:
        """Records (4, n) of the runs of bars ``first[i]..last[i]`` (inclusive, first <= last)."""
        chunk = self.chunk
        left, right = first // chunk, last // chunk
        head, tail = _gather(self.suffix, first), _gather(self.prefix, last)
        # Whole chunks strictly between: two table records, or none (the neutral record). Runs with
        # no whole chunk between their ends look up a valid entry and discard it.
        low = np.minimum(left + 1, len(self.whole) - 1)
        high = np.maximum(np.minimum(right - 1, len(self.whole) - 1), low)
        level = np.maximum(np.frexp((low ^ high).astype(np.float64))[1] - 1, 0)
        middle = _combine(
            _gather(self.table, level * self.size + low), _gather(self.table, level * self.size + high)
        )
        single = np.flatnonzero(low == high)
        middle[:, single] = _gather(self.whole, low[single])
        middle[:, right - left < 2] = np.array([[-np.inf], [np.inf], [0.0], [-1.0]])
        records = _combine(_combine(head, middle), tail)
        inside = np.flatnonzero(left == right)
        if len(inside):
            records[:, inside] = self._brute_force(first[inside], last[inside])
        return records

    def _brute_force(self, first: NDArray[np.int64], last: NDArray[np.int64]) -> NDArray[np.float64]:
        steps = np.arange(self.chunk + 1)
        # Points past the run's end repeat its last level: no new high, low or drawdown.
        points = np.minimum(first[:, None] + steps, last[:, None] + 1)
        window = self.levels[points]
        highest = window.max(axis=1)
        from_end = np.argmax(window[:, ::-1] == highest[:, None], axis=1)
        last_top = points[np.arange(len(points)), self.chunk - from_end]
        drawdown = (np.maximum.accumulate(window, axis=1) - window).max(axis=1)
        return np.stack((highest, window.min(axis=1), drawdown, last_top.astype(np.float64)))


def _gather(table: NDArray[np.float64], rows: NDArray[np.int64]) -> NDArray[np.float64]:
    """Rows of an (n, 4) table as a (4, len(rows)) array: one random read per record, then columns."""
    return np.ascontiguousarray(np.take(table, rows, axis=0).T)


def _combine(first: NDArray[np.float64], then: NDArray[np.float64]) -> NDArray[np.float64]:
    """The records (4, n) of runs followed by the runs that start at their last points."""
    out = np.empty_like(first)
    np.maximum(first[_MAX], then[_MAX], out=out[_MAX])
    np.minimum(first[_MIN], then[_MIN], out=out[_MIN])
    np.subtract(first[_MAX], then[_MIN], out=out[_DD])
    np.maximum(out[_DD], first[_DD], out=out[_DD])
    np.maximum(out[_DD], then[_DD], out=out[_DD])
    # Ties go to the later point: the last high.
    np.copyto(out[_AT], np.where(then[_MAX] >= first[_MAX], then[_AT], first[_AT]))
    return out


def _prefix_scan(records: tuple[NDArray[np.float64], ...]) -> tuple[NDArray[np.float64], ...]:
    """Records of the runs from the first item to each item, along the last axis of (n, items) arrays."""
    highest, lowest, drawdown, at = records
    running = np.maximum.accumulate(highest, axis=-1)
    before = np.concatenate((np.full((*highest.shape[:-1], 1), -np.inf), running[..., :-1]), axis=-1)
    return (
        running,
        np.minimum.accumulate(lowest, axis=-1),
        np.maximum.accumulate(np.maximum(drawdown, before - lowest), axis=-1),
        np.maximum.accumulate(np.where(highest >= before, at, -1.0), axis=-1),
    )


def _suffix_scan(records: tuple[NDArray[np.float64], ...]) -> tuple[NDArray[np.float64], ...]:
    """Records of the runs from each item to the last, along the last axis of (n, items) arrays."""
    highest, lowest, drawdown, at = (values[..., ::-1] for values in records)
    running = np.maximum.accumulate(highest, axis=-1)
    later_high = np.concatenate((np.full((*highest.shape[:-1], 1), -np.inf), running[..., :-1]), axis=-1)
    later_low = np.concatenate(
        (np.full((*lowest.shape[:-1], 1), np.inf), np.minimum.accumulate(lowest, axis=-1)[..., :-1]), axis=-1
    )
    scanned = (
        running,
        np.minimum.accumulate(lowest, axis=-1),
        np.maximum.accumulate(np.maximum(drawdown, highest - later_low), axis=-1),
        # An item holds the run's last high only if it beats everything after it; items are in
        # order, so among those the earliest (the smallest position) holds the highest level.
        np.minimum.accumulate(np.where(highest > later_high, at, np.inf), axis=-1),
    )
    return tuple(values[..., ::-1] for values in scanned)
