"""`folder:PATH[?crop=F|aligned=yes]` (or a bare PATH): every image under PATH, recursively, in any format Pillow reads.

Decoding goes through images.load_for_model (EXIF orientation; grey, RGBA, palette and 16-bit conversion) into
the uint8 cache. Unreadable or truncated files are skipped with one warning line. `crop` is the side of the
centred square crop as a fraction of each photo's shorter side (default 1.0: the largest centred square).
`aligned=yes` says the images are whole face frames on the shared face template (data/stylegan.py), of any size:
what `facealgebra align --model faces` writes, or frames of `stylegan` and `celeba-sample` saved as pictures. They
are read whole and only resized, and the data carries that template, so a model trained on them records it and
aligns a user's photo the same way (`--align auto`), as a model trained on `stylegan` does.
"""

from __future__ import annotations

from pathlib import Path

from facealgebra.data import DataRequest, ImageSet, register
from facealgebra.data.cache import cached_decode, decode_or_none, file_signature, warn_skipped
from facealgebra.errors import FaceAlgebraError
from facealgebra.images import IMAGE_SUFFIXES, list_images


def crop_option(request: DataRequest, default: float) -> float:
    text = request.option("crop", str(default))
    try:
        crop = float(text)
    except ValueError:
        crop = 0.0
    if not 0.0 < crop <= 1.0:
        raise FaceAlgebraError(f"data {request.spec!r}: crop must be a fraction in (0, 1], not {text!r}")
    return crop


def folder_recipe(request: DataRequest) -> dict:
    channels = request.channels or 3
    if request.option("aligned", "no", ("yes", "no")) == "yes":
        if "crop" in request.options:
            raise FaceAlgebraError(f"data {request.spec!r}: aligned frames are read whole; drop crop")
        from facealgebra.data.stylegan import frame_recipe

        return frame_recipe(request.image_size, channels)
    return {"crop_fraction": crop_option(request, 1.0), "size": request.image_size, "channels": channels,
            "range": [0, 1]}


def decode_files(request: DataRequest, source: str, paths: list[Path], recipe: dict) -> tuple[ImageSet, list[int]]:
    """Decode `paths` through the cache; returns the ImageSet (without labels) and which paths it kept."""
    decoded = cached_decode({"source": source, "recipe": recipe, "files": file_signature(paths)}, paths,
                            decode_or_none, recipe, label=f"decoding {source}")
    warn_skipped(request.spec, decoded.failed)
    if not decoded.kept:
        raise FaceAlgebraError(f"data {request.spec!r}: none of its {len(paths)} image file(s) could be read")
    kept_paths = [paths[i] for i in decoded.kept]
    return ImageSet(decoded.images, request.spec, recipe, names=[str(path) for path in kept_paths],
                    sources=kept_paths), decoded.kept


@register("folder")
def load_folder(request: DataRequest) -> ImageSet:
    if not request.argument:
        raise FaceAlgebraError(f"data {request.spec!r}: give the folder, as folder:PATH")
    root = Path(request.argument).expanduser()
    if not root.is_dir():
        raise FaceAlgebraError(f"data {request.spec!r}: {root} is not a folder")
    paths = list_images(root)
    if not paths:
        raise FaceAlgebraError(
            f"data {request.spec!r}: no images under {root} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    recipe = folder_recipe(request)
    data, _ = decode_files(request, "folder", paths, recipe)
    data.names = [str(Path(name).relative_to(root)) for name in data.names]
    return data
