"""The model side of the editing commands: encode images (in batches, decoding photos in a thread pool while the
model runs), turn expression operands into codes, decode codes into images in [0, 1], lay out traversal figures.
A PhotoInput (align.py) turns each photo into model input, aligned onto the model's face template or not.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from facealgebra.algebra import Term, evaluate, traversal
from facealgebra.align import PhotoInput
from facealgebra.checkpoint import LoadedModel
from facealgebra.errors import FaceAlgebraError
from facealgebra.images import grid
from facealgebra.latents import Latents
from facealgebra.operands import Folder, Operand

BATCH_SIZE = 64
DECODE_THREADS = 4  # photo decoding releases the GIL, so a few threads keep ahead of a CPU or GPU model
BATCHES_AHEAD = 2  # bounded read-ahead: a folder of 100k photos must not sit in memory at once


def load_for_editing(model: str, device: str) -> LoadedModel:
    from facealgebra.checkpoint import load_model
    from facealgebra.devices import select_device

    chosen = select_device(device)
    if chosen.type == "cpu":
        # Edits run a handful of images at a time: too little work to split, and on a busy machine a team of
        # intra-op threads waiting on each other made one 64x64 encode 100x slower (0.3 s against 2 ms).
        # Folders still use the cores: their photos decode in DECODE_THREADS while the model runs.
        torch.set_num_threads(1)
    return load_model(model, chosen)


def model_device(loaded: LoadedModel) -> torch.device:
    return next(loaded.model.parameters()).device


def dims(loaded: LoadedModel) -> tuple[int, ...]:
    return loaded.model.cfg.latent_dims


# ---- encoding --------------------------------------------------------------------------------------------------
@torch.inference_mode()
def encode_arrays(loaded: LoadedModel, images: np.ndarray) -> list[np.ndarray]:
    """uint8 (N, C, H, W) at model size -> per-layer posterior means, float32 (N, d_l)."""
    parts = []
    for start in range(0, len(images), BATCH_SIZE):
        # torch.tensor copies: arrays that come from PIL are read-only, which torch.from_numpy warns about
        batch = torch.tensor(images[start:start + BATCH_SIZE], device=model_device(loaded)).float() / 255.0
        parts.append([z.float().cpu().numpy() for z in loaded.model.encode(batch)])
    return [np.concatenate([part[layer] for part in parts]) for layer in range(len(dims(loaded)))]


def encode_files(loaded: LoadedModel, paths: Sequence[Path], photos: PhotoInput,
                 on_batch: Callable[[int], None] | None = None) -> tuple[Latents, float]:
    """Encode photos, decoding (and aligning) the next batches in threads while the model works; returns
    (latents, images/s)."""
    batches = [paths[start:start + BATCH_SIZE] for start in range(0, len(paths), BATCH_SIZE)]
    parts: list[list[np.ndarray]] = []
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=DECODE_THREADS) as pool:
        def submit(batch: Sequence[Path]) -> list[Future]:
            return [pool.submit(photos.load, path) for path in batch]

        pending = deque(submit(batch) for batch in batches[:BATCHES_AHEAD])
        for index in range(len(batches)):
            futures = pending.popleft()
            if index + BATCHES_AHEAD < len(batches):
                pending.append(submit(batches[index + BATCHES_AHEAD]))
            try:
                images = np.stack([future.result() for future in futures])
            except BaseException:
                for queued in pending:
                    for future in queued:
                        future.cancel()
                raise
            parts.append(encode_arrays(loaded, images))
            if on_batch:
                on_batch(len(images))
    rate = len(paths) / max(time.perf_counter() - started, 1e-9)
    layers = tuple(np.concatenate([part[layer] for part in parts]) for layer in range(len(dims(loaded))))
    return Latents(layers, tuple(str(path) for path in paths), loaded.fingerprint), rate


def code_of(loaded: LoadedModel, text: str, operand: Operand, photos: PhotoInput) -> Latents:
    """One row: an image's code, a .npz's single code or mean, or the mean code of a folder's images."""
    if isinstance(operand, Latents):
        operand.check_model(loaded.fingerprint, dims(loaded), text)
        return operand if len(operand) == 1 else operand.mean(text)
    if isinstance(operand, Folder):
        return encode_files(loaded, operand.images, photos)[0].mean(text)
    layers = encode_arrays(loaded, photos(operand, text)[None])
    return Latents(tuple(layers), (text,), loaded.fingerprint)


def picture_of(loaded: LoadedModel, operand: Operand, code: Latents | None, photos: PhotoInput,
               name: str) -> np.ndarray:
    """What a term looks like to the model, float [0, 1] (C, H, W): a photo after the model's preprocessing
    (and alignment), or the decoded code of a .npz or folder."""
    if isinstance(operand, Image.Image):
        return photos(operand, name).astype(np.float32) / 255.0
    return decode(loaded, code)[0]


# ---- decoding --------------------------------------------------------------------------------------------------
@torch.inference_mode()
def decode(loaded: LoadedModel, latents: Latents) -> np.ndarray:
    """Images in [0, 1], float32 (N, C, H, W)."""
    parts = []
    for start in range(0, len(latents), BATCH_SIZE):
        codes = [torch.from_numpy(z[start:start + BATCH_SIZE]).to(model_device(loaded)) for z in latents.layers]
        parts.append(loaded.model.decode(codes).float().cpu().numpy())
    return np.concatenate(parts)


def prior_codes(loaded: LoadedModel, count: int, seed: int) -> Latents:
    """`count` draws z_l ~ N(0, I), the same for the same seed on every device."""
    layers = tuple(z.numpy() for z in loaded.model.prior_latents(count, seed, "cpu"))
    return Latents(layers, tuple(f"prior {seed}:{row}" for row in range(count)), loaded.fingerprint)


# ---- attribute vectors -----------------------------------------------------------------------------------------
def attribute_difference(positive: Latents, negative: Latents, name: str) -> Latents:
    """mean(z | attribute) - mean(z | not attribute), per layer: add it to a face to add the attribute."""
    terms = [Term(1.0, "with"), Term(-1.0, "without")]
    return evaluate(terms, [positive.mean("with"), negative.mean("without")], name)


def attribute_vector(loaded: LoadedModel, spec: str, attr: str) -> Latents:
    """The attribute vector over a labeled data set; `attr` is NAME (positive when > 0) or NAME=VALUE."""
    from facealgebra.data import load_data

    name, equals, value = attr.partition("=")
    cfg = loaded.model.cfg
    image_set = load_data(spec, cfg.image_size, cfg.channels)
    if name not in image_set.labels:
        known = ", ".join(sorted(image_set.labels)) or "none"
        raise FaceAlgebraError(f"--attr {name!r}: data {spec!r} has no such label (labels: {known})")
    labels = image_set.labels[name]
    try:
        positive = labels == int(value) if equals else labels > 0  # CelebA stores -1/1; others 0/1
    except ValueError:
        raise FaceAlgebraError(f"--attr {attr!r}: the value after '=' must be a whole number") from None
    if positive.all() or not positive.any():
        raise FaceAlgebraError(f"--attr {attr!r}: every image of {spec!r} falls on one side; nothing to contrast")
    layers = encode_arrays(loaded, image_set.images)
    codes = Latents(tuple(layers), tuple(str(row) for row in range(len(labels))), loaded.fingerprint)
    return attribute_difference(codes.select(positive), codes.select(~positive), f"{attr} in {spec}")


# ---- traversals ------------------------------------------------------------------------------------------------
def traversal_codes(loaded: LoadedModel, layers: Sequence[int], value_range: float, steps: int, samples: int,
                    seed: int, start: Latents | None) -> Latents:
    """Rows of prior draws, or `samples` copies of `start` (one code) walked along prior-drawn directions."""
    prior = prior_codes(loaded, samples, seed)
    base = prior if start is None else start.select(np.zeros(samples, dtype=np.intp))
    return traversal(base, prior, layers, value_range, steps)


def panel_grid(images: np.ndarray) -> np.ndarray:
    """(rows, panels, steps, C, H, W) -> one image: panels side by side, a blank column between them."""
    rows, panels, steps = images.shape[:3]
    blank = np.ones((rows, 1, *images.shape[3:]), dtype=images.dtype)
    columns = []
    for panel in range(panels):
        columns += [images[:, panel]] + ([blank] if panel < panels - 1 else [])
    tiles = np.concatenate(columns, axis=1)
    return grid(tiles.reshape(-1, *images.shape[3:]), columns=tiles.shape[1])


def frame(images: np.ndarray, step: int) -> np.ndarray:
    """One animation frame: every row and panel at one step, rows down and panels across."""
    return grid(images[:, :, step].reshape(-1, *images.shape[3:]), columns=images.shape[1])
