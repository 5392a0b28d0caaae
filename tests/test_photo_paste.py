"""The paste of a change onto a photo (photoedit), without a model: a face much larger than the model's frame gets
its change warped on a coarse grid and upsampled, which must stay the bicubic warp of every pixel within rounding."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PIL import Image

from facealgebra.align import Placement
from facealgebra.photoedit import (FRAME_COARSE, apply_change, blend_mask, change_in_photo, coarse_step, footprint,
                                   frame_edges)

SIZE = 64
LANDMARKS = np.array([[22.0, 27.0], [42.0, 27.0], [32.0, 39.0], [23.5, 47.75], [40.5, 47.75]])


def large_face(side: int = 1024) -> Placement:
    """A face that fills a side x side photo, a little turned: about 13 photo pixels per model pixel."""
    scale = SIZE / (0.85 * side)
    a = scale * np.exp(0.03j)
    return Placement(complex(a), complex(-a * complex(0.07 * side, 0.1 * side)), LANDMARKS)


def every_pixel_warp(change: np.ndarray, placement: Placement, box: tuple[int, int, int, int]) -> np.ndarray:
    """float32 (h, w, C): the masked change warped by Pillow's bicubic AFFINE at every pixel of the box."""
    left, top, right, bottom = box
    a, b = placement.a, placement.a * complex(left, top) + placement.b
    masked = change * blend_mask(SIZE, placement.landmarks)[None]
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(channel), "F").transform(
        (right - left, bottom - top), Image.Transform.AFFINE, (a.real, -a.imag, b.real, a.imag, a.real, b.imag),
        resample=Image.Resampling.BICUBIC)) for channel in masked], axis=-1)


def test_a_large_faces_change_is_the_every_pixel_warp_within_a_few_percent_even_for_pixel_noise():
    placement = large_face()
    assert coarse_step(placement) > 1  # the coarse path is the one under test
    # noise from pixel to pixel over the whole range: the hardest change to interpolate (a decoded one is smoother)
    change = np.random.default_rng(0).uniform(-255, 255, (3, SIZE, SIZE)).astype(np.float32)
    box = footprint(placement, SIZE, (1024, 1024))
    (left, top, right, bottom), delta = change_in_photo(change, placement, box)
    placed = np.zeros((box[3] - box[1], box[2] - box[0], 3), np.float32)
    placed[top - box[1]:bottom - box[1], left - box[0]:right - box[0]] = delta
    exact = every_pixel_warp(change, placement, box)
    error = np.abs(placed - exact)
    assert error.max() < 0.03 * 255 and np.quantile(error[exact != 0], 0.99) < 0.01 * 255
    reached = np.zeros(exact.shape[:2], bool)
    reached[top - box[1]:bottom - box[1], left - box[0]:right - box[0]] = True
    assert not exact[~reached].any()  # the part of the box left out is the part the full warp leaves at zero


def test_a_zero_change_gives_the_photo_back_bit_for_bit():
    photo = Image.fromarray(np.random.default_rng(1).integers(0, 256, (1024, 1024, 3), dtype=np.uint8))
    edited = apply_change(photo, np.zeros((3, SIZE, SIZE), np.float32), large_face())
    assert np.array_equal(np.asarray(edited), np.asarray(photo))


def test_pixels_beyond_the_change_keep_the_photos_own():
    photo = Image.fromarray(np.random.default_rng(2).integers(0, 256, (1024, 1024, 3), dtype=np.uint8))
    placement = large_face()
    change = np.full((3, SIZE, SIZE), 0.3, np.float32)
    (left, top, right, bottom), _ = change_in_photo(change * 255, placement, footprint(placement, SIZE, photo.size))
    before, after = np.asarray(photo), np.asarray(apply_change(photo, change, placement))
    outside = np.ones(before.shape[:2], bool)
    outside[top:bottom, left:right] = False
    assert np.array_equal(after[outside], before[outside])
    assert (after[~outside] != before[~outside]).any(axis=-1).mean() > 0.3


def test_glasses_are_drawn_by_their_edges_sharp_frames_over_clear_lenses():
    """An "eyes" change (glasses) keeps the detail that darkens, boosted, and little of its coarse part: a thin dark
    line (a frame) gets darker against its surroundings, a broad haze (the model's blur of the lenses) fades."""
    rows, columns = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    frame = -0.2 * (rows == 27) * ((columns > 15) & (columns < 50))
    haze = -0.1 * np.exp(-((rows - 30) ** 2 + (columns - 32) ** 2) / (2 * 8.0 ** 2))
    change = np.stack([frame + haze] * 3).astype(np.float32)
    drawn = frame_edges(change)
    assert drawn.dtype == np.float32 and drawn.shape == change.shape

    def line_depth(image: np.ndarray) -> float:  # how much darker the frame is than just above and below it
        return float(image[0, 26, 32] / 2 + image[0, 28, 32] / 2 - image[0, 27, 32])

    assert line_depth(drawn) > 1.6 * line_depth(change)  # the frame stands out more
    light = np.stack([-frame] * 3).astype(np.float32)  # a light line is not boosted: the halos cost the person
    assert -line_depth(frame_edges(light)) < 1.4 * -line_depth(light)
    assert abs(drawn[0, 40, 32]) < 0.5 * abs(change[0, 40, 32])  # below it, only haze: mostly gone
    flat = np.full((3, SIZE, SIZE), -0.1, np.float32)
    np.testing.assert_allclose(frame_edges(flat), FRAME_COARSE * flat, atol=1e-6)  # no detail: FRAME_COARSE of it


def test_only_an_eyes_change_is_drawn_by_its_edges():
    photo = Image.fromarray(np.random.default_rng(3).integers(0, 256, (1024, 1024, 3), dtype=np.uint8))
    rows, columns = np.mgrid[0:SIZE, 0:SIZE]
    change = np.stack([-0.2 * (rows == 27) * ((columns > 15) & (columns < 50))] * 3).astype(np.float32)
    head, eyes = large_face(), replace(large_face(), region="eyes")

    def pasted(change: np.ndarray, placement: Placement) -> np.ndarray:
        (left, top, right, bottom), delta = change_in_photo(change * 255, placement,
                                                            footprint(placement, SIZE, photo.size))
        total = np.asarray(photo, np.float32).copy()
        total[top:bottom, left:right] += delta
        return np.clip(np.rint(total), 0, 255).astype(np.uint8)

    assert np.array_equal(np.asarray(apply_change(photo, change, eyes)), pasted(frame_edges(change), eyes))
    assert np.array_equal(np.asarray(apply_change(photo, change, head)), pasted(change, head))
