"""Decoding in parallel, and the uint8 cache that makes it happen once.

JPEG decoding is the bottleneck of CelebA training on a CPU, so a source decodes, crops and resizes every image
once into `<key>.npy` (uint8 (N, C, H, W), memory-mapped when read) beside `<key>.json`, its index, in the cache
folder (FACEALGEBRA_CACHE, default ~/.cache/facealgebra). The key hashes everything the pixels depend on: the
source, the preprocessing recipe and the file list with sizes and modification times, so any change to them
gives a new key and a rebuild. The index is written last and atomically: a build killed half way leaves no
index, and an .npy without its index is never read.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

from facealgebra.errors import FaceAlgebraError
from facealgebra.fileio import atomic_path, check_writable_dir, write_bytes_atomic
from facealgebra.images import load_for_model
from facealgebra.progress import CountProgress

Item = TypeVar("Item")
Result = TypeVar("Result")

SERIAL_BELOW = 256  # fewer items than this are not worth starting worker processes for
CHUNK = 64
INDEX_FORMAT = "facealgebra-cache/1"
SHOWN_FAILURES = 3


# ---- parallel decoding -----------------------------------------------------------------------------------------
def worker_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def parallel_imap(function: Callable[..., Result], items: list[Item], description: str, *args) -> Iterator[Result]:
    """function(item, *args) for each item, in order, over worker processes, with a progress bar on a terminal."""
    call = partial(_call_with, function, args)
    progress = CountProgress(description, len(items))
    try:
        if len(items) < SERIAL_BELOW or worker_count() == 1:
            results: Iterable[Result] = map(call, items)
            for result in results:
                progress.advance()
                yield result
            return
        with ProcessPoolExecutor(worker_count()) as pool:
            for result in pool.map(call, items, chunksize=CHUNK):
                progress.advance()
                yield result
    finally:
        progress.close()


def _call_with(function: Callable[..., Result], args: tuple, item: Item) -> Result:
    return function(item, *args)


def decode_or_none(path: Path, recipe: dict) -> np.ndarray | None:
    """A photo as model input, or None when it cannot be read (the caller skips it and says so once)."""
    try:
        return load_for_model(path, recipe)
    except FaceAlgebraError:
        return None


# ---- the cache -------------------------------------------------------------------------------------------------
@dataclass
class Decoded:
    images: np.ndarray  # uint8 (kept, C, H, W), memory-mapped from the cache
    kept: list[int]  # positions in the item list that `images` holds, in order
    failed: list[str]  # the items that could not be decoded


class NothingDecoded(Exception):
    def __init__(self, failed: list[str]):
        super().__init__(f"none of {len(failed)} item(s) could be decoded")
        self.failed = failed


def cache_dir() -> Path:
    return Path(os.environ.get("FACEALGEBRA_CACHE") or Path.home() / ".cache" / "facealgebra").expanduser()


def file_signature(paths: list[Path]) -> list[tuple[str, int, int]]:
    """What the cache key needs to notice a changed file list: path, size and modification time of each file."""
    signature = []
    for path in paths:
        stat = path.stat()
        signature.append((str(path.resolve()), stat.st_size, stat.st_mtime_ns))
    return signature


def cache_key(description: dict) -> str:
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:32]


def cached_decode(key_description: dict, items: list[Item], function: Callable[..., np.ndarray | None],
                  *args, label: str) -> Decoded:
    """function(item, *args) for every item as one uint8 array, from the cache when it holds a complete build.

    `key_description` must name everything the pixels depend on; items whose function returns None are left out.
    """
    folder = cache_dir()
    key = cache_key(key_description)
    index_path, array_path = folder / f"{key}.json", folder / f"{key}.npy"
    index = read_index(index_path)
    if index is not None and array_path.exists():
        images = np.load(array_path, mmap_mode="c")  # copy-on-write: lazily paged, writable for torch.from_numpy
        if images.shape[0] == len(index["kept"]):
            return Decoded(images, index["kept"], index["failed"])
    try:
        check_writable_dir(folder)
    except FaceAlgebraError as exc:
        raise FaceAlgebraError(f"{exc}; set FACEALGEBRA_CACHE to a writable folder for the image cache") from None
    index_path.unlink(missing_ok=True)  # a rebuild starts by retracting the old claim of completeness
    try:
        kept, failed = build_array(array_path, items, function, args, label)
    except NothingDecoded as nothing:
        return Decoded(np.zeros((0, 1, 1, 1), np.uint8), [], nothing.failed)
    write_bytes_atomic(index_path, json.dumps(
        {"format": INDEX_FORMAT, "source": key_description.get("source"), "kept": kept, "failed": failed}).encode())
    return Decoded(np.load(array_path, mmap_mode="c"), kept, failed)


def read_index(path: Path) -> dict | None:
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return index if isinstance(index, dict) and index.get("format") == INDEX_FORMAT else None


def build_array(array_path: Path, items: list[Item], function: Callable[..., np.ndarray | None], args: tuple,
                label: str) -> tuple[list[int], list[str]]:
    """Decode into a temporary .npy (never holding all images in memory), then move it into place.

    Nothing is written when no item decodes: there is nothing to cache, and the caller reports the failure."""
    kept: list[int] = []
    failed: list[str] = []
    array = None
    with atomic_path(array_path) as tmp:
        for position, (item, image) in enumerate(zip(items, parallel_imap(function, items, label, *args))):
            if image is None:
                failed.append(str(item))
                continue
            if array is None:
                array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(items), *image.shape))
            array[len(kept)] = image
            kept.append(position)
        if array is None:
            raise NothingDecoded(failed)
        array.flush()
        if len(kept) < len(items):
            # the .npy header fixes the row count, so the rows of unreadable files go by copying the rest once
            compact = tmp.with_suffix(".kept")
            try:
                with open(compact, "wb") as handle:
                    np.save(handle, array[:len(kept)])
                os.replace(compact, tmp)
            finally:
                compact.unlink(missing_ok=True)
        del array
    return kept, failed


def warn_skipped(where: str, failed: list[str]) -> None:
    """One line for all the files that could not be read, so a few bad files never stop a run."""
    if failed:
        shown = ", ".join(Path(name).name for name in failed[:SHOWN_FAILURES])
        more = f" and {len(failed) - SHOWN_FAILURES} more" if len(failed) > SHOWN_FAILURES else ""
        print(f"warning: skipped {len(failed)} unreadable image(s) in {where}: {shown}{more}", file=sys.stderr)
