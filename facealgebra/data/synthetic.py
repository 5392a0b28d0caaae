"""`synthetic[:N]`: N deterministic blob images (a bright ellipse on a dark ground) for tests and smoke runs."""

from __future__ import annotations

import numpy as np

from facealgebra.data import DataRequest, ImageSet, register
from facealgebra.specs import whole_number

MAX_COUNT = 100_000  # blobs for tests and smoke runs; 100,000 of 64 x 64 colour take 1.2 GB already


@register("synthetic")
def load_synthetic(request: DataRequest) -> ImageSet:
    count = whole_number(request.argument or "256", request.spec, "N", 1, MAX_COUNT)
    channels = request.channels or 1
    size = request.image_size
    rng = np.random.default_rng(0)
    grid_y, grid_x = np.mgrid[0:size, 0:size] / size
    centre = rng.uniform(0.3, 0.7, size=(count, 2))
    radius = rng.uniform(0.1, 0.25, size=(count, 2))
    colour = rng.uniform(0.4, 1.0, size=(count, channels))
    inside = ((grid_x[None] - centre[:, :1, None]) / radius[:, :1, None]) ** 2 + (
        (grid_y[None] - centre[:, 1:, None]) / radius[:, 1:, None]
    ) ** 2 <= 1.0
    images = (inside[:, None] * colour[:, :, None, None] * 255).astype(np.uint8)
    recipe = {"crop_fraction": 1.0, "size": size, "channels": channels, "range": [0, 1]}
    return ImageSet(images, request.spec, recipe, names=[f"synthetic-{i}" for i in range(count)])
