"""Expression edits drawn by moving the photo's own pixels (warping.py), without a model: synthetic pictures whose
change is a known move."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from facealgebra.align import Placement
from facealgebra.catalogue import moves_mouth
from facealgebra.editing import draw_change
from facealgebra.photoedit import apply_change
from facealgebra import warping
from facealgebra.warping import fit_flow, move_features

SIZE, PHOTO_SIDE = 64, 256
LANDMARKS = np.array([[22.0, 27.0], [42.0, 27.0], [32.0, 39.0], [23.5, 47.75], [40.5, 47.75]])
MOUTH = (32.0, 48.0)  # model pixels


def placement(scale: float = SIZE / PHOTO_SIDE, turn: complex = 1.0) -> Placement:
    return Placement(complex(scale) * turn, 0j, LANDMARKS, region="lower-face", tuned=False, moves=True)


def mouth(shift: float = 0.0, width: float = 8.0) -> np.ndarray:
    """float32 (3, S, S) in [-1, 1]: light skin with a dark horizontal mouth at MOUTH, moved `shift` model
    pixels to the right."""
    rows, columns = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    dark = np.exp(-((columns - MOUTH[0] - shift) / width) ** 2 - ((rows - MOUTH[1]) / 2.5) ** 2)
    return np.stack([0.6 - 1.2 * dark, 0.3 - 1.0 * dark, 0.2 - 0.9 * dark]).astype(np.float32)


def photo_of(picture: np.ndarray, side: int = PHOTO_SIDE) -> Image.Image:
    """The model's picture enlarged to a photo."""
    pixels = ((picture.transpose(1, 2, 0) + 1) * 127.5).clip(0, 255).astype(np.uint8)
    return Image.fromarray(pixels).resize((side, side), Image.Resampling.BICUBIC)


def darkest(line: np.ndarray) -> float:
    """Where along a line of grey levels the dark (the mouth) is centred, in pixels."""
    weight = np.clip(line.max() - line, 0, None) ** 2
    return float((weight * np.arange(len(line))).sum() / weight.sum())


def mouth_column(photo: Image.Image) -> float:
    """The centre of the photo's mouth along the mouth's row, in photo pixels."""
    return darkest(np.asarray(photo.convert("L"), dtype=np.float32)[int(MOUTH[1] * photo.height / SIZE)])


def test_the_flow_fitted_moves_the_before_picture_onto_the_after_picture():
    before, after = mouth(), mouth(shift=2.0)
    mask = np.ones((SIZE, SIZE), np.float32)
    flow, moved = fit_flow(before, after, mask)
    near = np.hypot(*(np.mgrid[0:SIZE, 0:SIZE][::-1] + 0.5 - np.array(MOUTH)[:, None, None])) < 6
    # after(q) = before(q - 2): the flow points 2 pixels to the left, and nowhere much up or down
    assert abs(flow[0][near].mean() + 2.0) < 0.4 and abs(flow[1][near].mean()) < 0.3
    assert np.abs(moved - after).mean() < np.abs(before - after).mean() / 4


def test_a_change_that_moves_nothing_leaves_the_photo_bit_for_bit():
    photo = photo_of(mouth())
    picture = mouth()
    same = np.asarray(move_features(photo, picture, picture.copy(), placement()))
    assert np.array_equal(same, np.asarray(photo))


def test_the_photos_own_mouth_moves_and_no_second_mouth_is_painted():
    """The model's mouth moves 2 pixels to the right (8 photo pixels); the photo's mouth, drawn narrower than the
    model's, moves with it. Added as a change, the model's blurred mouth would darken the skin beside the photo's
    own instead."""
    photo = photo_of(mouth(width=5.0))
    before, after = mouth(), mouth(shift=2.0)
    moved = move_features(photo, before, after, placement())
    added = apply_change(photo, after - before, placement())
    start = mouth_column(photo)
    assert abs(mouth_column(moved) - start - 8.0) < 2.5
    row = int(MOUTH[1] * PHOTO_SIDE / SIZE)
    original, warped, painted = (np.asarray(image.convert("L"), dtype=np.float32)[row] for image in
                                 (photo, moved, added))
    # the row through the mouth is the photo's own, 8 pixels on; adding the change smears it (grey levels)
    span = slice(80, 190)
    shifted = original[span.start - 8:span.stop - 8]
    assert np.abs(warped[span] - shifted).mean() < 2 and np.abs(painted[span] - shifted).mean() > 10


def test_pixels_beyond_the_mask_stay_the_photos_own():
    photo = photo_of(mouth())
    moved = np.asarray(move_features(photo, mouth(), mouth(shift=2.0), placement()))
    original = np.asarray(photo)
    eyes_row = int(LANDMARKS[0, 1] * PHOTO_SIDE / SIZE)
    assert np.array_equal(moved[:eyes_row], original[:eyes_row])  # above the eyes: the lower face's mask is 0
    assert not np.array_equal(moved, original)


def test_the_move_follows_a_turned_face():
    """The photo turned a quarter (counter-clockwise): photo pixel p is model pixel a p + b with a = i/4 and b =
    SIZE, so the model's right is the photo's up. The model's mouth moving 2 pixels right moves the photo's mouth
    8 pixels up, along its own column."""
    photo = photo_of(mouth(width=5.0)).rotate(90)
    where = replace(placement(turn=1j), b=complex(SIZE))
    moved = move_features(photo, mouth(), mouth(shift=2.0), where)
    column = int(MOUTH[1] * PHOTO_SIDE / SIZE)  # the mouth's row, now a column
    before, after = (darkest(np.asarray(image.convert("L"), dtype=np.float32)[:, column]) for image in (photo, moved))
    assert abs(after - before + 8.0) < 2.5


def test_grey_photos_stay_grey_and_alpha_is_kept():
    before, after = mouth(), mouth(shift=2.0)
    grey = move_features(photo_of(before).convert("L"), before, after, placement())
    assert grey.mode == "L"
    transparent = photo_of(before).convert("RGBA")
    transparent.putalpha(128)
    kept = move_features(transparent, before, after, placement())
    assert kept.mode == "RGBA" and np.all(np.asarray(kept)[..., 3] == 128)


def test_only_an_edit_that_moves_the_mouth_is_drawn_by_moving():
    photo = photo_of(mouth(width=5.0))
    before, after = mouth(), mouth(shift=2.0)
    painted = replace(placement(), moves=False)  # mouth-open: the lower face, the change added
    moved = np.asarray(draw_change(photo, before, after, placement()))
    added = np.asarray(draw_change(photo, before, after, painted))
    assert np.array_equal(moved, np.asarray(move_features(photo, before, after, placement())))
    assert np.array_equal(added, np.asarray(apply_change(photo, after - before, painted)))


@pytest.mark.parametrize("region, names, expected", [
    ("lower-face", ["smile"], True), ("lower-face", ["mouth-open"], False),
    ("lower-face", ["smile", "mouth-open"], False), ("head", ["smile"], False), ("lower-face", [], False)])
def test_a_smile_alone_moves_the_mouth(region, names, expected):
    assert moves_mouth(region, names) is expected


def test_a_photo_resampled_in_bands_of_rows_is_the_photo_resampled_at_once(monkeypatch):
    photo = photo_of(mouth(width=5.0), side=512)
    before, after = mouth(), mouth(shift=2.0)
    where = placement(scale=SIZE / 512)
    monkeypatch.setattr(warping, "BAND_ROWS", 10_000)
    whole = np.asarray(move_features(photo, before, after, where))
    monkeypatch.setattr(warping, "BAND_ROWS", 7)
    banded = np.asarray(move_features(photo, before, after, where))
    assert np.array_equal(whole, banded) and not np.array_equal(whole, np.asarray(photo))
