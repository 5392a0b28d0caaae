"""The head region that photo edits are masked with (facealgebra/headregion.py): the bundled net on real photos,
the models it applies to, the mask it makes, and an edit through the CLI that reaches the hair and leaves the
background bit for bit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, run_cli
from facealgebra import align
from facealgebra.checkpoint import load_model
from facealgebra.headregion import applies, head_file, head_region
from facealgebra.images import load_image
from facealgebra.judges import installed as judges_installed
from facealgebra.photoedit import blend_mask, change_in_photo, footprint

pytestmark = pytest.mark.skipif(not align.retinaface.installed(), reason="needs pip install 'facealgebra[align]'")

PHOTOS = REPO / "examples" / "photos"


def placed(photo_path, model: str = "faces"):
    """The model, the photo's aligned face (model input) and its placement, head region included, as
    editing.face_code places it."""
    loaded = load_model(model)
    array, placement = align.photo_input(loaded.preprocess, "on", None, model).place(load_image(photo_path), "photo")
    return loaded, array, replace(placement, head=head_region(loaded.preprocess, array))


def test_the_net_ships_with_the_package():
    assert head_file() is not None and head_file().stat().st_size < 1_000_000


@pytest.mark.parametrize("photo", ["generated-14.jpg", "generated-23.jpg", "astronaut.jpg"])
def test_the_head_covers_the_face_and_agrees_with_the_face_parser(photo):
    _, array, placement = placed(PHOTOS / photo)
    head = placement.head
    assert head.shape == array.shape[1:] and head.dtype == np.float32
    for x, y in np.round(placement.landmarks).astype(int):  # eyes, nose tip, mouth corners
        assert head[y, x] > 0.9
    if not judges_installed():
        pytest.skip("the parser is in the judges extra")
    from facealgebra.judges.parsing import CLASSES, FaceParser

    labels = FaceParser(side=256).labels([Image.fromarray(array.transpose(1, 2, 0))])[0]
    parsed = ~np.isin(labels, [CLASSES.index("background"), CLASSES.index("cloth")])
    parsed = parsed.reshape(64, 4, 64, 4).mean(axis=(1, 3)) > 0.5
    predicted = head > 0.5
    assert (predicted & parsed).sum() / (predicted | parsed).sum() > 0.85
    assert (~predicted).any()  # some background in every one of these frames


def test_the_head_reaches_above_the_eyes_into_the_hair():
    # generated-14 has dark hair above the forehead: the head goes on above the hairline, where the old
    # face oval stopped
    _, array, placement = placed(PHOTOS / "generated-14.jpg")
    head = placement.head
    oval = blend_mask(array.shape[-1], placement.landmarks)
    column = int(round(placement.landmarks[:2, 0].mean()))
    hair_rows = [row for row in range(array.shape[-1] // 2) if head[row, column] > 0.9 and oval[row, column] == 0]
    assert hair_rows, "the head region stops where the face oval does"


def test_models_on_other_templates_or_in_grey_keep_the_face_oval():
    orl = load_model("orl")
    assert not applies(orl.preprocess) and head_region(orl.preprocess, np.zeros((1, 64, 64), np.uint8)) is None
    assert applies(load_model("faces").preprocess) and applies(load_model("faces-4x10").preprocess)


def test_the_mask_from_a_head_is_soft_and_exactly_zero_outside():
    head = np.zeros((64, 64), np.float32)
    head[12:56, 16:48] = 1.0
    mask = blend_mask(64, None, head)
    assert mask[32, 32] == 1.0 and mask[32, 5] == 0.0 and mask[5, 32] == 0.0
    assert 0 < mask[32, 15] < mask[32, 16] < 1  # it ramps across the edge, no jump from 0 to 1
    assert np.abs(np.diff(mask, axis=1)).max() < 0.75


def test_an_edit_reaches_the_hair_and_leaves_the_background_bit_for_bit(tmp_path):
    photo = tmp_path / "portrait.png"
    Image.open(PHOTOS / "generated-14.jpg").save(photo)
    out = tmp_path / "out.png"
    result = run_cli("arith", photo, "+", "black-hair", "-o", out, "--model", "faces", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    before = np.asarray(Image.open(photo).convert("RGB"), dtype=np.int16)
    after = np.asarray(Image.open(out).convert("RGB"), dtype=np.int16)
    changed = (after != before).any(axis=-1)
    _, array, placement = placed(photo)
    size = array.shape[-1]

    def reach(place) -> np.ndarray:
        (left, top, right, bottom), mask = change_in_photo(np.ones((1, size, size), np.float32), place,
                                                           footprint(place, size, (before.shape[1], before.shape[0])))
        inside = np.zeros(before.shape[:2], dtype=bool)
        inside[top:bottom, left:right] = mask[..., 0] != 0
        return inside

    head_reach, oval_reach = reach(placement), reach(replace(placement, head=None))
    assert not changed[~head_reach].any()  # the background outside the head: the photo's own pixels
    assert changed[head_reach & ~oval_reach].mean() > 0.3  # the hair beyond the old oval is edited


def test_an_expression_lands_below_the_eyes_only():
    _, array, placement = placed(PHOTOS / "generated-14.jpg")
    size = array.shape[-1]
    head = blend_mask(size, placement.landmarks, placement.head)
    lower = blend_mask(size, placement.landmarks, placement.head, "lower-face")
    eyes_row = int(placement.landmarks[:2, 1].max())
    nose_row = int(np.ceil(placement.landmarks[2, 1]))
    assert not lower[:eyes_row + 1].any()  # the eyes, brows and hair: untouched
    np.testing.assert_array_equal(lower[nose_row + 1:], head[nose_row + 1:])  # the mouth and chin: the head's
    assert (lower <= head).all() and np.abs(np.diff(lower, axis=0)).max() < 0.75  # a soft edge, no seam


def test_glasses_land_in_a_band_along_the_eyes_only():
    _, array, placement = placed(PHOTOS / "generated-14.jpg")
    size = array.shape[-1]
    head = blend_mask(size, placement.landmarks, placement.head)
    band = blend_mask(size, placement.landmarks, placement.head, "eyes")
    eyes = placement.landmarks[:2].mean(axis=0)
    mouth_row = int(placement.landmarks[3:, 1].min())
    assert not band[mouth_row:].any()  # the mouth and chin: untouched
    assert not band[:max(0, int(eyes[1] - (placement.landmarks[2, 1] - eyes[1])))].any()  # the forehead and hair
    row = int(round(eyes[1]))
    np.testing.assert_array_equal(band[row], head[row])  # along the eyes' line: the head's, out to the ears
    assert (band <= head).all() and np.abs(np.diff(band, axis=0)).max() < 0.75  # a soft edge, no seam


def test_a_smile_leaves_the_eyes_and_hair_of_the_photo_bit_for_bit(tmp_path):
    photo = tmp_path / "portrait.png"
    Image.open(PHOTOS / "generated-14.jpg").save(photo)
    out = tmp_path / "out.png"
    result = run_cli("arith", photo, "+", "smile", "-o", out, "--model", "faces", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    before = np.asarray(Image.open(photo).convert("RGB"), dtype=np.int16)
    after = np.asarray(Image.open(out).convert("RGB"), dtype=np.int16)
    changed = (after != before).any(axis=-1)
    _, _, placement = placed(photo)
    # the photo's rows above the eyes' line (this face is upright) keep their pixels; the mouth changes
    eyes_y = max(((complex(x, y) - placement.b) / placement.a).imag for x, y in placement.landmarks[:2])
    mouth = [(complex(x, y) - placement.b) / placement.a for x, y in placement.landmarks[3:]]
    assert not changed[:int(eyes_y)].any()
    left, right = int(min(p.real for p in mouth)), int(max(p.real for p in mouth))
    row = int(np.mean([p.imag for p in mouth]))
    assert changed[row - 5:row + 5, left:right].mean() > 0.5
