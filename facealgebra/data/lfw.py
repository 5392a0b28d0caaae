"""`lfw`: the 100 real LFW faces (25x25 grey) in scikit-image's data/lfw_subset.npy, read by path.

skimage itself is never imported. The file holds 200 entries; only the first 100 are faces (the rest are
non-face patches for detector examples).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from facealgebra.data import DataRequest, ImageSet, packaged_file, register
from facealgebra.images import preprocess

FACES = 100


@register("lfw")
def load_lfw(request: DataRequest) -> ImageSet:
    path = packaged_file("skimage", "data/lfw_subset.npy", "scikit-image")
    faces = np.load(path, allow_pickle=False)[:FACES]
    recipe = {"crop_fraction": 1.0, "size": request.image_size, "channels": request.channels or 1, "range": [0, 1]}
    grey = (np.clip(faces, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    images = np.stack([preprocess(Image.fromarray(face, "L"), recipe) for face in grey])
    return ImageSet(images, request.spec, recipe, names=[f"lfw-{i}" for i in range(FACES)])
