"""Training data: one function maps a SPEC string to an ImageSet.

SPEC is `name[:argument][?key=value&...]`, for example `mnist`, `mnist:/data/mnist?split=test`, `synthetic:64`.
A bare path to an existing folder means `folder:PATH`; `SPEC+SPEC` joins sources. Each source lives in its own
module (celeba, folder, mnist, orl, lfw, toyfaces, stylegan, synthetic) and registers a loader in SOURCES;
decoded photos go through the uint8 cache (data/cache.py) so that each is decoded once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from facealgebra.errors import FaceAlgebraError
from facealgebra.packaged import packaged_file  # noqa: F401  (the sources find their packaged data through data)
from facealgebra.specs import parse_spec  # noqa: F401  (the sources and the CLI read specs through data)


@dataclass
class ImageSet:
    """Images already at model size, as uint8 (N, C, H, W), with whatever labels the source knows."""

    images: np.ndarray
    spec: str
    preprocess: dict  # how a photo becomes model input; stored in the model file so encoding repeats it
    labels: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (N,) ints, e.g. "digit", "identity"
    names: list[str] = field(default_factory=list)
    factor_names: tuple[str, ...] = ()  # labels that are independent ground-truth generative factors (toyfaces)
    sources: list[Path] = field(default_factory=list)  # the photo file of each image, when it came from one

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(f"ImageSet needs uint8 (N, C, H, W) images, got {self.images.dtype} {self.images.shape}")
        if len(self.images) == 0:
            raise FaceAlgebraError(f"data {self.spec!r} holds no images")

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    def __len__(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class DataRequest:
    """What the caller needs: the parsed SPEC plus the model's image size (and channels, when fixed)."""

    spec: str
    name: str
    argument: str | None
    options: dict[str, str]
    image_size: int
    channels: int | None = None
    asked: set[str] = field(default_factory=set)  # the options the source read: any other is a slip, refused

    def option(self, key: str, default: str, allowed: tuple[str, ...] | None = None) -> str:
        self.asked.add(key)
        value = self.options.get(key, default)
        if allowed is not None and value not in allowed:
            raise FaceAlgebraError(f"data {self.spec!r}: {key} must be one of {', '.join(allowed)}, not {value!r}")
        return value


Loader = Callable[[DataRequest], ImageSet]
SOURCES: dict[str, Loader] = {}


def register(name: str) -> Callable[[Loader], Loader]:
    def decorator(loader: Loader) -> Loader:
        SOURCES[name] = loader
        return loader

    return decorator


def load_data(spec: str, image_size: int, channels: int | None = None) -> ImageSet:
    """Resolve SPEC to an ImageSet at `image_size` (and `channels`, when given; else the source's own).
    `SPEC+SPEC+...` joins several sources that prepare their images alike (as stylegan and celeba-sample do)."""
    _import_sources()
    if "+" in spec and not Path(spec.partition("?")[0]).expanduser().is_dir():
        return join_sets(spec, [load_one(part, image_size, channels) for part in split_specs(spec)])
    return load_one(spec, image_size, channels)


def photo_folder(spec: str) -> Path | None:
    """The folder of a `folder:PATH` SPEC (or a bare PATH) with no options, which a command may read as it reads a
    user's photos (eval aligns them as encode does); None for any other SPEC."""
    name, argument, options = source_of(spec)
    if name != "folder" or options or not argument or not Path(argument).expanduser().is_dir():
        return None
    return Path(argument).expanduser()


def split_specs(spec: str) -> list[str]:
    parts = spec.split("+")
    if not all(parts):
        raise FaceAlgebraError(f"data {spec!r}: an empty source between '+' signs (join sources as SPEC+SPEC)")
    return parts


def join_sets(spec: str, sets: list[ImageSet]) -> ImageSet:
    """One ImageSet of several, which must give the model the same input: the same recipe (crop, size, channels,
    face template). Labels that every set has are kept."""
    first = sets[0]
    for other in sets[1:]:
        if other.preprocess != first.preprocess or other.images.shape[1:] != first.images.shape[1:]:
            raise FaceAlgebraError(f"data {spec!r}: {first.spec!r} and {other.spec!r} prepare images differently "
                                   f"({first.preprocess} against {other.preprocess}), so they cannot be mixed")
    common = set.intersection(*(set(part.labels) for part in sets))
    has_sources = all(len(part.sources) == len(part) for part in sets)
    return ImageSet(np.concatenate([part.images for part in sets]), spec, first.preprocess,
                    labels={name: np.concatenate([part.labels[name] for part in sets]) for name in sorted(common)},
                    names=[name for part in sets for name in (part.names or [f"{part.spec}#{i}" for i in
                                                                             range(len(part))])],
                    sources=[path for part in sets for path in part.sources] if has_sources else [])


def source_of(spec: str) -> tuple[str, str | None, dict[str, str]]:
    """SPEC's source name, argument and options, where a bare PATH to a folder means folder:PATH."""
    _import_sources()
    name, argument, options = parse_spec(spec)
    if name not in SOURCES and Path(spec.partition("?")[0]).expanduser().is_dir():
        name, argument = "folder", spec.partition("?")[0]
    return name, argument, options


def load_one(spec: str, image_size: int, channels: int | None) -> ImageSet:
    name, argument, options = source_of(spec)
    if name not in SOURCES:
        raise FaceAlgebraError(f"unknown data spec {spec!r}: sources are {', '.join(sorted(SOURCES))}")
    request = DataRequest(spec, name, argument, options, image_size, channels)
    images = SOURCES[name](request)
    unknown = sorted(set(options) - request.asked)
    if unknown:  # `DIR?x=1` must not quietly mean DIR
        raise FaceAlgebraError(f"data {spec!r}: unknown option {', '.join(unknown)} for {name}")
    return images


def _import_sources() -> None:
    from facealgebra.data import celeba, folder, lfw, mnist, orl, stylegan, synthetic, toyfaces  # noqa: F401  (each registers itself)
