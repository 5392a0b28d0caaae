"""The explorer's sliders. Each is a term that an `arith` command can name, so that what the page shows can be
replayed from the command line, over a folder too.

- **Principal directions**, DIRECTIONS_PER_LAYER per ladder layer: the principal axes of that layer's codes
  (posterior means) of the model's training faces. Each is saved as a one-row latents .npz, zero on every other
  layer and one standard deviation of the faces long on its own, in a cache folder named by the model's
  fingerprint: `arith me.jpg + 1.5*DIR/z2-pc1.npz` is the slider "z2 pc1" at 1.5. The faces are the parts of
  the model's training data that can be read again offline (celeba-sample for the bundled `faces`); a source that
  has to be drawn again (stylegan: minutes) is left out. When no part can be read, a model of aligned photos (one
  with a face template) takes the packaged CelebA training photos instead (STAND_IN_FACES: the bundled
  `faces-large` was trained on them, from a folder of frames that does not ship); else prior draws stand in, and
  the page says so: the prior is round, so their axes are only random directions.
- **Attributes**: named vectors, from each source in ATTRIBUTE_SOURCES, a function from the model to
  (name, term) pairs: first the model's attribute catalogue (catalogue.py: `glasses`, `smile`, ... by name, which
  `arith` resolves, each at its calibrated step, in its own layers and region), then the example vectors made by
  the model (examples/vectors/*.npz, in a source checkout) for any name the catalogue lacks. The server reads
  every term with operands.read_operand, as arith does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from facealgebra.errors import FaceAlgebraError
from facealgebra.latents import Latents

if TYPE_CHECKING:
    from facealgebra.checkpoint import LoadedModel

DIRECTIONS_PER_LAYER = 3
DIRECTION_LIMIT = 3.0  # a principal slider runs over +-3 standard deviations of the faces
ATTRIBUTE_LIMIT = 2.0  # an attribute vector at 1 is the whole difference between the two groups
MAX_FACES = 2000  # plenty for the axes of a layer of ten or so dimensions; a larger set is spaced out
PRIOR_DRAWS = 1000
SLOW_SOURCES = {"stylegan"}  # drawn by a GAN on every read that misses the store
STAND_IN_FACES = "celeba-sample"  # real faces for a photo model whose training images cannot be read
EXAMPLE_VECTORS = Path(__file__).resolve().parents[2] / "examples" / "vectors"  # a source checkout's


@dataclass(frozen=True)
class Control:
    key: str  # the page's name for it: z2-pc1, or attr-glasses
    label: str
    term: str  # what an arith command names: a .npz path, or a name arith resolves
    group: str  # z1 ... zL, or attributes
    limit: float  # the slider runs from -limit to +limit


@dataclass(frozen=True)
class Controls:
    sliders: list[Control]
    directions_from: str  # where the principal directions come from, in words

    def by_key(self, key: str) -> Control:
        for control in self.sliders:
            if control.key == key:
                return control
        raise FaceAlgebraError(f"no slider {key!r}")


def find_controls(loaded: LoadedModel, folder: Path) -> Controls:
    """Every slider for the model: its principal directions (saved under `folder`, once per model) and its
    attributes."""
    axes, source = principal_directions(loaded, folder)
    sliders = [Control(f"z{layer}-pc{k}", f"pc{k}", str(path), f"z{layer}", DIRECTION_LIMIT)
               for (layer, k), path in axes.items()]
    named: dict[str, str] = {}
    for attribute_source in ATTRIBUTE_SOURCES:
        for name, term in attribute_source(loaded):
            named.setdefault(name, term)
    sliders += [Control(f"attr-{name}", name, term, "attributes", ATTRIBUTE_LIMIT) for name, term in named.items()]
    return Controls(sliders, source)


# ---- principal directions --------------------------------------------------------------------------------------
def principal_directions(loaded: LoadedModel, folder: Path) -> tuple[dict[tuple[int, int], Path], str]:
    """{(layer, k): its direction file z{layer}-pc{k}.npz under `folder`} (made now when any is missing, made by
    another model, or made from prior draws, which real faces may since have replaced), and where the directions
    come from."""
    dims = loaded.model.cfg.latent_dims
    paths = {(layer, k): folder / f"z{layer}-pc{k}.npz" for layer in range(1, len(dims) + 1)
             for k in range(1, min(DIRECTIONS_PER_LAYER, dims[layer - 1]) + 1)}
    try:
        stored = [Latents.load(path) for path in paths.values()]
        source = stored[0].names[0].partition(" of ")[2]
        if all(code.fingerprint == loaded.fingerprint and code.dims == dims for code in stored) and \
                "prior draws" not in source:
            return paths, source
    except FaceAlgebraError:
        pass  # missing or damaged: made below
    codes, source = training_codes(loaded)
    axes = [principal_axes(layer_codes) for layer_codes in codes]
    folder.mkdir(parents=True, exist_ok=True)
    for (layer, k), path in paths.items():
        layers = tuple(np.zeros((1, dim), np.float32) for dim in dims)
        layers[layer - 1][0] = axes[layer - 1][k - 1]
        Latents(layers, (f"z{layer} pc{k}, one standard deviation of {source}",), loaded.fingerprint).save(path)
    return paths, source


def principal_axes(codes: np.ndarray) -> np.ndarray:
    """(k, d): the principal axes of (N, d) codes, largest variance first, each one standard deviation long and
    signed so that its largest entry is positive (the same axes every time)."""
    centred = codes.astype(np.float64) - codes.mean(axis=0)
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    scaled = axes * (singular / np.sqrt(max(len(codes) - 1, 1)))[:, None]
    signs = np.sign(scaled[np.arange(len(scaled)), np.abs(scaled).argmax(axis=1)])
    return (scaled * signs[:, None]).astype(np.float32)


def training_codes(loaded: LoadedModel) -> tuple[list[np.ndarray], str]:
    """Per layer, the codes of the model's training faces that can be read offline (or of prior draws)."""
    from facealgebra import editing
    from facealgebra.data import load_data, parse_spec

    spec = loaded.training.get("data", "")
    readable = "+".join(part for part in spec.split("+") if part and parse_spec(part)[0] not in SLOW_SOURCES)
    cfg = loaded.model.cfg
    for source, words in ((readable, "training images"), (STAND_IN_FACES, "CelebA training photos")):
        if not source or (source == STAND_IN_FACES and "template" not in loaded.preprocess):
            continue
        try:
            images = load_data(source, cfg.image_size, cfg.channels).images
        except FaceAlgebraError:
            continue  # gone since training (a folder moved, a package removed): the next source, or prior draws
        chosen = np.unique(np.linspace(0, len(images) - 1, min(len(images), MAX_FACES)).astype(int))
        return editing.encode_arrays(loaded, images[chosen]), f"the codes of {len(chosen)} {words} ({source})"
    draws = editing.prior_codes(loaded, PRIOR_DRAWS, seed=0)
    return list(draws.layers), f"{PRIOR_DRAWS} prior draws (no training images to read: random directions)"


# ---- attributes ------------------------------------------------------------------------------------------------
AttributeSource = Callable[["LoadedModel"], list[tuple[str, str]]]


def example_vectors(loaded: LoadedModel) -> list[tuple[str, str]]:
    """examples/vectors/NAME.npz made by this model (one row each), as (NAME, path)."""
    found = []
    for path in sorted(EXAMPLE_VECTORS.glob("*.npz")):
        try:
            code = Latents.load(path)
        except FaceAlgebraError:
            continue
        if code.fingerprint == loaded.fingerprint and len(code) == 1:
            found.append((path.stem, str(path)))
    return found


def catalogue_attributes(loaded: LoadedModel) -> list[tuple[str, str]]:
    """The names in the model's own attribute catalogue, as (NAME, NAME); none when it has no readable one."""
    from facealgebra.catalogue import model_catalogue

    try:
        catalogue = model_catalogue(loaded.path, loaded.fingerprint, loaded.path.stem)
    except FaceAlgebraError:
        return []
    return [(name, name) for name in catalogue.names]


# the first source to name an attribute wins
ATTRIBUTE_SOURCES: list[AttributeSource] = [catalogue_attributes, example_vectors]
