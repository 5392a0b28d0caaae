"""Taking glasses off a photo (inpaint.remove_worn), without a model: a synthetic face wears thin dark frames
around its eyes; a change that lightens the eye band (as the model's `- glasses` does) paints the frames out and
leaves the eyes, and everything beyond the band, the photo's own; what the model's picture without glasses draws
under the frames (a brow) is cloned into the fill."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from facealgebra.align import Placement
from facealgebra.catalogue import removes_worn
from facealgebra.editing import draw_change
from facealgebra.inpaint import max_filter, min_filter, remove_worn
from conftest import REPO, run_cli

PHOTOS = REPO / "examples" / "photos"

SIZE = 64
LANDMARKS = np.array([[22.0, 27.0], [42.0, 27.0], [32.0, 39.0], [23.5, 47.75], [40.5, 47.75]])
PHOTO_SIDE = 256  # 4 photo pixels a model pixel: the eyes 80 pixels apart, shrunk to 64 for the work


def placement() -> Placement:
    return Placement(complex(SIZE / PHOTO_SIDE), 0j, LANDMARKS, region="eyes", tuned=False, removes=True)


def face_with_glasses() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 (S, S, 3): skin with a soft gradient, dark pupils at the eyes, and a 4-pixel dark ring (a frame) of
    radius 28 photo pixels around each eye; and the masks of the rings and of the pupils."""
    rows, columns = np.mgrid[0:PHOTO_SIDE, 0:PHOTO_SIDE] + 0.5
    skin = np.stack([200 - 0.1 * rows, 160 - 0.05 * columns, 130 + 0 * rows], axis=-1)
    ring, pupil = np.zeros(rows.shape, bool), np.zeros(rows.shape, bool)
    for x, y in LANDMARKS[:2] * PHOTO_SIDE / SIZE:
        distance = np.hypot(columns - x, rows - y)
        ring |= np.abs(distance - 28) < 2
        pupil |= distance < 6
    photo = skin.copy()
    photo[ring] = (40, 30, 30)
    photo[pupil] = (20, 20, 25)
    return np.clip(photo, 0, 255).astype(np.uint8), ring, pupil


def lightening() -> np.ndarray:
    """What the model's `- glasses` gives: a soft lightening along the eyes."""
    rows, _ = np.mgrid[0:SIZE, 0:SIZE]
    return np.stack([0.1 * np.exp(-((rows - 27.0) / 8) ** 2)] * 3).astype(np.float32)


def pictures(change: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's pictures before and after a `change`: a flat face after, the change undone before (the frames
    the model draws are darker where its change lightens)."""
    after = np.full_like(change, 0.5)
    return after - change, after


def test_thin_dark_frames_are_painted_out_and_the_eyes_stay():
    photo, ring, pupil = face_with_glasses()
    after = np.asarray(remove_worn(Image.fromarray(photo), *pictures(lightening()), placement())).astype(float)
    skin_near = np.asarray(photo, float)[~ring & ~pupil]
    # the frame's pixels now look like the skin around them, not like the frame
    assert np.abs(after[ring] - photo[ring]).mean() > 100
    assert np.abs(after[ring].mean(axis=0) - skin_near.mean(axis=0)).max() < 20
    assert np.array_equal(after[pupil], photo[pupil])  # the eyes are guarded
    below = after[200:], photo[200:]  # the mouth and chin, beyond the eye band: bit for bit
    assert np.array_equal(*below)


def test_frames_the_model_does_not_take_away_stay():
    """The photo's dark lines are painted only where the model's change lightens: where it darkens (as adding
    glasses does) the dark frames stay dark (the light skin along them may be painted: a light line to the white
    top-hat, which the fill blurs into the frame's edge), and no change paints nothing."""
    photo, ring, _ = face_with_glasses()
    luma = np.array([0.299, 0.587, 0.114])
    darkened = np.asarray(remove_worn(Image.fromarray(photo), *pictures(-lightening()), placement())) @ luma
    removed = np.asarray(remove_worn(Image.fromarray(photo), *pictures(lightening()), placement())) @ luma
    assert darkened[ring].mean() < 120 < 150 < removed[ring].mean()  # the frame: 33 before
    unchanged = remove_worn(Image.fromarray(photo), *pictures(np.zeros((3, SIZE, SIZE), np.float32)), placement())
    assert np.array_equal(np.asarray(unchanged), photo)


def test_strength_blends_the_fill_part_way_and_without_landmarks_nothing_is_painted():
    photo, ring, _ = face_with_glasses()
    whole = np.asarray(remove_worn(Image.fromarray(photo), *pictures(lightening()), placement())).astype(float)
    half = np.asarray(remove_worn(Image.fromarray(photo), *pictures(lightening()), placement(), 0.5)).astype(float)
    np.testing.assert_allclose(half[ring], (whole[ring] + photo[ring]) / 2, atol=1.01)
    unplaced = replace(placement(), landmarks=None)
    assert np.array_equal(np.asarray(remove_worn(Image.fromarray(photo), *pictures(lightening()), unplaced)), photo)


def test_a_grey_photo_stays_grey_and_alpha_is_kept():
    photo, ring, _ = face_with_glasses()
    grey = Image.fromarray(photo).convert("L")
    after = remove_worn(grey, *pictures(lightening()), placement())
    assert after.mode == "L" and np.abs(np.asarray(after, float)[ring] - np.asarray(grey, float)[ring]).mean() > 60
    rgba = Image.fromarray(photo).convert("RGBA")
    rgba.putalpha(Image.fromarray(np.full(photo.shape[:2], 77, np.uint8)))
    edited = remove_worn(rgba, *pictures(lightening()), placement())
    assert edited.mode == "RGBA" and (np.asarray(edited)[..., 3] == 77).all()


def test_a_large_face_is_worked_on_shrunk_and_its_frames_still_go():
    photo, ring, pupil = face_with_glasses()
    big = Image.fromarray(photo).resize((1024, 1024), Image.Resampling.NEAREST)
    where = replace(placement(), a=complex(SIZE / 1024))
    after = np.asarray(remove_worn(big, *pictures(lightening()), where)).astype(float)
    ring_big = np.asarray(Image.fromarray(ring).resize((1024, 1024), Image.Resampling.NEAREST))
    assert np.abs(after[ring_big] - np.asarray(big, float)[ring_big]).mean() > 80
    assert np.array_equal(after[800:], np.asarray(big)[800:])


def test_what_the_model_draws_under_the_frames_is_cloned_into_the_fill():
    """The model's picture without glasses draws a dark brow across the top of each frame: the painted frame is
    darker there than when the picture is flat (the fill alone would give the skin around it), by about the brow's
    depth, and the photo's pixels outside the frames stay the same either way."""
    photo, ring, _ = face_with_glasses()
    change = lightening()
    before, flat = pictures(change)
    rows, _ = np.mgrid[0:SIZE, 0:SIZE]
    brow = np.where(np.abs(rows - 20.5) < 1.5, 0.25, 0.0)[None].astype(np.float32)  # model rows 19-22
    plain = np.asarray(remove_worn(Image.fromarray(photo), before, flat, placement())).astype(float)
    browed = np.asarray(remove_worn(Image.fromarray(photo), before - brow, flat - brow, placement())).astype(float)
    under = ring & (np.abs(np.mgrid[0:PHOTO_SIDE, 0:PHOTO_SIDE][0] + 0.5 - 20.5 * PHOTO_SIDE / SIZE) < 4)
    assert under.sum() > 50
    assert (plain[under] - browed[under]).mean() > 0.5 * 0.25 * 255
    away = ~max_filter(ring.astype(np.float32), 17).astype(bool)
    assert np.array_equal(plain[away], browed[away])


def test_draw_change_paints_out_only_for_a_removal():
    photo, ring, _ = face_with_glasses()
    before, after = pictures(lightening())
    added = np.asarray(draw_change(Image.fromarray(photo), before, after, replace(placement(), removes=False)))
    removed = np.asarray(draw_change(Image.fromarray(photo), before, after, placement()))
    assert not np.array_equal(added, removed)
    assert np.abs(removed[ring].astype(float) - photo[ring]).mean() > 100  # painted out
    assert np.abs(added[ring].astype(float) - photo[ring]).mean() < 40  # only lightened a little


@pytest.mark.parametrize("region, weights, expected", [
    ("eyes", [-1.0], True), ("eyes", [-0.5, -1.0], True), ("eyes", [1.0], False), ("eyes", [1.0, -1.0], False),
    ("head", [-1.0], False), ("lower-face", [-1.0], False)])
def test_only_an_expression_that_subtracts_what_is_worn_across_the_eyes_removes(region, weights, expected):
    assert removes_worn(region, weights) is expected


def test_the_square_filters_are_the_max_and_min_around_each_pixel():
    image = np.random.default_rng(0).uniform(size=(9, 11)).astype(np.float32)
    padded = np.pad(image, 2, mode="edge")
    expected = np.array([[padded[r:r + 5, c:c + 5].max() for c in range(11)] for r in range(9)])
    np.testing.assert_array_equal(max_filter(image, 5), expected)
    np.testing.assert_array_equal(min_filter(image, 5), -max_filter(-image, 5))


def test_taking_glasses_off_a_face_without_them_leaves_it_as_it_is(tmp_path):
    """Through the real CLI, a batch over a face that wears no glasses (its code reads below catalogue.WORN):
    `- glasses` paints nothing, where it would otherwise smear its brows and the shadows along its eyes."""
    photo, out = tmp_path / "bare.png", tmp_path / "out"
    Image.open(PHOTOS / "generated-12.jpg").convert("RGB").save(photo)
    result = run_cli("arith", "-", "-", "glasses", "--model", "faces-large", "-o", f"{out}/", "--device", "cpu",
                     input=f"{photo}\n".encode())
    assert result.returncode == 0, result.stderr
    assert np.array_equal(np.asarray(Image.open(out / "bare.png").convert("RGB")), np.asarray(Image.open(photo)))
    assert "the model reads no glasses on this face: left as it is" in result.stderr


def test_taking_glasses_off_without_alignment_leaves_the_photo_and_says_why(tmp_path):
    """The paint is placed by the eyes' landmarks: with --align off `- glasses` notes that it leaves the face."""
    photo, out = tmp_path / "worn.png", tmp_path / "out.png"
    Image.open(PHOTOS / "generated-23.jpg").convert("RGB").save(photo)  # a man who wears glasses
    result = run_cli("arith", photo, "-", "glasses", "--model", "faces-large", "--align", "off", "-o", out,
                     "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "paints out of an aligned face only" in result.stderr
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), np.asarray(Image.open(photo)))
