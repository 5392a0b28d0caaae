"""Decoding in parallel, and the uint8 cache that makes it happen once.

JPEG decoding is the bottleneck of CelebA training on a CPU, so each source decodes, crops and resizes every
image once into a memory-mapped uint8 .npy in the cache folder (FACEALGEBRA_CACHE, default
~/.cache/facealgebra), beside a small JSON index.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Callable, Iterable, TypeVar

from facealgebra.progress import CountProgress

Item = TypeVar("Item")
Result = TypeVar("Result")

SERIAL_BELOW = 256  # fewer items than this are not worth starting worker processes for
CHUNK = 64


# ---- parallel decoding -----------------------------------------------------------------------------------------
def worker_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def parallel_map(function: Callable[..., Result], items: Iterable[Item], description: str, *args) -> list[Result]:
    """[function(item, *args) for item in items], over worker processes, with a progress bar on a terminal."""
    items = list(items)
    call = partial(_call_with, function, args)
    progress = CountProgress(description, len(items))
    try:
        if len(items) < SERIAL_BELOW or worker_count() == 1:
            results = []
            for item in items:
                results.append(call(item))
                progress.advance()
            return results
        results = []
        with ProcessPoolExecutor(worker_count()) as pool:
            for result in pool.map(call, items, chunksize=CHUNK):
                results.append(result)
                progress.advance()
        return results
    finally:
        progress.close()


def _call_with(function: Callable[..., Result], args: tuple, item: Item) -> Result:
    return function(item, *args)
