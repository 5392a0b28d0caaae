"""Identity: dlib's ResNet face descriptor (Davis King's dlib, models in face_recognition_models, CC0).

A face is found by dlib's frontal (HOG) detector, its five landmarks placed by the 5-point shape predictor, and the
aligned 150x150 chip mapped to 128 numbers; two faces whose descriptors lie less than SAME_PERSON apart (L2) are
the same person by dlib's rule (99.38% on LFW). A picture smaller than MIN_SIDE is enlarged first: the detector
misses faces under about 80 px. Where it finds none, as on a model's small aligned reconstruction, the whole
picture is taken for the face: the landmarks still place the eyes and mouth inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from PIL import Image

from facealgebra.judges import IDENTITY_FILES, judge_file, require_module

SAME_PERSON = 0.6  # dlib's threshold on the descriptor distance
MIN_SIDE = 256


def check_installed() -> None:
    require_module("dlib")
    for package, relative in IDENTITY_FILES:
        judge_file(package, relative)


def rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3), C-contiguous, as dlib reads pixels; a grey picture repeats its channel."""
    array = np.asarray(image.convert("RGB")) if isinstance(image, Image.Image) else np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return np.ascontiguousarray(array, dtype=np.uint8)


def enlarged(image: np.ndarray) -> np.ndarray:
    side = min(image.shape[:2])
    if side >= MIN_SIDE:
        return image
    factor = MIN_SIDE / side
    size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))


@dataclass
class IdentityJudge:
    detector: Any
    landmarks: Any
    network: Any

    @classmethod
    def load(cls) -> "IdentityJudge":
        check_installed()
        import dlib

        landmarks, descriptor = (str(judge_file(package, relative)) for package, relative in IDENTITY_FILES)
        return cls(dlib.get_frontal_face_detector(), dlib.shape_predictor(landmarks),
                   dlib.face_recognition_model_v1(descriptor))

    def boxes(self, image: np.ndarray) -> list[tuple[int, int, int, int]]:
        """(left, top, right, bottom) of every face the detector finds, largest first."""
        found = [(r.left(), r.top(), r.right(), r.bottom()) for r in self.detector(image, 1)]
        return sorted(found, key=lambda box: -(box[2] - box[0]) * (box[3] - box[1]))

    def descriptor(self, image: Image.Image | np.ndarray,
                   box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """The 128-number descriptor of the face in `box`, else of the largest face found, else of the whole
        picture (an aligned crop)."""
        import dlib

        array = rgb_array(image)
        if box is None:
            array = enlarged(array)
            found = self.boxes(array)
            box = found[0] if found else (0, 0, array.shape[1] - 1, array.shape[0] - 1)
        shape = self.landmarks(array, dlib.rectangle(*box))
        return np.asarray(self.network.compute_face_descriptor(array, shape), dtype=np.float32)

    def distance(self, before: Image.Image, after: Image.Image) -> float | None:
        """L2 between the largest faces of two pictures (an edit's before and after); None when the detector
        finds no face in either (a photo, unlike a model's crop, must show one)."""
        faces = []
        for picture in (before, after):
            array = enlarged(rgb_array(picture))
            found = self.boxes(array)
            if not found:
                return None
            faces.append(self.descriptor(array, found[0]))
        return float(np.linalg.norm(faces[0] - faces[1]))

    def descriptors(self, images: Sequence[Image.Image | np.ndarray]) -> np.ndarray:
        return np.stack([self.descriptor(image) for image in images]) if len(images) else np.zeros((0, 128))


# ---- scores over a set -----------------------------------------------------------------------------------------
def distances(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(N, M) L2 distances between two sets of descriptors."""
    return np.linalg.norm(first[:, None, :] - second[None, :, :], axis=2)


def identity_scores(photos: np.ndarray, others: np.ndarray) -> dict:
    """How well `others[i]` (e.g. reconstructions) keep the person of `photos[i]`: the same-person rate
    (L2 < SAME_PERSON), the median L2, and rank-1 identification (the nearest photo of the set to others[i] is
    photos[i])."""
    table = distances(others, photos)
    own = np.diag(table)
    return {"faces": int(len(own)),
            "same_person": float((own < SAME_PERSON).mean()),
            "median_l2": float(np.median(own)),
            "rank1": float((table.argmin(axis=1) == np.arange(len(own))).mean())}
