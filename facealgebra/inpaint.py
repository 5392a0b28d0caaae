"""Taking away what is worn across the eyes (`- glasses`): the photo's own frames are painted out.

Adding decode(z - glasses) - decode(z) to a photo cannot take its glasses off: the model draws 64 pixels wide, so the
change is a soft lightening where the frames lie, and the photo's sharp frames stay (`- glasses` landed on no
face). Here the model says *where* the frames are and the photo says *what* they are:

- the frames in the photo are its thin dark lines (a black top-hat: a grey closing of the luminance, FRAME_WIDTH
  eye distances wide, minus the luminance, above LINE_CONTRAST grey levels) where the model's change lightens
  (above MODEL_CONTRAST grey levels), and its thin light lines (a white top-hat) where the change darkens: metal
  and light frames;
- the eyes themselves stay (a disc of EYE_GUARD eye distances around each), and so does everything outside the
  eye band of photoedit.blend_mask;
- those pixels, grown by GROW pixels and softened, are filled from the pixels around them (a normalised
  convolution, at a width of FRAME_WIDTH eye distances, then twice and four times that where nothing is near),
  plus what the model's own picture without glasses, decode(z - glasses), holds there beyond what its pixels around
  the hole predict (the same fill of that picture, taken from it: seamless cloning). The photo gives the colour and
  the light; the model gives the brows, lids and creases that the frames hid, which the fill alone smoothed away.
  Then it is blended in.

Dark lenses (sunglasses) are not lines: their rims go, the dark glass stays. The morphology runs on the face at
most WORK_EYES pixels between the eyes (a larger face is shrunk for it, and the fill and mask are enlarged back);
the photo's pixels outside the mask are kept bit for bit.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from facealgebra.align import Placement
from facealgebra.photoedit import LUMA, blurred, change_in_photo, editable_image, footprint

FRAME_WIDTH = 0.09  # the closing's half-width (and the fill's Gaussian), in eye distances
LINE_CONTRAST, MODEL_CONTRAST = 10.0, 3.0  # grey levels (0-255): a line's depth in the photo; the model's change
EYE_GUARD = 0.2  # eye distances around each eye's centre that are never painted
GROW, EDGE_BLUR = 2, 0.7  # the lines found are grown by GROW pixels, and their edge softened (a Gaussian, pixels)
WORK_EYES = 64  # the most photo pixels between the eyes at which the mask and fill are worked out
REACHED = 0.3  # the band's mask, resampled into the photo, above which the model's picture is used


def remove_worn(photo: Image.Image, before: np.ndarray, after: np.ndarray, placement: Placement,
                strength: float = 1.0) -> Image.Image:
    """The photo with the frames that the model takes away from its picture `before` (float (C, S, S), decode(z))
    to `after` (decode(z - glasses)) painted out (see the module docstring). `strength` (at most 1 counts) blends
    the fill in part way. Grey photos stay grey, alpha is kept; without the face's landmarks nothing is painted."""
    edited, alpha = editable_image(photo)
    if placement.landmarks is None or strength <= 0:
        return with_alpha(edited, alpha)
    channels = 3 if edited.mode == "RGB" else 1
    change = after - before
    luma = change if change.shape[0] == 1 else np.tensordot(LUMA, change, axes=1)[None]
    drawn = after if after.shape[0] == channels else (
        np.repeat(after, channels, axis=0) if after.shape[0] == 1 else np.tensordot(LUMA, after, axes=1)[None])
    # one warp carries the change, the model's picture and how much of the band's mask reached each photo pixel
    where = dataclasses.replace(placement, region="eyes")
    stacked = np.concatenate([luma * 255.0, drawn * 255.0, np.ones_like(luma)]).astype(np.float32)
    box, warped = change_in_photo(stacked, where, footprint(where, change.shape[-1], photo.size))
    left, top, right, bottom = box
    if right <= left or bottom <= top:
        return with_alpha(edited, alpha)
    model_change, reach = warped[..., :1], warped[..., -1]
    # the model's picture where the band's mask is well above 0 (elsewhere it is not used)
    drawn_here = warped[..., 1:-1] / np.maximum(reach, REACHED)[..., None]
    region = np.asarray(edited.crop(box), dtype=np.float32).reshape(bottom - top, right - left, -1)
    eye_distance = float(np.linalg.norm(placement.landmarks[1] - placement.landmarks[0])) / abs(placement.a)
    factor = min(1.0, WORK_EYES / max(eye_distance, 1e-6))
    small_size = (max(1, round((right - left) * factor)), max(1, round((bottom - top) * factor)))
    small = np.stack([resized(channel, small_size) for channel in region.transpose(2, 0, 1)], axis=-1)
    eyes = [((complex(*point) - placement.b) / placement.a - complex(left, top)) * factor
            for point in placement.landmarks[:2]]
    mask = frame_mask(small @ LUMA if small.shape[-1] == 3 else small[..., 0], resized(model_change[..., 0],
                      small_size), eyes, eye_distance * factor)
    if not mask.any():
        return with_alpha(edited, alpha)
    hole, sigma = mask > 0.01, FRAME_WIDTH * eye_distance * factor
    model = np.stack([resized(channel, small_size) for channel in drawn_here.transpose(2, 0, 1)], axis=-1)
    known = resized((reach > REACHED).astype(np.float32), small_size) > 0.99
    fill = filled(small, hole, sigma) + guidance(model, small, hole, known, sigma)
    full = (right - left, bottom - top)
    weight = np.clip(resized(mask, full), 0.0, 1.0)[..., None] * min(1.0, strength)
    fill = np.stack([resized(channel, full) for channel in fill.transpose(2, 0, 1)], axis=-1)
    total = np.clip(np.rint(region + weight * (fill - region)), 0, 255).astype(np.uint8)
    untouched = weight[..., 0] == 0
    total[untouched] = region[untouched].astype(np.uint8)  # bit for bit where nothing is painted
    edited.paste(Image.fromarray(total[..., 0] if total.shape[-1] == 1 else total), box[:2])
    return with_alpha(edited, alpha)


def guidance(model: np.ndarray, photo: np.ndarray, hole: np.ndarray, known: np.ndarray, sigma: float) -> np.ndarray:
    """float32 (h, w, C): what the model's picture holds in the hole beyond its fill from the pixels around the hole
    (filled, as the photo is, with the same weights), and 0 outside the hole. Where the picture is not `known`, the
    photo stands in for it, so that the photo's fill plus this is the model's picture plus the photo's difference
    from it, filled in from around the hole: seamless cloning."""
    model = np.where(known[..., None], model, photo)
    return np.where(hole[..., None], model - filled(model, hole, sigma), 0.0).astype(np.float32)


def frame_mask(luma: np.ndarray, model_change: np.ndarray, eyes: list[complex], eye_distance: float) -> np.ndarray:
    """float32 (h, w) in [0, 1]: the frames to paint out (see the module docstring), in a picture where the eyes
    lie `eye_distance` pixels apart."""
    size = 2 * max(1, round(FRAME_WIDTH * eye_distance)) + 1
    dark = min_filter(max_filter(luma, size), size) - luma  # black top-hat: thin dark lines
    light = luma - max_filter(min_filter(luma, size), size)  # white top-hat: thin light lines
    rows, columns = np.mgrid[0:luma.shape[0], 0:luma.shape[1]] + 0.5
    guarded = np.zeros(luma.shape, bool)
    for eye in eyes:
        guarded |= np.hypot(columns - eye.real, rows - eye.imag) < EYE_GUARD * eye_distance
    lines = (((dark > LINE_CONTRAST) & (model_change > MODEL_CONTRAST))
             | ((light > LINE_CONTRAST) & (model_change < -MODEL_CONTRAST))) & ~guarded
    grown = max_filter(lines.astype(np.float32), 2 * GROW + 1)
    return np.clip(blurred(grown, EDGE_BLUR) * 1.5, 0.0, 1.0).astype(np.float32)


def filled(image: np.ndarray, hole: np.ndarray, sigma: float) -> np.ndarray:
    """float32 (h, w, C): the pixels of `hole` (bool (h, w)) filled by a normalised convolution of those around
    them, with a Gaussian of `sigma` pixels, then 2 and 4 times that where too few are near."""
    keep = (~hole).astype(np.float32)
    result = image.astype(np.float32).copy()
    pending = hole.copy()
    for width in (sigma, 2 * sigma, 4 * sigma):
        width = max(1.0, width)
        weight = blurred(keep, width)
        ready = pending & (weight > 0.05)
        if ready.any():
            estimate = np.stack([blurred(channel * keep, width) for channel in image.transpose(2, 0, 1)], axis=-1)
            result[ready] = estimate[ready] / weight[ready][:, None]
            pending &= ~ready
    return result


def max_filter(image: np.ndarray, size: int) -> np.ndarray:
    """The maximum over a size x size square around each pixel (the border repeats its edge)."""
    radius = size // 2
    padded = np.pad(image, radius, mode="edge")
    across = sliding_window_view(padded, size, axis=1).max(axis=-1)
    return sliding_window_view(across, size, axis=0).max(axis=-1)


def min_filter(image: np.ndarray, size: int) -> np.ndarray:
    """The minimum over a size x size square around each pixel."""
    return -max_filter(-image, size)


def resized(channel: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A float image resized to (width, height) bilinearly (itself when the size is already that)."""
    if channel.shape[::-1] == size:
        return channel.astype(np.float32)
    return np.asarray(Image.fromarray(np.ascontiguousarray(channel, dtype=np.float32), "F").resize(
        size, Image.Resampling.BILINEAR))


def with_alpha(image: Image.Image, alpha: Image.Image | None) -> Image.Image:
    if alpha is not None:
        image.putalpha(alpha)
    return image
