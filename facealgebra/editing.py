"""The model side of the editing commands: encode images (in batches, decoding photos in a thread pool while the
model runs), turn expression operands into codes, decode codes into images in [0, 1], lay out traversal figures.
A PhotoInput (align.py) turns each photo into model input, aligned onto the model's face template or not.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import Callable, Collection, Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from facealgebra.algebra import Term, check_layers, evaluate, traversal
from facealgebra.align import Face, PhotoInput, Placement, not_photos
from facealgebra.catalogue import (AttributeName, Catalogue, expression_region, model_catalogue, moves_mouth,
                                   removes_worn)
from facealgebra.checkpoint import LoadedModel
from facealgebra.data import ImageSet
from facealgebra.errors import FaceAlgebraError
from facealgebra.headregion import head_and_hair
from facealgebra.images import grid, to_mode
from facealgebra.latents import Latents
from facealgebra.operands import Folder, Operand
from facealgebra.inpaint import remove_worn
from facealgebra.photoedit import apply_change
from facealgebra.refine import TUNE_DEFAULT, refined, tuned
from facealgebra.warping import move_features

BATCH_SIZE = 64
DECODE_THREADS = 4  # photo decoding releases the GIL, so a few threads keep ahead of a CPU or GPU model
BATCHES_AHEAD = 2  # bounded read-ahead: a folder of 100k photos must not sit in memory at once


def load_for_editing(model: str, device: str, refine_steps: int = 0, tune_steps: int | None = 0) -> LoadedModel:
    """The model of an editing command on its device; photos' codes get `refine_steps` refining steps, and each
    photo's face is drawn by the decoder tuned to it by `tune_steps` steps (face_decoder; None: default_tune)."""
    from facealgebra.checkpoint import load_model
    from facealgebra.devices import select_device

    chosen = select_device(device)
    if chosen.type == "cpu":
        # Edits run a handful of images at a time: too little work to split, and on a busy machine a team of
        # intra-op threads waiting on each other made one 64x64 encode 100x slower (0.3 s against 2 ms).
        # Folders still use the cores: their photos decode in DECODE_THREADS while the model runs.
        torch.set_num_threads(1)
    loaded = load_model(model, chosen)
    loaded.refine_steps = refine_steps
    loaded.tune_steps = default_tune(loaded) if tune_steps is None else tune_steps
    return loaded


def default_tune(loaded: LoadedModel) -> int:
    """--tune's default: TUNE_DEFAULT steps for a model trained on photos, which misses what is particular to each
    face; 0 for one trained on drawn faces or digits (NOT_PHOTOS), which draws its own kind of picture closely
    already and whose tuned copy would only learn the photo's pixels (a toy face's hair edit came out muddy)."""
    return 0 if not_photos(loaded.training.get("data", "")) else TUNE_DEFAULT


def model_device(loaded: LoadedModel) -> torch.device:
    return next(loaded.model.parameters()).device


def dims(loaded: LoadedModel) -> tuple[int, ...]:
    return loaded.model.cfg.latent_dims


# ---- encoding --------------------------------------------------------------------------------------------------
@torch.inference_mode()
def encode_arrays(loaded: LoadedModel, images: np.ndarray) -> list[np.ndarray]:
    """uint8 (N, C, H, W) at model size -> per-layer codes, float32 (N, d_l): the posterior means, refined by the
    model's refine_steps (refine.py)."""
    parts = []
    for start in range(0, len(images), BATCH_SIZE):
        # torch.tensor copies: arrays that come from PIL are read-only, which torch.from_numpy warns about
        batch = torch.tensor(images[start:start + BATCH_SIZE], device=model_device(loaded)).float() / 255.0
        codes = refined(loaded.model, batch, loaded.model.encode(batch), loaded.refine_steps)
        parts.append([z.float().cpu().numpy() for z in codes])
    return [np.concatenate([part[layer] for part in parts]) for layer in range(len(dims(loaded)))]


def read_photos(paths: Sequence[Path], photos: PhotoInput, on_batch: Callable[[int], None] | None = None,
                named: Collection[Path] = ()) -> Iterator[tuple[list[Path], np.ndarray]]:
    """Photos as model input, (kept paths, uint8 (N, C, H, W)) a batch at a time, decoded (and aligned) in
    threads, BATCHES_AHEAD batches ahead of the caller. A photo that cannot be read or shows no face is left out,
    as train leaves it out, and the count said through photos.log once all are read; it stops the run instead if
    the user `named` that file, under photos.strict, or when no photo is left."""
    batches = [paths[start:start + BATCH_SIZE] for start in range(0, len(paths), BATCH_SIZE)]
    kept_count = 0
    skipped: list[FaceAlgebraError] = []

    def take(path: Path, future: Future) -> np.ndarray | None:
        try:
            return future.result()
        except FaceAlgebraError as error:
            if photos.strict or path in named:
                raise
            skipped.append(error)
            return None

    with ThreadPoolExecutor(max_workers=DECODE_THREADS) as pool:
        def submit(batch: Sequence[Path]) -> list[Future]:
            return [pool.submit(photos.load, path) for path in batch]

        pending = deque(submit(batch) for batch in batches[:BATCHES_AHEAD])
        try:
            for index in range(len(batches)):
                futures = pending.popleft()
                if index + BATCHES_AHEAD < len(batches):
                    pending.append(submit(batches[index + BATCHES_AHEAD]))
                taken = [(path, take(path, future)) for path, future in zip(batches[index], futures)]
                kept = [(path, image) for path, image in taken if image is not None]
                kept_count += len(kept)
                if kept:
                    yield [path for path, _ in kept], np.stack([image for _, image in kept])
                if on_batch:
                    on_batch(len(taken))
        finally:  # stopped early (an error, or the caller's): drop the read-ahead
            for queued in pending:
                for future in queued:
                    future.cancel()
    if not kept_count:
        raise FaceAlgebraError(f"no image left: all {len(paths)} cannot be read or show no face (the "
                               f"first: {skipped[0]})")
    if skipped:
        photos.log(f"skipped {len(skipped)} of {len(paths)} images that cannot be read or show no face (the first: "
                   f"{skipped[0]})")


def encode_files(loaded: LoadedModel, paths: Sequence[Path], photos: PhotoInput,
                 on_batch: Callable[[int], None] | None = None, named: Collection[Path] = ()) -> tuple[Latents, float]:
    """Encode photos (read by read_photos, while the model works); returns (latents, images/s)."""
    started = time.perf_counter()
    kept: list[Path] = []
    parts: list[list[np.ndarray]] = []
    for batch_paths, images in read_photos(paths, photos, on_batch, named):
        kept += batch_paths
        parts.append(encode_arrays(loaded, images))
    rate = len(kept) / max(time.perf_counter() - started, 1e-9)
    layers = tuple(np.concatenate([part[layer] for part in parts]) for layer in range(len(dims(loaded))))
    return Latents(layers, tuple(str(path) for path in kept), loaded.fingerprint), rate


def photo_set(spec: str, paths: Sequence[Path], photos: PhotoInput) -> ImageSet:
    """A folder's photos as a data set, each made into model input as encode makes it (aligned, when photos
    align)."""
    kept: list[Path] = []
    parts: list[np.ndarray] = []
    for batch_paths, images in read_photos(paths, photos):
        kept += batch_paths
        parts.append(images)
    return ImageSet(np.concatenate(parts), spec, photos.recipe, names=[str(path) for path in kept], sources=kept)


def code_of(loaded: LoadedModel, text: str, operand: Operand, photos: PhotoInput,
            every_layer: bool = True, negative: bool = False) -> Latents:
    """One row: an image's code, a .npz's single code or mean, the mean code of a folder's images, or a catalogue
    attribute's step (zero outside its own layers unless `every_layer`; its `- name` step when `negative`)."""
    if isinstance(operand, AttributeName):
        return model_catalogue(loaded.path, loaded.fingerprint, loaded.path.stem, operand.name).code(
            operand.name, every_layer, loaded.path.stem, negative)
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
def decode(loaded: LoadedModel, latents: Latents, decoder: torch.nn.Module | None = None) -> np.ndarray:
    """Images in [0, 1], float32 (N, C, H, W), drawn by `decoder` (a face_decoder) or the model."""
    decoder = decoder or loaded.model
    parts = []
    for start in range(0, len(latents), BATCH_SIZE):
        codes = [torch.from_numpy(z[start:start + BATCH_SIZE]).to(model_device(loaded)) for z in latents.layers]
        parts.append(decoder.decode(codes).float().cpu().numpy())
    return np.concatenate(parts)


# The decoders last tuned to a face, newest last: the explorer edits one face many times, and eval --edits edits
# each photo once per attribute, so a face is tuned once.
TUNED_KEPT = 4
_tuned: OrderedDict[tuple, torch.nn.Module] = OrderedDict()
_tuned_lock = threading.Lock()


def face_decoder(loaded: LoadedModel, code: Latents, placement: Placement | None) -> torch.nn.Module:
    """The decoder that draws a photo's face: the model tuned to the face (refine.tuned: loaded.tune_steps
    steps, with the face's code as the pivot) when tuning is on, the placement holds the face as the model saw
    it and its edit asks for it (Placement.tuned), else the model itself."""
    if loaded.tune_steps <= 0 or placement is None or placement.model_input is None or not placement.tuned:
        return loaded.model
    digest = hashlib.sha256(placement.model_input.tobytes())
    for layer in code.layers:
        digest.update(np.ascontiguousarray(layer[:1], dtype=np.float32).tobytes())
    key = (id(loaded.model), loaded.tune_steps, digest.hexdigest())
    with _tuned_lock:
        if key not in _tuned:
            device = model_device(loaded)
            x = torch.tensor(placement.model_input[None], device=device).float() / 255.0
            _tuned[key] = tuned(loaded.model, x, [torch.from_numpy(z[:1]).to(device) for z in code.layers],
                                loaded.tune_steps)
            while len(_tuned) > TUNED_KEPT:
                _tuned.popitem(last=False)
        _tuned.move_to_end(key)
        return _tuned[key]


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
    white = 255 if images.dtype == np.uint8 else 1  # photo tiles are uint8, decoded faces float in [0, 1]
    blank = np.full((rows, 1, *images.shape[3:]), white, dtype=images.dtype)
    columns = []
    for panel in range(panels):
        columns += [images[:, panel]] + ([blank] if panel < panels - 1 else [])
    tiles = np.concatenate(columns, axis=1)
    return grid(tiles.reshape(-1, *images.shape[3:]), columns=tiles.shape[1])


def frame(images: np.ndarray, step: int) -> np.ndarray:
    """One animation frame: every row and panel at one step, rows down and panels across."""
    return grid(images[:, :, step].reshape(-1, *images.shape[3:]), columns=images.shape[1])


# ---- edits on the photo itself ---------------------------------------------------------------------------------
def stack(codes: Sequence[Latents]) -> Latents:
    """Many codes as the rows of one."""
    layers = tuple(np.concatenate([code.layers[layer] for code in codes]) for layer in range(len(codes[0].layers)))
    return Latents(layers, tuple(name for code in codes for name in code.names), codes[0].fingerprint)


def pictures(loaded: LoadedModel, before: Latents, after: Latents, placement: Placement | None = None) -> np.ndarray:
    """decode(before) for one `before` row (a face, found at `placement`) and then decode(after) for every `after`
    row, drawn by the face's decoder (face_decoder): (1 + N, C, S, S), in [-1, 1]."""
    return decode(loaded, stack([before, after]), face_decoder(loaded, before, placement))


def changes(loaded: LoadedModel, before: Latents, after: Latents, placement: Placement | None = None) -> np.ndarray:
    """decode(after) - decode(before) for one `before` row and every `after` row (pictures): (N, C, S, S)."""
    drawn = pictures(loaded, before, after, placement)
    return drawn[1:] - drawn[:1]


def edit_photo(loaded: LoadedModel, photo: Image.Image, faces: Sequence[tuple[Latents, Latents, Placement]],
               strength: float) -> Image.Image:
    """The photo with each face's change, from decode(code) to decode(edited), drawn where that face lies;
    faces are (code, edited code, placement)."""
    for code, edited, placement in faces:
        before, after = pictures(loaded, code, edited, placement)
        photo = draw_change(photo, before, after, placement, strength)
    return photo


def draw_change(photo: Image.Image, before: np.ndarray, after: np.ndarray, placement: Placement,
                strength: float = 1.0) -> Image.Image:
    """The photo with a face's change from the model's picture `before` to `after` (float (C, S, S)): added to it
    (photoedit.apply_change); for a smile (the placement's `moves`), drawn by moving the photo's own mouth
    (warping.move_features); for an edit that takes away what is worn across the eyes (the placement's `removes`),
    the frames it takes away painted out (inpaint)."""
    if placement.removes:
        return remove_worn(photo, before, after, placement, strength)
    if placement.moves:
        return move_features(photo, before, after, placement, strength)
    return apply_change(photo, after - before, placement, strength)


def face_code(loaded: LoadedModel, photos: PhotoInput, photo: Image.Image, name: str,
              face: Face | None = None) -> tuple[Latents, Placement]:
    """The code of one face of the photo (--face's, or the largest, or `face`) and where it lies."""
    array, placement = photos.place(photo, name, face)
    head, hair = head_and_hair(loaded.preprocess, array) or (None, None)
    placement = dataclasses.replace(placement, head=head, hair=hair, model_input=array)
    return Latents(tuple(encode_arrays(loaded, array[None])), (name,), loaded.fingerprint), placement


def photo_tiles(loaded: LoadedModel, photo: Image.Image, code: Latents, placement: Placement, edited: Latents,
                side: int) -> np.ndarray:
    """uint8 (N, C, H, W): the photo, shrunk to `side` pixels on its longer side, with each edited row's change."""
    small = shrunk(photo, side)
    placement = placement.scaled(small.width / photo.width)
    drawn = pictures(loaded, code, edited, placement)
    return np.stack([tile_array(draw_change(small, drawn[0], after, placement)) for after in drawn[1:]])


def strokes_tile(loaded: LoadedModel, photo: Image.Image, strokes: Sequence[tuple[Latents, Latents, Placement]],
                 side: int) -> np.ndarray:
    """uint8 (C, H, W): the photo, shrunk to `side` pixels on its longer side, with the strokes (code, edited
    code, placement) drawn one after another, as edit_photo draws them."""
    small = shrunk(photo, side)
    scale = small.width / photo.width
    return tile_array(edit_photo(loaded, small, [(code, edited, placement.scaled(scale))
                                                 for code, edited, placement in strokes], 1.0))


def shrunk(photo: Image.Image, side: int) -> Image.Image:
    """The photo at most `side` pixels on its longer side."""
    factor = min(1.0, side / max(photo.size))
    return photo.resize((max(1, round(photo.width * factor)), max(1, round(photo.height * factor))),
                        Image.Resampling.LANCZOS) if factor < 1 else photo


def tile_array(tile: Image.Image) -> np.ndarray:
    """uint8 (C, H, W) of a picture, its transparency laid onto white."""
    array = np.asarray(to_mode(tile, 1 if tile.mode in ("L", "LA") else 3))
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


class Arithmetic:
    """An expression ready to apply to photos: every term's code but the edited photo's is computed once, so a
    batch edit encodes only each new photo."""

    def __init__(self, loaded: LoadedModel, photos: PhotoInput, terms: Sequence[Term], operands: dict[str, Operand],
                 target: int | None, layers: Sequence[int] | None, name: str):
        if layers is not None:
            check_layers(layers, loaded.model.cfg.num_layers, "--layers")
        self.loaded, self.photos, self.terms, self.operands = loaded, photos, terms, operands
        self.target, self.layers, self.name = target, layers, name
        # --face picks a face of the photo edited; every other photo gives its largest face
        self.others = dataclasses.replace(photos, face=None) if target is not None else photos
        # a named attribute edits its own layers, unless --layers chooses them
        self.codes = {index: code_of(loaded, term.operand, operands[term.operand], self.others,
                                     every_layer=layers is not None, negative=term.weight < 0)
                      for index, term in enumerate(terms) if index != target}
        self.region, self.tuned, self.removes, self.moves = self.how_drawn()
        self.parts = self.drawn_apart()

    def how_drawn(self) -> tuple[str, bool, bool, bool]:
        """Where the change lands on the photo, whether the decoder tuned to the face draws it, and whether it
        takes away what is worn across the eyes. The region is that of the catalogue attributes added (a smile: the
        lower face) when they are all the expression adds and they edit their own layers, else the head; the tuned
        decoder draws it unless the expression adds (or subtracts) an attribute whose `+` (or `-`) the catalogue
        draws untuned (glasses; a smile, with faces-large); an "eyes" expression whose every term subtracts
        (`- glasses`) removes; a smile alone moves the photo's own mouth (catalogue.moves_mouth)."""
        others = [(term.weight, self.operands[term.operand]) for index, term in enumerate(self.terms)
                  if index != self.target]
        names = self.attribute_names()
        if not names:
            return "head", True, False, False
        catalogue = self.catalogue
        only_attributes = self.layers is None and len(names) == len(others)
        region = expression_region(catalogue, names) if only_attributes else "head"
        removes = removes_worn(region, [weight for weight, _ in others])
        weights = [weight for weight, operand in others if isinstance(operand, AttributeName)]  # names' order
        return region, catalogue.drawn_tuned(names, weights), removes, moves_mouth(region, names)

    def drawn_apart(self) -> list[tuple[list[int], tuple[str, bool, bool, bool]]]:
        """When the expression adds only catalogue attributes, on their own layers, and they are drawn in more than
        one way (`+ glasses - smile`: the eyes by the model's own decoder, the mouth moved by the tuned one), each
        group of terms drawn alike, in the order written, with how it is drawn (how_drawn for those terms alone):
        the edit is drawn as one such edit after another. Else [] (the expression is drawn at once)."""
        names = self.attribute_names()
        others = [index for index in range(len(self.terms)) if index != self.target]
        if self.layers is not None or len(names) < 2 or len(names) != len(others):
            return []
        catalogue = self.catalogue
        groups: dict[tuple[str, bool, bool], list[int]] = {}
        for index in others:
            name, weight = self.operands[self.terms[index].operand].name, self.terms[index].weight
            region = catalogue.region(name)
            groups.setdefault((region, catalogue.drawn_tuned([name], [weight]), removes_worn(region, [weight])),
                              []).append(index)
        if len(groups) < 2:
            return []
        return [(indices, (region, tuned, removes,
                           moves_mouth(region, [self.operands[self.terms[index].operand].name for index in indices])))
                for (region, tuned, removes), indices in groups.items()]

    def strokes(self, rows: Sequence[tuple[Latents, Latents, Placement]]) -> list[tuple[Latents, Latents, Placement]]:
        """The rows of apply as edit_photo draws them: a face whose expression is drawn apart (drawn_apart) becomes
        one row per group of terms (face_strokes)."""
        if not self.parts:
            return list(rows)
        return [stroke for code, _, placement in rows for stroke in self.face_strokes(code, placement, say=False)]

    def face_strokes(self, code: Latents, placement: Placement, say: bool = True) -> list[tuple[Latents, Latents,
                                                                                               Placement]]:
        """For an expression drawn apart: one (code, edited code, placement) per group of terms, each from the code
        the group before it reached to that code plus the group's terms, drawn as that group alone would be (a
        `- glasses` group with nothing to take off is left out; `say`: with a note why)."""
        codes = [code if index == self.target else self.codes[index] for index in range(len(self.terms))]
        reached, start, drawn = [self.target], code, []
        for indices, (region, tuned, removes, moves) in self.parts:
            if removes and not self.takes_off(code, placement, indices, say):
                continue
            reached += indices
            end = evaluate([self.terms[index] for index in reached], [codes[index] for index in reached], self.name)
            drawn.append((start, end, dataclasses.replace(placement, region=region, tuned=tuned, removes=removes,
                                                          moves=moves)))
            start = end
        return drawn

    def attribute_names(self) -> list[str]:
        """The catalogue attributes among the terms other than the edited photo."""
        return [self.operands[term.operand].name for index, term in enumerate(self.terms)
                if index != self.target and isinstance(self.operands[term.operand], AttributeName)]

    @cached_property
    def catalogue(self) -> Catalogue:
        """The model's attribute catalogue (read once, for a batch)."""
        return model_catalogue(self.loaded.path, self.loaded.fingerprint, self.loaded.path.stem)

    def takes_off(self, code: Latents, placement: Placement, indices: Sequence[int] | None = None,
                  say: bool = True) -> bool:
        """Whether `- glasses` (the attributes of the terms at `indices`, or of every term) has something to paint
        out of this face: the model reads it as wearing them, and the face was aligned (the eyes' landmarks place
        the paint). Else (when `say`) a note says why the face is left as it is."""
        taken = (self.attribute_names() if indices is None else
                 [self.operands[self.terms[index].operand].name for index in indices])
        names = " and ".join(taken)
        if placement.landmarks is None:
            note = f"- {names} paints out of an aligned face only (alignment is off or not installed)"
        elif not self.catalogue.worn(taken, code.layers):
            note = f"the model reads no {names} on this face"
        else:
            return True
        if say:
            self.photos.log(f"note: {code.names[0]}: {note}: left as it is")
        return False

    def faces_of(self, photo: Image.Image, name: str, every_face: bool) -> list[tuple[Latents, Placement]]:
        """The code of the photo's face (or of every face) and where it lies in the photo."""
        faces = self.photos.faces(photo, name) if every_face else [None]
        return [face_code(self.loaded, self.photos, photo, name, face) for face in faces]

    def apply(self, faces: Sequence[tuple[Latents, Placement]]) -> list[tuple[Latents, Latents, Placement]]:
        """(code, edited code, placement) for each face: the expression with the face's code as the edited term."""
        edited = []
        for code, placement in faces:
            codes = [code if index == self.target else self.codes[index] for index in range(len(self.terms))]
            result = evaluate(self.terms, codes, self.name, self.layers, self.target)
            if self.removes and not self.takes_off(code, placement):
                result = Latents(code.layers, result.names, result.fingerprint)  # nothing to take off
            elif self.parts:  # drawn apart: the code its last part reaches (a `- glasses` left out is not in it)
                reached = [end for _, end, _ in self.face_strokes(code, placement)] or [code]
                result = Latents(reached[-1].layers, result.names, result.fingerprint)
            edited.append((code, result, dataclasses.replace(placement, region=self.region, tuned=self.tuned,
                                                             removes=self.removes, moves=self.moves)))
        return edited

    def without_photo(self) -> Latents:
        """The result of an expression with no photo to edit (every term a .npz or folder)."""
        return evaluate(self.terms, [self.codes[index] for index in range(len(self.terms))], self.name, self.layers)

    def panel(self, target_code: Latents | None, result: np.ndarray, expected: Sequence[Image.Image],
              expected_names: Sequence[str]) -> np.ndarray:
        """A strip: every term as the model sees it, the result, then the expected pictures."""
        pictures = [picture_of(self.loaded, self.operands[term.operand], target_code, self.photos, term.operand)
                    if index == self.target else
                    picture_of(self.loaded, self.operands[term.operand], self.codes[index], self.others, term.operand)
                    for index, term in enumerate(self.terms)]
        pictures += [result] + [picture_of(self.loaded, photo, None, self.photos, name)
                                for photo, name in zip(expected, expected_names)]
        return grid(np.stack(pictures), columns=len(pictures))
