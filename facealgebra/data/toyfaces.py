"""`toyfaces[:N][?start=K]`: procedural colour cartoon faces with known, independent generative factors.

The project's ground-truth benchmark, in the spirit of dSprites and 3dshapes: face `index` has the factors
`factors_for_index(index)` (each uniform over its few values, drawn independently from a generator seeded by
the index), and `render(factors)` draws them. Changing one entry of the dict and rendering again gives "this
face with factor f set to v", which later metrics use to score disentanglement and face arithmetic.

Faces are drawn with PIL at 4x the target size and reduced by images.preprocess (the same Lanczos path photos
take), so edges are antialiased. Lighting is applied last, as a brightness gradient over the whole picture, so
it is a low-level factor that touches every pixel.
"""

from __future__ import annotations

import argparse
import hashlib
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from facealgebra.data import DataRequest, ImageSet, register
from facealgebra.errors import FaceAlgebraError
from facealgebra.specs import whole_number

FACTORS: dict[str, int] = {
    "background": 4,
    "lighting": 4,
    "skin": 4,
    "hair_colour": 4,
    "hair_style": 4,
    "face_width": 4,
    "eye_size": 4,
    "mouth": 5,
    "glasses": 2,
    "head_position": 5,
}
DEFAULT_COUNT = 20_000
MAX_COUNT = 10_000_000  # faces are rendered once into the uint8 cache: 10 M at 64 x 64 would be 120 GB already
SUPERSAMPLE = 4
SEED = 20240603  # fixes the dataset: face i is the same face on every machine and in every version

BACKGROUNDS = [(70, 130, 200), (110, 180, 120), (235, 205, 110), (190, 120, 190)]
SKINS = [(255, 224, 196), (234, 186, 140), (185, 128, 84), (110, 72, 48)]
HAIR_COLOURS = [(30, 26, 24), (120, 70, 35), (232, 200, 110), (196, 70, 30)]
HAIR_STYLES = ("short", "long", "curly", "fringe")
FACE_WIDTHS = [0.25, 0.29, 0.33, 0.37]  # half-width of the face, as a fraction of the picture
EYE_RADII = [0.028, 0.038, 0.05, 0.064]
MOUTH_CURVES = [-0.06, -0.03, 0.0, 0.035, 0.07]  # corner height above the centre: negative frowns
HEAD_SHIFTS = [-0.14, -0.07, 0.0, 0.07, 0.14]
LIGHT_DIRECTIONS = [(-1.0, 0.0), (0.0, -1.0), (1.0, 0.0), (0.0, 1.0)]  # where the light comes from (x, y)
SHIRT = (60, 60, 80)
FACE_HALF_HEIGHT = 0.31
FACE_CENTRE_Y = 0.47


def factors_for_index(index: int) -> dict[str, int]:
    """The factors of face `index`: each uniform over its values and independent of the others."""
    rng = np.random.default_rng([SEED, index])
    return {name: int(rng.integers(count)) for name, count in FACTORS.items()}


# ---- drawing ---------------------------------------------------------------------------------------------------
def render(factors: dict[str, int], size: int = 64, channels: int = 3) -> np.ndarray:
    """Draw one face; returns uint8 (channels, size, size). Missing factors raise KeyError."""
    from facealgebra.images import preprocess

    canvas = draw_face(factors, size * SUPERSAMPLE)
    canvas = ImageChops.multiply(canvas, light_gradient(factors["lighting"], canvas.width))
    return preprocess(canvas, {"crop_fraction": 1.0, "size": size, "channels": channels})


def draw_face(factors: dict[str, int], side: int) -> Image.Image:
    image = Image.new("RGB", (side, side), BACKGROUNDS[factors["background"]])
    draw = ImageDraw.Draw(image)

    def box(cx: float, cy: float, rx: float, ry: float) -> list[float]:
        return [(cx - rx) * side, (cy - ry) * side, (cx + rx) * side, (cy + ry) * side]

    skin, hair = SKINS[factors["skin"]], HAIR_COLOURS[factors["hair_colour"]]
    style = HAIR_STYLES[factors["hair_style"]]
    cx, cy = 0.5 + HEAD_SHIFTS[factors["head_position"]], FACE_CENTRE_Y
    half_w, half_h = FACE_WIDTHS[factors["face_width"]], FACE_HALF_HEIGHT
    top = cy - half_h

    # body and hair behind the head
    draw.ellipse(box(cx, 1.08, 0.36, 0.2), fill=SHIRT)
    draw.rectangle(box(cx, 0.82, 0.07, 0.08), fill=skin)
    if style == "long":
        draw.rounded_rectangle(box(cx, cy + 0.06, half_w + 0.06, half_h + 0.08), radius=0.12 * side, fill=hair)
    # ears, face
    for side_sign in (-1, 1):
        draw.ellipse(box(cx + side_sign * half_w, cy + 0.01, 0.045, 0.07), fill=skin)
    draw.ellipse(box(cx, cy, half_w, half_h), fill=skin)
    # hair on top of the head
    if style == "curly":
        for angle in np.linspace(math.pi * 0.95, math.pi * 2.05, 9):
            draw.ellipse(box(cx + math.cos(angle) * half_w * 0.95, cy + math.sin(angle) * half_h * 0.9 - 0.02,
                             0.075, 0.075), fill=hair)
    else:
        draw.chord(box(cx, cy - 0.02, half_w + 0.015, half_h + 0.02), 180, 360, fill=hair)
        draw.ellipse(box(cx, cy - 0.02, half_w - 0.01, half_h - 0.1), fill=skin)  # hairline
        draw.rectangle(box(cx, cy + 0.02, half_w, 0.04), fill=skin)
    if style == "fringe":
        draw.chord(box(cx, top + 0.1, half_w * 0.95, 0.12), 180, 360, fill=hair)
        draw.rectangle(box(cx, top + 0.115, half_w * 0.8, 0.02), fill=hair)

    # eyes, brows, nose, mouth
    eye_radius = EYE_RADII[factors["eye_size"]]
    eye_y, eye_dx = cy - 0.03, half_w * 0.45
    for side_sign in (-1, 1):
        ex = cx + side_sign * eye_dx
        draw.ellipse(box(ex, eye_y, eye_radius * 1.25, eye_radius), fill=(255, 255, 255), outline=(40, 30, 30),
                     width=max(1, side // 128))
        draw.ellipse(box(ex, eye_y, eye_radius * 0.55, eye_radius * 0.55), fill=(45, 35, 30))
        brow_y = eye_y - eye_radius - 0.035
        draw.line([((ex - 0.05) * side, brow_y * side), ((ex + 0.05) * side, (brow_y - 0.005) * side)],
                  fill=hair, width=max(1, side // 40))
    draw.polygon([(cx * side, (cy + 0.01) * side), ((cx - 0.03) * side, (cy + 0.08) * side),
                  ((cx + 0.03) * side, (cy + 0.08) * side)], fill=tuple(int(c * 0.82) for c in skin))
    mouth_y, mouth_half = cy + 0.17, 0.11
    curve = MOUTH_CURVES[factors["mouth"]]
    points = [((cx + t * mouth_half) * side, (mouth_y - curve * t * t + curve / 2) * side) for t in np.linspace(-1, 1, 15)]
    draw.line(points, fill=(150, 40, 50), width=max(1, side // 28), joint="curve")

    if factors["glasses"]:
        frame_width = max(1, side // 45)
        lens = max(eye_radius * 1.6, 0.075)
        for side_sign in (-1, 1):
            draw.ellipse(box(cx + side_sign * eye_dx, eye_y, lens, lens), outline=(20, 20, 20), width=frame_width)
        draw.line([((cx - eye_dx + lens) * side, eye_y * side), ((cx + eye_dx - lens) * side, eye_y * side)],
                  fill=(20, 20, 20), width=frame_width)
    return image


@lru_cache(maxsize=16)
def light_gradient(direction: int, side: int) -> Image.Image:
    """A multiplier image: full brightness where the light comes from, about half at the far edge."""
    dx, dy = LIGHT_DIRECTIONS[direction]
    coords = (np.arange(side) + 0.5) / side - 0.5
    along = dx * coords[None, :] + dy * coords[:, None]  # +0.5 at the lit edge, -0.5 at the far edge
    level = np.clip(255 * (0.75 + 0.5 * along), 0, 255).astype(np.uint8)
    return Image.fromarray(level, "L").convert("RGB")


def render_index(index: int, size: int, channels: int) -> np.ndarray:
    return render(factors_for_index(index), size, channels)


# ---- the source ------------------------------------------------------------------------------------------------
@register("toyfaces")
def load_toyfaces(request: DataRequest) -> ImageSet:
    from facealgebra.data.cache import cached_decode

    count = whole_number(request.argument or str(DEFAULT_COUNT), request.spec, "N", 1, MAX_COUNT)
    # faces start..start+N-1: a held-out set beside a training set
    start = whole_number(request.option("start", "0"), request.spec, "start", 0, MAX_COUNT)
    indices = list(range(start, start + count))
    size, channels = request.image_size, request.channels or 3
    recipe = {"crop_fraction": 1.0, "size": size, "channels": channels, "range": [0, 1]}
    # the renderer's own source is part of the key, so editing this file re-renders instead of reading stale faces
    renderer = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    key = {"source": "toyfaces", "recipe": recipe, "count": count, "start": indices[0], "renderer": renderer}
    decoded = cached_decode(key, indices, render_index, size, channels, label="rendering toyfaces")
    factor_table = [factors_for_index(i) for i in indices]
    labels = {name: np.array([f[name] for f in factor_table], dtype=np.int64) for name in FACTORS}
    return ImageSet(decoded.images, request.spec, recipe, labels=labels, names=[f"toyface-{i}" for i in indices],
                    factor_names=tuple(FACTORS))


# ---- the factor sheet (examples/toyfaces.png) ------------------------------------------------------------------
SHEET_BASE = {"background": 0, "lighting": 1, "skin": 1, "hair_colour": 1, "hair_style": 0, "face_width": 2,
              "eye_size": 2, "mouth": 3, "glasses": 0, "head_position": 2}


def factor_sheet(size: int = 64) -> np.ndarray:
    """One row per factor: SHEET_BASE with that factor swept over all its values (short rows padded white)."""
    from facealgebra.images import grid

    base = SHEET_BASE
    columns = max(FACTORS.values())
    tiles = []
    for name, count in FACTORS.items():
        row = [render({**base, name: value}, size) for value in range(count)]
        tiles += row + [np.full_like(row[0], 255)] * (columns - count)
    return grid(np.stack(tiles), columns)


def main() -> None:
    from facealgebra.images import save_image, to_pil

    parser = argparse.ArgumentParser(description="Write the toyfaces factor sheet (one row per factor).")
    parser.add_argument("--sheet", required=True, help="PNG to write, e.g. examples/toyfaces.png")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--scale", type=int, default=2, help="nearest-pixel upscaling of the sheet")
    args = parser.parse_args()
    save_image(to_pil(factor_sheet(args.size), scale=args.scale), args.sheet)


if __name__ == "__main__":
    main()
