"""The judges' readings of many aligned faces as one table, for the attribute catalogue: made once per set of faces
and kept in the cache folder (FACEALGEBRA_CACHE/judged), keyed by the faces' pixels and READINGS_VERSION, so that
rebuilding the catalogue for a new model only encodes the faces again.
"""

from __future__ import annotations

import hashlib
import sys
import time

import numpy as np
from PIL import Image

from facealgebra.data.cache import cache_dir
from facealgebra.fileio import atomic_path
from facealgebra.judges.expression import EMOTIONS

COLUMNS = (*EMOTIONS, "glasses", "hat", "mouth_open", "hair", "hair_L", "hair_a", "hair_b", "skin_L", "skin_b",
           "skin_ita")
READINGS_VERSION = 1  # bump when a judge or a reading changes: the cached tables are then made again
PARSER_SIDE = 256  # the faces are 128-pixel frames: the parser at 256 reads them as at 512, four times faster
CHUNK = 250


def readings_table(judges, frames: np.ndarray) -> np.ndarray:
    """(N, len(COLUMNS)) float32 readings of aligned uint8 (N, 3, H, W) faces; NaN where a colour is unknown."""
    pictures = [Image.fromarray(frame.transpose(1, 2, 0)) for frame in frames]
    table = np.full((len(frames), len(COLUMNS)), np.nan, dtype=np.float32)
    for row, reading in enumerate(judges.read_frames(pictures)):
        values = {**reading["expression"], **reading}
        table[row] = [np.nan if values[name] is None else values[name] for name in COLUMNS]
    return table


def cached_readings(frames: np.ndarray, label: str, judges_factory) -> np.ndarray:
    """readings_table of `frames`, CHUNK faces at a time, each chunk kept in the cache once read."""
    folder = cache_dir() / "judged"
    folder.mkdir(parents=True, exist_ok=True)
    parts, judges, started = [], None, time.perf_counter()
    for start in range(0, len(frames), CHUNK):
        chunk = np.ascontiguousarray(frames[start:start + CHUNK])
        key = hashlib.sha256(chunk.tobytes() + f"{chunk.shape}/{READINGS_VERSION}".encode()).hexdigest()[:20]
        path = folder / f"{key}.npy"
        if path.exists():
            parts.append(np.load(path))
            continue
        judges = judges or judges_factory()
        table = readings_table(judges, chunk)
        with atomic_path(path) as temporary:
            with open(temporary, "wb") as handle:
                np.save(handle, table)
        parts.append(table)
        print(f"{label}: read {start + len(chunk)} of {len(frames)} faces ({time.perf_counter() - started:.0f} s)",
              file=sys.stderr, flush=True)
    return np.concatenate(parts)
