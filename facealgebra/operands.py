"""What the editing commands' inputs name, read and checked before torch loads, so bad input fails in a blink.

A term of an expression (or `--from`, `--between`) is an image, a .npz of latents, or a folder of images.
Encode's inputs are images, folders, or `-` for paths read from stdin, one a line.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Union

from PIL import Image

from facealgebra.catalogue import AttributeName, looks_like_name
from facealgebra.errors import FaceAlgebraError
from facealgebra.images import list_images, load_image
from facealgebra.latents import Latents


@dataclass(frozen=True)
class Folder:
    path: Path
    images: list[Path]


Operand = Union[Image.Image, Latents, Folder, AttributeName]


def read_operand(text: str) -> Operand:
    """An image (decoded now, so a broken one is named before anything runs), a .npz, a folder, or the name of an
    attribute in the model's catalogue (a word that is no file: checked once the model is loaded)."""
    if looks_like_name(text):
        return AttributeName(text)
    path = Path(text)
    if path.is_dir():
        return Folder(path, images_in(path))
    if path.suffix.lower() == ".npz":
        return Latents.load(path)
    return load_image(path)


def images_in(folder: Path) -> list[Path]:
    images = list_images(folder)
    if not images:
        raise FaceAlgebraError(f"{folder}: folder holds no images")
    return images


def expand_inputs(inputs: Iterable[str], must_exist: bool = True) -> list[Path]:
    """Image paths from images, folders and `-` (stdin); each must exist (unless not `must_exist`: a batch edit
    treats a missing photo as it treats an unreadable one). Decoding waits for the encoder's pool."""
    paths: list[Path] = []
    for text in inputs:
        if text == "-":  # a line is a path but for its line ending: a file name may begin or end with spaces
            lines = (line.removesuffix("\n").removesuffix("\r") for line in sys.stdin)
            paths += [Path(line) for line in lines if line]
            continue
        path = Path(text)
        paths += images_in(path) if path.is_dir() else [path]
    if not paths:
        raise FaceAlgebraError("no images: name images or folders, or pipe their paths into `-`, one a line")
    for path in paths if must_exist else ():
        if not path.is_file():
            raise FaceAlgebraError(f"{path}: no such file" if not path.exists() else f"{path}: is not a file")
    return paths
