"""A smile moves the photo's own mouth (the lower face's attributes in catalogue.MOVED).

Adding decode(z + smile) - decode(z) to a photo paints the model's blurred mouth over the photo's own: where the
two do not line up, a second mouth shows beside the first (a ghost), and the photo's lips do not move. Here the
model says how the face moves and the photo keeps its own pixels:

- a smooth flow u (model pixels) is fitted so that decode(z) sampled at q + u(q) matches decode(z + smile) within
  the region's blend mask: FLOW_GRID x FLOW_GRID control points, bilinearly upsampled, FLOW_STEPS steps of Adam at
  FLOW_RATE with a smoothness penalty (FLOW_SMOOTH times the mean squared difference of neighbouring points);
- the photo is resampled along the same flow, carried to photo pixels (u divided by the placement's scale and
  rotation) and faded out by the same mask (photoedit.change_in_photo), bilinearly;
- what the flow cannot explain (the teeth a smile shows: decode(z + smile) minus decode(z) sampled along u) is
  added as any change is (photoedit.apply_change).

Held out (CelebA 000900-000999), `+ smile` with `faces` landed on 46 of 57 faces where adding the change landed on
43, and `- smile` on 40 of 43 where it landed on 37 (docs/judges.md has both models and the generated faces). One
flow fit costs about 0.1 s on one core (benchmarks/expression_drawing.py). Pixels the mask does not reach stay the
photo's own, bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from facealgebra.align import Placement
from facealgebra.photoedit import apply_change, change_in_photo, editable_image, footprint, placement_mask

FLOW_GRID, FLOW_STEPS, FLOW_RATE, FLOW_SMOOTH = 16, 100, 0.1, 0.02
BAND_ROWS = 256  # photo rows resampled at a time


def fit_flow(before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The flow u, float32 (2, S, S) in model pixels (x, y), under which `before` (C, S, S) sampled at q + u(q)
    best matches `after` where the (S, S) mask weighs, and `before` so sampled (C, S, S)."""
    size = before.shape[-1]
    source = torch.from_numpy(np.ascontiguousarray(before, np.float32))[None]
    target = torch.from_numpy(np.ascontiguousarray(after, np.float32))[None]
    weight = torch.from_numpy(np.ascontiguousarray(mask, np.float32))[None, None]
    total = weight.sum().clamp(min=1.0)
    coarse = torch.zeros(2, FLOW_GRID, FLOW_GRID, requires_grad=True)
    up = upsampling(size, FLOW_GRID)
    centres = torch.arange(size, dtype=torch.float32) + 0.5
    rows, columns = torch.meshgrid(centres, centres, indexing="ij")
    base = torch.stack([columns, rows], dim=-1)[None]  # (1, S, S, 2): each pixel's centre, x then y

    def sampled() -> tuple[torch.Tensor, torch.Tensor]:
        flow = up @ coarse @ up.T  # (2, S, S): bilinear, one axis after the other
        where = (base + flow.permute(1, 2, 0)[None]) / size * 2 - 1
        return flow, F.grid_sample(source, where, mode="bilinear", padding_mode="border", align_corners=False)

    # one small tensor: the loop over it costs less than the grouped ("foreach") update's overhead
    optimiser = torch.optim.Adam([coarse], lr=FLOW_RATE, foreach=False)
    with torch.enable_grad():
        for _ in range(FLOW_STEPS):
            _, moved = sampled()
            across, down = coarse[..., 1:] - coarse[..., :-1], coarse[..., 1:, :] - coarse[..., :-1, :]
            loss = (((moved - target) ** 2) * weight).sum() / total
            loss = loss + FLOW_SMOOTH * ((across ** 2).mean() + (down ** 2).mean())
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        flow, moved = sampled()
    return flow.numpy(), moved[0].numpy()


def upsampling(size: int, grid: int) -> torch.Tensor:
    """float32 (size, grid): linear interpolation from `grid` points to `size` (pixel centres, as
    F.interpolate with align_corners=False); U c U^T upsamples a (grid, grid) array bilinearly."""
    basis = torch.eye(grid, dtype=torch.float32)[:, None, :]  # each grid point alone, as a 1-D signal
    return F.interpolate(basis, size=size, mode="linear", align_corners=False)[:, 0, :].T.contiguous()


def warp_photo(photo: Image.Image, flow: np.ndarray, placement: Placement, strength: float = 1.0) -> Image.Image:
    """The photo (8-bit grey or RGB) resampled along strength x `flow` (2, S, S, model pixels) where the face
    lies, faded out by the placement's blend mask; pixels it does not reach are kept bit for bit."""
    field = (flow[0] + 1j * flow[1]) * strength / placement.a  # a model displacement, in photo pixels
    field = np.stack([field.real, field.imag]).astype(np.float32)
    box, displacement = change_in_photo(field, placement, footprint(placement, flow.shape[-1], photo.size))
    left, top, right, bottom = box
    if right <= left or bottom <= top:
        return photo
    # only the part of the photo the samples can reach goes through numpy, in photo pixels from (x_from, y_from)
    reach = int(np.ceil(np.abs(displacement).max())) + 1
    x_from, y_from = max(0, left - reach), max(0, top - reach)
    source = photo.crop((x_from, y_from, min(photo.width, right + reach), min(photo.height, bottom + reach)))
    pixels = np.asarray(source, dtype=np.float32)
    pixels = pixels[..., None] if pixels.ndim == 2 else pixels
    moved = np.empty((bottom - top, right - left, pixels.shape[-1]), np.uint8)
    for first in range(0, bottom - top, BAND_ROWS):  # in bands of rows: a large face's arrays stay small
        band = slice(first, first + BAND_ROWS)
        moved[band] = bilinear(pixels, displacement[band], left - x_from, top - y_from + first)
    result = photo.copy()
    result.paste(Image.fromarray(moved[..., 0] if moved.shape[-1] == 1 else moved, photo.mode), (left, top))
    return result


def bilinear(pixels: np.ndarray, displacement: np.ndarray, left: int, top: int) -> np.ndarray:
    """uint8 (h, w, C): `pixels` (H, W, C) sampled bilinearly at (left + j, top + i) + displacement[i, j]
    (h, w, 2), clamped to its edges."""
    height, width = pixels.shape[:2]
    columns, rows = np.meshgrid(np.arange(left, left + displacement.shape[1], dtype=np.float32),
                                np.arange(top, top + displacement.shape[0], dtype=np.float32))
    x = np.clip(columns + displacement[..., 0], 0, width - 1)
    y = np.clip(rows + displacement[..., 1], 0, height - 1)
    x0, y0 = np.floor(x).astype(np.intp), np.floor(y).astype(np.intp)
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    moved = ((pixels[y0, x0] * (1 - fx) + pixels[y0, x1] * fx) * (1 - fy)
             + (pixels[y1, x0] * (1 - fx) + pixels[y1, x1] * fx) * fy)
    return np.clip(np.rint(moved), 0, 255).astype(np.uint8)


def move_features(photo: Image.Image, before: np.ndarray, after: np.ndarray, placement: Placement,
                  strength: float = 1.0) -> Image.Image:
    """The photo with the face's change from `before` to `after` (the model's pictures, float (C, S, S) in
    [-1, 1]) drawn by moving the photo's own pixels and adding what the move leaves out (the module docstring).
    Grey photos stay grey, alpha is kept; 16-bit and CMYK photos come back as 8-bit grey and RGB."""
    edited, alpha = editable_image(photo)
    mask = placement_mask(placement, before.shape[-1])
    flow, moved = fit_flow(before, after, mask)
    edited = apply_change(warp_photo(edited, flow, placement, strength), after - moved, placement, strength)
    if alpha is not None:
        edited.putalpha(alpha)
    return edited

