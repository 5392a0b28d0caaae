"""The photo side of an edit: carry the change an edit makes in the model's small frame onto the full-resolution
photo, so that everything the edit does not touch keeps the photo's own pixels.

With z the face's code and z' the edited code, the change is delta = decode(z') - decode(z), an image in the
model's frame (64x64, values in [-1, 1]). It is faded out by a soft mask (an ellipse around the face's landmarks,
within a disc that ends inside the frame: the edit reaches the face, not the background), then
mapped into the photo by the inverse of the face's Placement (the alignment's similarity, the crop and the resize)
with a bicubic resampling, which both upsamples it smoothly to the face's size in the photo and turns it with the
face. The photo gets photo + strength * delta: where the mask is zero, its pixels are kept bit for bit. No torch
here: the caller decodes.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from facealgebra.align import Placement
from facealgebra.images import to_mode

# The mask is 1 within MASK_INNER of the frame's half-side from its centre and falls smoothly to 0 at MASK_OUTER,
# so it fades out well inside the frame and no seam shows. An aligned face's mask is also an ellipse around it,
# FACE_WIDTH x FACE_HEIGHT eye distances (semi-axes), centred FACE_CENTRE of the way from the eyes to the mouth,
# with the same fall-off: the face and hairline, not the background (where the means of two folders of photos
# differ most, for reasons that have nothing to do with the attribute).
MASK_INNER, MASK_OUTER = 0.62, 0.98
FACE_WIDTH, FACE_HEIGHT, FACE_CENTRE = 1.3, 1.7, 0.4
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # a colour model's change on a grey photo (ITU-R 601)
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I")


def blend_mask(size: int, landmarks: np.ndarray | None = None) -> np.ndarray:
    """float32 (size, size): 1 at the centre of the model's frame (and of the face whose landmarks are given, in
    model pixels), falling to 0 (smoothstep) towards the frame's border (and the face's edge)."""
    pixels = np.arange(size, dtype=np.float32) + 0.5
    mask = fall_off(np.hypot(*np.meshgrid(pixels - size / 2, pixels - size / 2)) / (size / 2))
    if landmarks is not None:
        eyes, mouth = landmarks[:2].mean(axis=0), landmarks[3:].mean(axis=0)
        centre = eyes + FACE_CENTRE * (mouth - eyes)
        eye_distance = float(np.linalg.norm(landmarks[1] - landmarks[0]))
        x, y = np.meshgrid((pixels - centre[0]) / (FACE_WIDTH * eye_distance),
                           (pixels - centre[1]) / (FACE_HEIGHT * eye_distance))
        mask = mask * fall_off(np.hypot(x, y))
    return mask.astype(np.float32)


def fall_off(radius: np.ndarray) -> np.ndarray:
    """1 within MASK_INNER, 0 beyond MASK_OUTER, a smoothstep between."""
    t = np.clip((MASK_OUTER - radius) / (MASK_OUTER - MASK_INNER), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def footprint(placement: Placement, size: int, photo_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom): the photo pixels the model's frame can reach, padded for the bicubic kernel and
    clipped to the photo."""
    corners = [(complex(x, y) - placement.b) / placement.a for x in (0, size) for y in (0, size)]
    left = max(0, math.floor(min(c.real for c in corners)) - 2)
    top = max(0, math.floor(min(c.imag for c in corners)) - 2)
    right = min(photo_size[0], math.ceil(max(c.real for c in corners)) + 2)
    bottom = min(photo_size[1], math.ceil(max(c.imag for c in corners)) + 2)
    return left, top, max(left, right), max(top, bottom)


def change_in_photo(change: np.ndarray, placement: Placement, box: tuple[int, int, int, int]) -> np.ndarray:
    """float32 (C, h, w): the masked change (C, S, S) resampled onto the photo pixels of `box`."""
    size = change.shape[-1]
    masked = change * blend_mask(size, placement.landmarks)[None]
    left, top, right, bottom = box
    # Pillow's AFFINE maps each output pixel to the source pixel it samples: box pixel p -> a (p + corner) + b
    a, b = placement.a, placement.a * complex(left, top) + placement.b
    coefficients = (a.real, -a.imag, b.real, a.imag, a.real, b.imag)

    def resample(channel: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(np.ascontiguousarray(channel), "F").transform(
            (right - left, bottom - top), Image.Transform.AFFINE, coefficients, resample=Image.Resampling.BICUBIC))

    # The channels resample in threads (Pillow lets go of the GIL meanwhile): a large face's paste is most of a
    # slider move in `explore`, and a free second core takes a share. Each channel's pixels are the same either way.
    with ThreadPoolExecutor(max_workers=len(masked)) as pool:
        return np.stack(list(pool.map(resample, masked)))


def apply_change(photo: Image.Image, change: np.ndarray, placement: Placement, strength: float = 1.0) -> Image.Image:
    """The photo with strength x `change` (float (C, S, S) in the model's frame, a difference of two decodings)
    added where the face lies. Grey photos stay grey (a colour change counts by its luminance), colour photos stay
    colour (a grey model's change lifts every channel alike); alpha is kept; 16-bit and CMYK photos come back as
    8-bit grey and RGB, as the encoder reads them."""
    pixels, alpha = editable_pixels(photo)
    box = footprint(placement, change.shape[-1], photo.size)
    left, top, right, bottom = box
    if right > left and bottom > top:
        delta = change_in_photo(change.astype(np.float32) * np.float32(strength), placement, box)
        if pixels.shape[-1] == 1 and delta.shape[0] == 3:
            delta = np.tensordot(LUMA, delta, axes=1)[None]
        delta *= 255.0
        region = pixels[top:bottom, left:right].astype(np.float32)
        region += delta.transpose(1, 2, 0)
        # in place: the same sums and roundings as out of place, with three fewer full-size copies
        pixels[top:bottom, left:right] = np.clip(np.rint(region, out=region), 0, 255, out=region)
    edited = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    if alpha is not None:
        edited.putalpha(alpha)
    return edited


def editable_pixels(photo: Image.Image) -> tuple[np.ndarray, Image.Image | None]:
    """uint8 (H, W, 1 or 3) pixels to edit, and the alpha channel to put back (None when the photo has none)."""
    alpha = None
    if photo.mode in ("RGBA", "LA", "PA") or (photo.mode == "P" and "transparency" in photo.info):
        photo = photo.convert("RGBA")  # a palette's transparency (bytes) would warn on the way to RGB
        alpha = photo.getchannel("A")
    grey = photo.mode in ("1", "L", "LA", *SIXTEEN_BIT)
    base = to_mode(photo, 1) if photo.mode in SIXTEEN_BIT else photo.convert("L" if grey else "RGB")
    pixels = np.array(base, dtype=np.uint8)
    return (pixels[..., None] if pixels.ndim == 2 else pixels), alpha
