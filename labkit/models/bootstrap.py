"""The sequential bootstrap (AFML 4.5): a bootstrap that prefers rows whose labels overlap less.

An ordinary bootstrap draws rows uniformly. When each row's label spans several bars, neighbouring
rows tell nearly the same story, and a uniform draw fills a sample with redundant copies of it.
The sequential bootstrap draws one row at a time, each with probability proportional to the
average uniqueness it would have among the rows drawn so far (the mean over its span of
``1 / (c_u + 1)``, ``c_u`` being how many drawn rows already cover bar ``u``), so the sample's
labels overlap about as little as the data allow.

Each draw updates only the rows that share a bar with the row just drawn (an index of which rows
cover each bar), so a draw costs the cumulative sum over the candidates plus the overlap, not a
pass over a rows-by-bars indicator matrix.
"""

from __future__ import annotations

import numpy as np


def sequential_bootstrap(
    start: np.ndarray, end: np.ndarray, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """Return `draws` row indices drawn by the sequential bootstrap over label spans ``[start, end]``.

    Parameters
    ----------
    start, end
        Each candidate row's label span, in bars (integers, ``end >= start``).
    draws
        How many rows to draw (with replacement).
    rng
        The generator: the same seed gives the same draws.

    Examples
    --------
    >>> sequential_bootstrap(np.array([0, 0, 5]), np.array([3, 3, 5]), 4, np.random.default_rng(0))
    array([1, 1, 0, 0])
    """
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    n = len(start)
    if n == 0 or start.shape != end.shape or (end < start).any():
        raise ValueError(f"sequential_bootstrap: needs spans with end >= start, got {n} rows")
    if draws < 1:
        raise ValueError(f"sequential_bootstrap: draws must be >= 1, not {draws}")
    s = start - start.min()
    e = end - start.min()
    length = e - s + 1
    # Every (row, bar) pair of the rows' spans, ordered by bar: the rows covering bar t are
    # cover[first[t]:first[t + 1]].
    offsets = np.arange(int(length.sum())) - np.repeat(np.cumsum(length) - length, length)
    bars = np.repeat(s, length) + offsets
    order = np.argsort(bars, kind="stable")
    cover, bars = np.repeat(np.arange(n), length)[order], bars[order]
    first = np.searchsorted(bars, np.arange(int(e.max()) + 2))
    drawn_cover = np.zeros(int(e.max()) + 1)
    total = length.astype(np.float64)  # each row's sum of 1 / (c_u + 1) over its span, c = 0
    out = np.empty(draws, dtype=np.int64)
    for k, r in enumerate(rng.random(draws)):
        cumulative = np.cumsum(total / length)
        j = min(int(np.searchsorted(cumulative, r * cumulative[-1], side="right")), n - 1)
        out[k] = j
        pairs = slice(first[s[j]], first[e[j] + 1])
        c = drawn_cover[bars[pairs]]
        np.add.at(total, cover[pairs], 1.0 / (c + 2.0) - 1.0 / (c + 1.0))
        drawn_cover[s[j] : e[j] + 1] += 1.0
    return out
