"""The photo side of an edit: carry the change an edit makes in the model's small frame onto the full-resolution
photo, so that everything the edit does not touch keeps the photo's own pixels.

With z the face's code and z' the edited code, the change is delta = decode(z') - decode(z), an image in the
model's frame (64x64, values in [-1, 1]). It is faded out by a soft mask (the head as headregion.py finds it in
the aligned face, hair included, fading out near the frame's edge; where that does not apply, an ellipse around
the face's landmarks within a disc that ends inside the frame: the edit reaches the head, not the background), then
mapped into the photo by the inverse of the face's Placement (the alignment's similarity, the crop and the resize)
with a bicubic resampling, which both upsamples it smoothly to the face's size in the photo and turns it with the
face (for a large face, a bicubic warp onto every few photo pixels, then a separable bicubic upsampling to all:
see COARSE_SPACING). The photo gets photo + strength * delta: where the mask is zero, its pixels are kept bit for
bit. No torch here: the caller decodes.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
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
# Where the head region is known (headregion.py: face, hair, ears, hat and neck), it joins the oval and replaces
# the disc: the edit follows the hair and stops at the background. The head's probability is softened by a
# Gaussian of HEAD_BLUR pixels of a 64-pixel frame, then ramps (smoothstep) from 0 at HEAD_EDGE[0] to 1 at
# HEAD_EDGE[1]: full strength inside the head, exactly 0 (the photo's own pixels) in the background, a soft edge
# between. Hair reaches the frame's edge, so the mask fades out over the last BORDER of the frame's side.
HEAD_BLUR, HEAD_EDGE, BORDER = 1.0, (0.1, 0.9), 0.1
# An edit of the hair's colour (catalogue.REGIONS: "hair") lands where headregion.py finds hair, softened as the head
# is: the face keeps its skin and its light. The eyes and brows stay the photo's own even under a fringe: nothing
# lands within an ellipse centred SPARED_EYES[0] eye distances above the eyes' line, of semi-axes SPARED_EYES[1]
# along it and SPARED_EYES[2] across it (with the oval's fall-off). Held out with faces-large, `+ grey-hair` kept the
# person on 63 of 65 CelebA photos (on the whole head 62, on the hair without the ellipse 61; docs/judges.md).
SPARED_EYES = (0.15, 1.2, 0.6)
# An attribute of the lower face (catalogue.REGIONS: a smile, an open mouth) lands below the eyes only: the mask
# ramps (smoothstep) from 0 to 1 between LOWER_FACE[0] and LOWER_FACE[1] of the way from the eyes' line down to the
# nose tip. The model draws a smile with a squint and brows that move, and those carry who the person is.
LOWER_FACE = (0.4, 0.9)
# An attribute worn across the eyes (catalogue.REGIONS: glasses) lands in a band along the eyes' line only: full
# strength from EYE_BAND[1] above it (the brows) to EYE_BAND[2] below it (half way down the nose), in the same
# units, ramping (smoothstep) to 0 at EYE_BAND[0] and EYE_BAND[3]; across the whole head, so the arms reach the
# ears. The mouth, the chin and the forehead stay the photo's own.
EYE_BAND = (-1.0, -0.6, 0.5, 0.8)
# What is worn across the eyes is drawn by its edges. The model draws frames 64 pixels wide, so that on a photo they
# come out soft (the face parser saw no glasses on half the faces where a person did) under a grey haze where the
# lenses lie, the model's blur of them, which hides the eyes and with them who the person is. So an "eyes" change
# keeps the detail that darkens (what a Gaussian of FRAME_SIGMA model pixels takes away, where it is negative)
# FRAME_DETAIL times over, the detail that lightens only once (boosted too, it drew bright halos beside the frames,
# which cost the person) and FRAME_COARSE of the rest: sharp dark frames over clear lenses.
FRAME_SIGMA, FRAME_DETAIL, FRAME_COARSE = 1.0, 3.0, 0.3
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # a colour model's change on a grey photo (ITU-R 601)
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I")
# A face that spans many photo pixels per model pixel has its change warped at every step-th photo pixel only,
# about COARSE_SPACING model pixels apart, then upsampled to every pixel by a separable bicubic resize: the 2-D warp
# (the costly part) then samples step^2 times fewer pixels. The change is a bicubic interpolation of 64x64 pixels,
# smooth at a quarter of one: a decoded change comes out within 2 grey levels of warping every pixel (most pixels
# the same), and even noise from model pixel to pixel within 4% of its range. COARSE_PAD coarse pixels around the
# box feed the resize's kernel (2 either side).
COARSE_SPACING, COARSE_PAD = 0.25, 2


def placement_mask(placement: Placement, size: int) -> np.ndarray:
    """blend_mask for the face and the region of an edit's Placement."""
    return blend_mask(size, placement.landmarks, placement.head, placement.region, placement.hair)


def blend_mask(size: int, landmarks: np.ndarray | None = None, head: np.ndarray | None = None,
               region: str = "head", hair: np.ndarray | None = None) -> np.ndarray:
    """float32 (size, size) in [0, 1]: where the edit lands in the model's frame. With the head's probability
    (headregion.py): the head, softened (HEAD_BLUR, HEAD_EDGE), together with the oval around the face's landmarks
    (which fills what the head net misses on a face: a hand, a veil), fading out within BORDER of the frame's edge.
    Without it: a disc at the centre of the frame, falling to 0 towards its border, times the oval when the
    landmarks (in model pixels) are given. `region` "lower-face" keeps only what lies below the eyes (LOWER_FACE),
    "eyes" only the band along them (EYE_BAND), where the landmarks are known; "hair" only the hair, softened as
    the head is, but for the eyes and brows (SPARED_EYES), where its probability is known (else the whole head)."""
    pixels = np.arange(size, dtype=np.float32) + 0.5
    if region == "hair" and hair is not None:
        mask = softened(hair) * frame_border(pixels)
        return (mask if landmarks is None else mask * (1.0 - around_the_eyes(pixels, landmarks))).astype(np.float32)
    mask = head_mask(pixels, landmarks, head)
    if region == "lower-face" and landmarks is not None:
        mask = mask * lower_face(pixels, landmarks)
    elif region == "eyes" and landmarks is not None:
        mask = mask * eye_band(pixels, landmarks)
    return mask.astype(np.float32)


def head_mask(pixels: np.ndarray, landmarks: np.ndarray | None, head: np.ndarray | None) -> np.ndarray:
    """blend_mask's mask of the whole head (or of the disc and oval)."""
    size = len(pixels)
    oval = None if landmarks is None else face_oval(pixels, landmarks)
    if head is not None:
        inside = softened(head)
        if oval is not None:
            inside = np.maximum(inside, oval)
        return inside * frame_border(pixels)
    mask = fall_off(np.hypot(*np.meshgrid(pixels - size / 2, pixels - size / 2)) / (size / 2))
    return mask if oval is None else mask * oval


def softened(probability: np.ndarray) -> np.ndarray:
    """A probability map of the frame (the head's, the hair's) as a mask: blurred (HEAD_BLUR), then 0 below
    HEAD_EDGE[0], 1 above HEAD_EDGE[1], a smoothstep between."""
    size = probability.shape[-1]
    return smoothstep((blurred(probability, HEAD_BLUR * size / 64) - HEAD_EDGE[0]) / (HEAD_EDGE[1] - HEAD_EDGE[0]))


def frame_border(pixels: np.ndarray) -> np.ndarray:
    """(S, S): 1 inside the frame, falling to 0 over the last BORDER of its side (the hair reaches its edge)."""
    edge = smoothstep(np.minimum(pixels, len(pixels) - pixels) / (BORDER * len(pixels)))
    return np.minimum.outer(edge, edge)


def lower_face(pixels: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """0 above the eyes, 1 from near the nose tip down (LOWER_FACE), measured across the eyes' line, so that a
    tilted face is cut along its own eyes."""
    below = below_eyes(pixels, landmarks)
    return smoothstep((below - LOWER_FACE[0]) / (LOWER_FACE[1] - LOWER_FACE[0]))


def eye_band(pixels: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """1 in the band along the eyes' line (EYE_BAND), falling smoothly to 0 above and below it."""
    below = below_eyes(pixels, landmarks)
    top, full_top, full_bottom, bottom = EYE_BAND
    return smoothstep((below - top) / (full_top - top)) * smoothstep((bottom - below) / (bottom - full_bottom))


def below_eyes(pixels: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Each pixel's distance below the eyes' line, measured at right angles to it (a tilted face is cut along its
    own eyes), in units of the nose tip's distance below that line."""
    eyes, _, down, _ = eye_line(landmarks)
    depth = max(float((landmarks[2] - eyes) @ down), 1e-6)  # the nose tip's distance below the eyes' line
    x, y = np.meshgrid(pixels - eyes[0], pixels - eyes[1])
    return (x * down[0] + y * down[1]) / depth


def eye_line(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The eyes' midpoint, the unit vectors along their line (left eye to right) and at right angles to it (+90 deg:
    towards the mouth), and the eye distance."""
    across = landmarks[1] - landmarks[0]
    eye_distance = max(float(np.linalg.norm(across)), 1e-6)
    along = across / eye_distance
    return landmarks[:2].mean(axis=0), along, np.array([-along[1], along[0]]), eye_distance


def around_the_eyes(pixels: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """An ellipse over the eyes and brows (SPARED_EYES), along the face's own eye line, 1 inside and falling to 0 (as
    fall_off) at its edge."""
    above, along_axis, across_axis = SPARED_EYES
    eyes, along, down, eye_distance = eye_line(landmarks)
    centre = eyes - above * eye_distance * down
    x, y = np.meshgrid(pixels - centre[0], pixels - centre[1])
    return fall_off(np.hypot((x * along[0] + y * along[1]) / (along_axis * eye_distance),
                             (x * down[0] + y * down[1]) / (across_axis * eye_distance)))


def face_oval(pixels: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """An ellipse around the face (see FACE_WIDTH), 1 inside and falling to 0 (as fall_off) at its edge."""
    eyes, mouth = landmarks[:2].mean(axis=0), landmarks[3:].mean(axis=0)
    centre = eyes + FACE_CENTRE * (mouth - eyes)
    eye_distance = float(np.linalg.norm(landmarks[1] - landmarks[0]))
    x, y = np.meshgrid((pixels - centre[0]) / (FACE_WIDTH * eye_distance),
                       (pixels - centre[1]) / (FACE_HEIGHT * eye_distance))
    return fall_off(np.hypot(x, y))


def smoothstep(t: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, 3t^2 - 2t^3 between."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def blurred(image: np.ndarray, sigma: float) -> np.ndarray:
    """A 2-D float image blurred by a Gaussian of `sigma` pixels (separable; the border repeats its edge)."""
    radius = max(1, math.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel = (kernel / kernel.sum()).astype(np.float32)
    padded = np.pad(image.astype(np.float32), radius, mode="edge")
    across = sliding_window_view(padded, len(kernel), axis=1) @ kernel  # the kernel is symmetric: no flip needed
    return sliding_window_view(across, len(kernel), axis=0) @ kernel


def frame_edges(change: np.ndarray) -> np.ndarray:
    """An "eyes" change (C, S, S) drawn by its edges: FRAME_DETAIL x the detail that darkens, the detail that
    lightens as it is, FRAME_COARSE x the coarse part."""
    coarse = np.stack([blurred(channel, FRAME_SIGMA * change.shape[-1] / 64) for channel in change])
    detail = change - coarse
    return (FRAME_DETAIL * np.minimum(detail, 0) + np.maximum(detail, 0) + FRAME_COARSE * coarse).astype(np.float32)


def fall_off(radius: np.ndarray) -> np.ndarray:
    """1 within MASK_INNER, 0 beyond MASK_OUTER, a smoothstep between."""
    return smoothstep((MASK_OUTER - radius) / (MASK_OUTER - MASK_INNER))


def footprint(placement: Placement, size: int, photo_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom): the photo pixels the model's frame can reach, padded for the bicubic kernel and
    clipped to the photo."""
    return photo_box(placement, (0, 0, size, size), (0, 0, *photo_size))


def photo_box(placement: Placement, rectangle: tuple[float, float, float, float],
              within: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom): the photo pixels a rectangle of the model's frame covers, padded by 2 pixels
    and clipped to the box `within`."""
    x0, y0, x1, y1 = rectangle
    corners = [(complex(x, y) - placement.b) / placement.a for x in (x0, x1) for y in (y0, y1)]
    left = max(within[0], math.floor(min(c.real for c in corners)) - 2)
    top = max(within[1], math.floor(min(c.imag for c in corners)) - 2)
    right = min(within[2], math.ceil(max(c.real for c in corners)) + 2)
    bottom = min(within[3], math.ceil(max(c.imag for c in corners)) + 2)
    return left, top, max(left, right), max(top, bottom)


def change_in_photo(change: np.ndarray, placement: Placement,
                    box: tuple[int, int, int, int]) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """The masked change (C, S, S) resampled onto the photo pixels of `box`: the part of the box it reaches
    (left, top, right, bottom; zero elsewhere) and float32 (h, w, C) there, channels last as in the photo."""
    size = change.shape[-1]
    masked = change * placement_mask(placement, size)[None]
    nothing = box[:2] * 2, np.zeros((0, 0, len(masked)), np.float32)
    if not masked.any():
        return nothing
    # only the part of the box that the mask's support (and 2 model pixels around it, the bicubic kernel) covers
    (x0, x1), (y0, y1) = support(masked.any(axis=(0, 1))), support(masked.any(axis=(0, 2)))
    left, top, right, bottom = box = photo_box(placement, (x0 - 2, y0 - 2, x1 + 2, y1 + 2), box)
    if right <= left or bottom <= top:
        return nothing
    step = coarse_step(placement)
    pad = COARSE_PAD if step > 1 else 0
    # Coarse pixel index i is box pixel step (i - pad): coarse pixel u (continuous, as Pillow's) is box coordinate
    # step u + origin. Enough coarse pixels that the last box pixel's kernel (up to coarse index i + 2) stays inside.
    origin = 0.5 - step * (pad + 0.5)
    columns, rows = ((extent - 1) // step + 1 + (2 * pad + 1 if step > 1 else 0)
                     for extent in (right - left, bottom - top))
    # Pillow's AFFINE maps each output pixel to the point it samples: coarse u -> a (step u + origin + corner) + b
    a, b = placement.a * step, placement.a * complex(left + origin, top + origin) + placement.b
    coefficients = (a.real, -a.imag, b.real, a.imag, a.real, b.imag)

    def warp(channel: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(np.ascontiguousarray(channel), "F").transform(
            (columns, rows), Image.Transform.AFFINE, coefficients, resample=Image.Resampling.BICUBIC))

    # One channel after another: warping on the coarse grid takes a few ms, less than starting threads on a busy
    # machine (they used to share a full-size warp).
    coarse = np.stack([warp(channel) for channel in masked], axis=-1)
    reached = (coarse != 0).any(axis=-1)
    if not reached.any():
        return nothing
    (x0, x1), (y0, y1) = support(reached.any(axis=0)), support(reached.any(axis=1))
    if step == 1:  # every pixel is sampled already: keep the part reached
        return (left + x0, top + y0, left + x1, top + y1), coarse[y0:y1, x0:x1]
    # the box pixels whose kernel (coarse index i - 1 to i + 2) may meet a reached coarse pixel, with one to spare:
    # the others stay zero
    (x0, x1), (y0, y1) = [(max(0, step * (first - 3 - pad)), min(extent, step * (end + 2 - pad)))
                          for (first, end), extent in (((x0, x1), right - left), ((y0, y1), bottom - top))]
    across = upsample_rows(np.ascontiguousarray(coarse.transpose(1, 0, 2)), step, pad, x0, x1 - x0)
    delta = upsample_rows(np.ascontiguousarray(across.transpose(1, 0, 2)), step, pad, y0, y1 - y0)
    return (left + x0, top + y0, left + x1, top + y1), delta


def coarse_step(placement: Placement) -> int:
    """Every how many photo pixels the change is warped before it is upsampled to all: about COARSE_SPACING model
    pixels apart (1, every pixel, for a face that spans under 6 photo pixels per model pixel)."""
    return max(1, round(COARSE_SPACING / abs(placement.a)))


def upsample_rows(coarse: np.ndarray, step: int, pad: int, first: int, count: int) -> np.ndarray:
    """Rows first to first + count of `coarse` (rows, ...) upsampled `step` times along its first axis, row j from
    coarse row pad + j / step, with the bicubic kernel of Pillow's resize (so a separable resize in numpy, which
    keeps the channels last and skips Pillow's copies out)."""
    start, stop = first // step, (first + count - 1) // step + 1
    # the 4 coarse rows under fine rows k step to k step + step - 1 lie next to each other in memory: each group
    # of fine rows is one small matrix product, (step, 4) x (4, row)
    windows = sliding_window_view(coarse.reshape(len(coarse), -1), 4, axis=0)[start + pad - 1:stop + pad - 1]
    fine = np.matmul(bicubic_weights(step), windows.transpose(0, 2, 1))
    fine = fine.reshape((stop - start) * step, *coarse.shape[1:])
    return fine[first - start * step:first - start * step + count]


def bicubic_weights(step: int) -> np.ndarray:
    """float32 (step, 4): the weights of coarse rows i - 1 to i + 2 for the point step-th parts past row i
    (Keys' cubic, a = -0.5, as Pillow's BICUBIC)."""
    distance = np.abs(np.array([1.0, 0.0, -1.0, -2.0]) + np.arange(step)[:, None] / step)
    near = (1.5 * distance - 2.5) * distance * distance + 1
    far = ((-0.5 * distance + 2.5) * distance - 4) * distance + 2
    return np.where(distance < 1, near, np.where(distance < 2, far, 0.0)).astype(np.float32)


def support(reached: np.ndarray) -> tuple[int, int]:
    """(first, end): the range of indices where the 1-D bool array is true (end exclusive)."""
    indices = np.flatnonzero(reached)
    return int(indices[0]), int(indices[-1]) + 1


def apply_change(photo: Image.Image, change: np.ndarray, placement: Placement, strength: float = 1.0) -> Image.Image:
    """The photo with strength x `change` (float (C, S, S) in the model's frame, a difference of two decodings)
    added where the face lies. Grey photos stay grey (a colour change counts by its luminance), colour photos stay
    colour (a grey model's change lifts every channel alike); alpha is kept; 16-bit and CMYK photos come back as
    8-bit grey and RGB, as the encoder reads them. A change in the "eyes" region is drawn by its edges
    (frame_edges)."""
    edited, alpha = editable_image(photo)
    channels = len(edited.getbands())
    if placement.region == "eyes":  # glasses: sharp frames, clear lenses
        change = frame_edges(change)
    # scaled to grey levels, and made grey, in the model's frame: the resampling is linear, and there it is cheap
    change = change.astype(np.float32) * np.float32(255.0 * strength)
    if channels == 1 and change.shape[0] == 3:
        change = np.tensordot(LUMA, change, axes=1)[None]
    box, delta = change_in_photo(change, placement, footprint(placement, change.shape[-1], photo.size))
    if box[2] > box[0] and box[3] > box[1]:
        # Only the part the change reaches goes through numpy. It is summed, rounded and clipped in place, the
        # fewest passes over its pixels (a grey model's change on a colour photo makes a new array, for every
        # channel).
        region = np.asarray(edited.crop(box)).reshape(*delta.shape[:2], channels)
        total = np.add(delta, region, out=delta if delta.shape[-1] == channels else None, dtype=np.float32)
        total = np.clip(np.rint(total, out=total), 0, 255, out=total).astype(np.uint8)
        edited.paste(Image.fromarray(total[..., 0] if channels == 1 else total), box[:2])
    if alpha is not None:
        edited.putalpha(alpha)
    return edited


def editable_image(photo: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """A new 8-bit grey or RGB image of the photo to edit, and the alpha channel to put back (None when the photo
    has none)."""
    alpha = None
    if photo.mode in ("RGBA", "LA", "PA") or (photo.mode == "P" and "transparency" in photo.info):
        photo = photo.convert("RGBA")  # a palette's transparency (bytes) would warn on the way to RGB
        alpha = photo.getchannel("A")
    grey = photo.mode in ("1", "L", "LA", *SIXTEEN_BIT)
    return (to_mode(photo, 1) if photo.mode in SIXTEEN_BIT else photo.convert("L" if grey else "RGB")), alpha
