"""Every judge's reading of a face: find the faces of a photo (dlib), align each onto the face template by its eyes,
and read identity, expression and the parser's attributes from the aligned frame. Used by `score`, `eval` and the
attribute catalogue, which all read faces framed alike: the model's own pictures and the generated and CelebA faces
are already aligned onto the same template (data/stylegan.py), so they go to `read_frames` as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image

from facealgebra.data.stylegan import FACE_TEMPLATE, FRAME
from facealgebra.judges.expression import EMOTIONS, ExpressionJudge
from facealgebra.judges.identity import IdentityJudge, enlarged, rgb_array
from facealgebra.judges.parsing import FaceParser

READ_SIDE = 256  # a photo's face is aligned at this size (twice the template's frame) before the judges read it
# FER's crop, in the template's 128-pixel frame: brows to chin, as tight as FER2013's faces
EXPRESSION_BOX = (20, 28, 108, 116)
# A picture this small, in which no face is found, is taken to be a face already aligned (a model's output)
ALIGNED_MAX_SIDE = 256
# Class shares (of the aligned frame) above which a face has glasses, a hat, an open mouth: chosen on CelebA
# photos by looking (docs/judges.md)
GLASSES_SHARE, HAT_SHARE, MOUTH_OPEN_SHARE = 0.004, 0.05, 0.002
SMILING = 0.5  # FER's 'happy' probability


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dlib's five points are two corners of each eye, then the nose: (image-left eye, image-right eye)."""
    first, second = landmarks[0:2].mean(axis=0), landmarks[2:4].mean(axis=0)
    return (first, second) if first[0] < second[0] else (second, first)


def align_by_eyes(image: Image.Image, landmarks: np.ndarray, side: int = READ_SIDE) -> Image.Image:
    """The face warped (a similarity) so that its eye centres fall on the template's, in a side x side frame."""
    left, right = eye_centres(landmarks)
    scale = side / FRAME
    target_left, target_right = (np.array(FACE_TEMPLATE[0]) * scale, np.array(FACE_TEMPLATE[1]) * scale)
    p, q = complex(*left), complex(*right)
    tp, tq = complex(*target_left), complex(*target_right)
    a = (tq - tp) / (q - p)  # frame = a * photo + b
    b = tp - a * p
    inverse_a, inverse_b = 1 / a, -b / a  # Pillow maps output pixels back to input pixels
    coefficients = (inverse_a.real, -inverse_a.imag, inverse_b.real, inverse_a.imag, inverse_a.real, inverse_b.imag)
    return image.convert("RGB").transform((side, side), Image.Transform.AFFINE, coefficients,
                                          resample=Image.Resampling.BICUBIC)


@dataclass
class FacePlace:
    box: tuple[int, int, int, int] | None  # (left, top, right, bottom) in the photo; None: taken as aligned
    frame: Image.Image  # the face aligned onto the template


def attribute_flags(reading: dict) -> dict[str, bool]:
    """Yes/no attributes from a reading's shares and probabilities (thresholds above)."""
    return {"has_glasses": reading["glasses"] > GLASSES_SHARE, "has_hat": reading["hat"] > HAT_SHARE,
            "mouth_is_open": reading["mouth_open"] > MOUTH_OPEN_SHARE,
            "smiling": reading["expression"]["happy"] > SMILING}


class Judges:
    """The three judges loaded once (dlib, FER, the parser: about 2 s and 150 MB)."""

    def __init__(self, parser_side: int = 512):
        self.identity = IdentityJudge.load()
        self.expression = ExpressionJudge()
        self.parser = FaceParser(parser_side)

    def places(self, image: Image.Image) -> list[FacePlace]:
        """Every face the detector finds, largest first (boxes in the picture enlarged to MIN_SIDE when smaller);
        a small picture without one is taken as aligned."""
        import dlib

        array = enlarged(rgb_array(image))  # the detector misses small faces
        factor = image.width / array.shape[1]
        found = []
        for box in self.identity.boxes(array):
            shape = self.identity.landmarks(array, dlib.rectangle(*box))
            landmarks = np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], dtype=float)
            found.append(FacePlace(tuple(round(value * factor) for value in box),
                                   align_by_eyes(Image.fromarray(array), landmarks)))
        if not found and max(image.size) <= ALIGNED_MAX_SIDE:
            found.append(FacePlace(None, image.convert("RGB").resize((READ_SIDE, READ_SIDE),
                                                                     Image.Resampling.BICUBIC)))
        return found

    def read_frames(self, frames: Sequence[Image.Image], identity: bool = False) -> list[dict]:
        """Readings of faces aligned onto the template (any size): FER's probabilities, the parser's readings,
        the yes/no flags, and with `identity` dlib's descriptor."""
        if not frames:
            return []
        expression_crops = [frame.crop(tuple(round(v * frame.width / FRAME) for v in EXPRESSION_BOX))
                            for frame in frames]
        probabilities = self.expression.probabilities(expression_crops)
        results = []
        for frame, emotions, parsed in zip(frames, probabilities, self.parser.read(frames)):
            reading = {"expression": dict(zip(EMOTIONS, map(float, emotions))), **parsed}
            reading |= attribute_flags(reading)
            if identity:
                reading["descriptor"] = [round(float(v), 5) for v in self.identity.descriptor(frame)]
            results.append(reading)
        return results
