"""Images in and out: safe loading, the model's preprocessing (crop, resize, channels), PNG output, grids and GIFs.

Arrays here are uint8 numpy arrays of shape (C, H, W); torch is never imported, so the CLI can load and check
photos before it pays for torch.
"""

from __future__ import annotations

import io
import os
import sys
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facealgebra.errors import FaceAlgebraError
from facealgebra.fileio import write_bytes_atomic

GRID_PADDING = 2  # pixels between the tiles of a grid
MAX_PIXELS = 50_000_000  # larger photos are refused as possible decompression bombs (Pillow warns at 89M)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}


# ---- loading ---------------------------------------------------------------------------------------------------
def load_image(path: str | os.PathLike) -> Image.Image:
    """Open a photo fully (so truncation shows here), refuse bombs, honour EXIF orientation."""
    path = Path(path)
    if not path.exists():
        raise FaceAlgebraError(f"{path}: no such file")
    if path.is_dir():
        raise FaceAlgebraError(f"{path}: is a folder, expected an image")
    return decode_image(path, str(path))


def decode_image(source: str | os.PathLike | BinaryIO, name: str) -> Image.Image:
    """load_image's reading of a file or of bytes in memory (an upload), errors naming the photo `name`."""
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                image.load()
                encoding = source_encoding(image)
                image = ImageOps.exif_transpose(image)
                image.info.update(encoding)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise FaceAlgebraError(f"{name}: image is too large (over {MAX_PIXELS:,} pixels); downscale it first") from None
    except UnidentifiedImageError:
        raise FaceAlgebraError(f"{name}: not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise FaceAlgebraError(f"{name}: cannot read image ({exc})") from None
    return image


# What load_image notes of how a photo was stored (kept in its info, which exif_transpose copies), so that the
# edited photo can be written as the original was: the JPEG's own quantisation, and whether more than 8 bits or
# more than one frame would be lost.
JPEG_TABLES, DEEP, FRAMES = "facealgebra.jpeg", "facealgebra.deep", "facealgebra.frames"


def source_encoding(image: Image.Image) -> dict:
    from PIL import JpegImagePlugin

    noted = {FRAMES: getattr(image, "n_frames", 1)}
    rawmodes = [str(tile.args[0] if isinstance(tile.args, tuple) else tile.args) for tile in image.tile or ()]
    noted[DEEP] = image.mode in ("I;16", "I;16B", "I;16L", "I", "F") or any("16" in mode for mode in rawmodes)
    if image.format == "JPEG" and getattr(image, "quantization", None):
        noted[JPEG_TABLES] = (image.quantization, JpegImagePlugin.get_sampling(image))
    return noted


def check_editable(photo: Image.Image, name: str) -> str | None:
    """Refuse a photo an edit could not write back whole (more than 8 bits per channel: facealgebra writes 8);
    return a one-line warning for an animation, of which only the first frame is edited."""
    if photo.info.get(DEEP):
        raise FaceAlgebraError(f"{name}: a photo with more than 8 bits per channel (or float pixels); an edit "
                               "writes 8 bits and would lose the rest everywhere: edit an 8-bit copy")
    if photo.info.get(FRAMES, 1) > 1:
        return f"{name}: an animation of {photo.info[FRAMES]} frames; only its first frame is edited"
    return None


def to_mode(image: Image.Image, channels: int) -> Image.Image:
    """Grey, RGBA, palette and 16-bit images to 'L' or 'RGB'; transparency is flattened onto white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        scaled = np.asarray(image, dtype=np.float64)
        top = 65535.0 if scaled.max() > 255 else 255.0
        image = Image.fromarray(np.clip(scaled / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("L" if channels == 1 else "RGB")


def preprocess(image: Image.Image, recipe: dict) -> np.ndarray:
    """The one path from a photo to model input: centre crop, resize, channels. Returns uint8 (C, H, W).

    recipe["crop_fraction"] is the side of the centred square crop as a fraction of the photo's shorter side
    (1.0 keeps the largest centred square; CelebA's 108-pixel crop of a 178-pixel width is 108/178).
    """
    image = to_mode(image, recipe["channels"])
    left, top, side = centre_square(*image.size, recipe.get("crop_fraction", 1.0))
    size = recipe["size"]
    image = image.resize((size, size), Image.Resampling.BICUBIC if side < size else Image.Resampling.LANCZOS,
                         box=(left, top, left + side, top + side))
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def centre_square(width: int, height: int, crop_fraction: float) -> tuple[int, int, int]:
    """(left, top, side) of the centred square that preprocess crops from a width x height photo."""
    side = max(1, round(min(width, height) * crop_fraction))
    return (width - side) // 2, (height - side) // 2, side


def load_for_model(path: str | os.PathLike, recipe: dict) -> np.ndarray:
    return preprocess(load_image(path), recipe)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under `folder`, recursively, sorted, hidden files skipped."""
    return sorted(
        p for p in Path(folder).rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not any(part.startswith(".") for part in p.parts[len(Path(folder).parts):])
    )


# ---- output ----------------------------------------------------------------------------------------------------
def to_pil(array: np.ndarray, scale: int = 1) -> Image.Image:
    """uint8 (C, H, W) or float [0, 1] (C, H, W) to a PIL image, upscaled `scale` times with nearest pixels."""
    if array.dtype != np.uint8:
        array = np.clip(array * 255.0 + 0.5, 0, 255).astype(np.uint8)
    image = Image.fromarray(array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0))
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    return image


OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
                  ".bmp": "BMP"}
JPEG_QUALITY = 95


def output_format(destination: str | os.PathLike, option: str = "-o") -> str:
    """The image format an output's suffix names (PNG for '-', stdout); an unknown suffix is refused."""
    if str(destination) == "-":
        return "PNG"
    suffix = Path(destination).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise FaceAlgebraError(f"{option} {destination}: unknown image type {suffix or '(no suffix)'!r}; "
                               f"name it {', '.join(OUTPUT_FORMATS)}")
    return OUTPUT_FORMATS[suffix]


def image_bytes(image: Image.Image, image_format: str = "PNG", like: Image.Image | None = None) -> bytes:
    """The image encoded as `image_format`; JPEG and BMP drop an alpha channel (they cannot hold one). `like`, the
    photo an edit was made of, lends its colour profile and EXIF, and, JPEG to JPEG, its quantisation tables and
    subsampling (Pillow's quality="keep"), so the pixels the edit left alone move as little as a lossy format
    allows."""
    options = {}
    if image_format in ("JPEG", "BMP") and image.mode not in ("L", "RGB"):
        image = image.convert("L" if image.mode in ("L", "LA") else "RGB")
    if image_format in ("JPEG", "WEBP"):
        options["quality"] = JPEG_QUALITY
    if like is not None and image_format in ("JPEG", "PNG", "WEBP", "TIFF"):
        options.update({key: like.info[key] for key in ("icc_profile", "exif") if like.info.get(key)})
    if like is not None and image_format == "JPEG" and JPEG_TABLES in like.info:
        tables, sampling = like.info[JPEG_TABLES]
        options.update(qtables=tables, **({"subsampling": sampling} if sampling != -1 else {}))
        options.pop("quality")
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def save_image(image: Image.Image, destination: str, like: Image.Image | None = None) -> None:
    """Write the image atomically in the format its suffix names, or as PNG to stdout when destination is '-'
    (`like`: the photo it is an edit of; see image_bytes)."""
    data = image_bytes(image, output_format(destination), like)
    if destination == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        write_bytes_atomic(destination, data)


def grid_shape(count: int, columns: int, height: int, width: int, padding: int = GRID_PADDING) -> tuple[int, int]:
    """(height, width) of the picture grid() makes of `count` tiles of height x width, known before any tile is."""
    rows = -(-count // columns)
    return rows * (height + padding) + padding, columns * (width + padding) + padding


def check_picture_size(out: str | os.PathLike, height: int, width: int) -> None:
    """Refuse an output picture larger than facealgebra reads: checked before its tiles are made, since a grid of
    10 million tiles took 11 GB to make before it was found too large."""
    if height * width > MAX_PIXELS:  # facealgebra itself would refuse to read it, as a possible decompression bomb
        raise FaceAlgebraError(f"{out}: the picture would be {width}x{height} pixels, over the {MAX_PIXELS:,} "
                               "facealgebra reads; give a smaller --size")


def grid(images: np.ndarray, columns: int, padding: int = GRID_PADDING, fill: int = 255) -> np.ndarray:
    """Tile (N, C, H, W) images row by row into one (C, H', W') image with `padding` pixels between tiles."""
    count, channels, height, width = images.shape
    canvas = np.full(
        (channels, *grid_shape(count, columns, height, width, padding)),
        fill if images.dtype == np.uint8 else fill / 255.0, dtype=images.dtype,
    )
    for index, tile in enumerate(images):
        row, col = divmod(index, columns)
        y, x = padding + row * (height + padding), padding + col * (width + padding)
        canvas[:, y:y + height, x:x + width] = tile
    return canvas


def save_gif(frames: list[Image.Image], destination: str, duration_ms: int = 120) -> None:
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=duration_ms, loop=0)
    write_bytes_atomic(destination, buffer.getvalue())
