"""A sweep worker's bar files: each read once per version and kept while its runs need it.

Workers get paths, never frames: a run reads its market's Parquet file (a book's run, each member's)
and slices its window from it. The last files read stay in memory, so the runs of one market in a
row read its file once.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any

_CACHE_FILES = 2
_cache: OrderedDict[tuple[str, int, int], Any] = OrderedDict()
_cache_lock = threading.Lock()


def read_bars(path: str, since_ms: int, until_ms: int, keep: int = _CACHE_FILES) -> Any:
    """Return the bars of ``[since_ms, until_ms)`` from a Parquet bar file, read once per version.

    `keep` is how many files stay read: a book's runs read all its members' files, each run.
    """
    import pandas as pd

    from labkit.data.bars import slice_range

    stat = os.stat(path)
    key = (path, stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        bars = _cache.get(key)
        if bars is None:
            bars = pd.read_parquet(path)
            _cache[key] = bars
            while len(_cache) > max(keep, _CACHE_FILES):
                _cache.popitem(last=False)
        else:
            _cache.move_to_end(key)
    return slice_range(bars, since_ms, until_ms)
