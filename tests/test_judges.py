"""The offline judges on real photos: identity (dlib), expression (FER), face parsing (BiSeNet), realism (KID)."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from PIL import Image

from facealgebra.judges.edits import GLASSES_OFF, GLASSES_ON, TESTS
from facealgebra.judges.expression import ExpressionJudge
from facealgebra.judges.identity import SAME_PERSON, IdentityJudge, identity_scores
from facealgebra.judges.reading import Judges
from facealgebra.judges.realism import RealismJudge, kid
from conftest import REPO, run_cli
from judge_photos import NOT_SMILING, SMILING, celeba_file, celeba_photo

REPO_EXAMPLES = REPO / "examples"


@pytest.fixture(scope="module")
def identity() -> IdentityJudge:
    return IdentityJudge.load()


@pytest.fixture(scope="module")
def judges() -> Judges:
    return Judges(parser_side=256)


def shrunk(photo: Image.Image, side: int = 64) -> Image.Image:
    return photo.resize((side, side), Image.Resampling.LANCZOS).resize((256, 256), Image.Resampling.BICUBIC)


def test_a_photo_and_its_64_pixel_copy_are_the_same_person(identity):
    photo = celeba_photo(1)
    distance = np.linalg.norm(identity.descriptor(photo) - identity.descriptor(photo.crop((20, 40, 158, 178))))
    assert distance < SAME_PERSON


def test_two_photos_of_one_person_are_the_same_person(identity):
    first, second = (identity.descriptor(Image.open(REPO_EXAMPLES / name)) for name in ("a-glasses.png",
                                                                                        "b-no-glasses.png"))
    assert np.linalg.norm(first - second) < SAME_PERSON


def test_two_people_are_different_people(identity):
    first, second = identity.descriptor(celeba_photo(1)), identity.descriptor(celeba_photo(2))
    assert np.linalg.norm(first - second) > SAME_PERSON


def test_identity_scores_count_same_person_and_rank1():
    photos = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    # kept; 0.7 from its own photo and nearer another; 0.7 from its own photo and nearer it than any other
    others = np.array([[0.1, 0.0], [0.3, 0.0], [0.0, 1.7]])
    scores = identity_scores(photos, others)
    assert scores["same_person"] == pytest.approx(1 / 3) and scores["rank1"] == pytest.approx(2 / 3)
    assert scores["median_l2"] == pytest.approx(0.7)


def test_happy_is_high_on_smiles_and_low_on_neutral_faces(judges):
    frames = [judges.places(celeba_photo(number))[0].frame for number in SMILING + NOT_SMILING]
    happy = [reading["expression"]["happy"] for reading in judges.read_frames(frames)]
    assert min(happy[:len(SMILING)]) > 0.5 > max(happy[len(SMILING):])


def test_expression_probabilities_sum_to_one():
    probabilities = ExpressionJudge().probabilities([celeba_photo(1), celeba_photo(7)])
    assert probabilities.shape == (2, 7) and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_the_parser_sees_glasses_on_the_face_that_wears_them(judges):
    readings = [judges.read_frames([judges.places(Image.open(REPO_EXAMPLES / name))[0].frame])[0]
                for name in ("a-glasses.png", "b-no-glasses.png", "d-man-glasses.png", "d-man.png")]
    assert [reading["has_glasses"] for reading in readings] == [True, False, True, False]


def test_skin_ita_is_lower_for_a_darker_copy_of_the_face(judges):
    frame = judges.places(celeba_photo(1))[0].frame
    darker = Image.fromarray((np.asarray(frame, dtype=np.float32) * [0.55, 0.45, 0.35]).astype(np.uint8))
    light, dark = judges.read_frames([frame, darker])
    assert dark["skin_ita"] < light["skin_ita"] - 10


def test_every_face_of_a_photo_is_found_largest_first(judges):
    group = Image.new("RGB", (700, 300), (200, 200, 200))
    group.paste(celeba_photo(1).resize((134, 164)), (40, 60))
    group.paste(celeba_photo(7), (400, 40))
    places = judges.places(group)
    assert len(places) == 2 and places[0].box[0] > 300


def test_kid_is_near_zero_for_one_distribution_and_large_between_two():
    rng = np.random.default_rng(0)
    same = kid(rng.normal(size=(200, 16)), rng.normal(size=(200, 16)))
    shifted = kid(rng.normal(size=(200, 16)), rng.normal(1.0, size=(200, 16)))
    assert abs(same) < 0.05 < shifted


def test_realism_features_tell_faces_from_noise():
    judge = RealismJudge()
    faces = np.stack([np.asarray(celeba_photo(n).resize((64, 64)), dtype=np.float32).transpose(2, 0, 1) / 255
                      for n in range(1, 13)])
    noise = np.random.default_rng(0).uniform(size=faces.shape).astype(np.float32)
    features = judge.features(np.concatenate([faces, noise]))
    assert kid(features[:6], features[6:12]) < kid(features[:6], features[12:]) / 10


def test_glasses_added_by_faces_large_are_seen_by_the_parser_and_keep_the_person(judges, tmp_path):
    """Through the real CLI: the frames drawn by their edges (photoedit.frame_edges) are glasses to the face parser
    (drawn soft, as the model draws them, they read as none on this face), and the identity guard finds the same
    person."""
    out = tmp_path / "glasses.png"
    result = run_cli("arith", REPO_EXAMPLES / "photos" / "generated-14.jpg", "+", "glasses", "--model", "faces-large",
                     "-o", out, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    before, after = judges.read_frames([judges.places(Image.open(path))[0].frame
                                        for path in (REPO_EXAMPLES / "photos" / "generated-14.jpg", out)])
    assert before["glasses"] < GLASSES_OFF and after["glasses"] > GLASSES_ON
    distance = float(re.search(r"identity distance ([0-9.]+)", result.stderr).group(1))
    assert distance < SAME_PERSON


def test_glasses_taken_off_by_faces_large_are_gone_to_the_parser_and_keep_the_person(judges, tmp_path):
    """Through the real CLI: `- glasses` paints the photo's frames out (inpaint.py) where the model's change takes
    them away. The face parser sees glasses on this CelebA training photo (clear glasses with thin frames) and none
    after, the identity guard finds the same person, and the mouth is the photo's own pixels. Before, adding the
    model's change left the frames (0 of 10 held-out faces)."""
    photo = tmp_path / "000119.jpg"
    celeba_photo(119).save(photo, quality=95)
    out = tmp_path / "no-glasses.png"
    result = run_cli("arith", photo, "-", "glasses", "--model", "faces-large", "-o", out, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    before, after = judges.read_frames([judges.places(Image.open(path))[0].frame for path in (photo, out)])
    assert before["glasses"] > GLASSES_ON and after["glasses"] < GLASSES_OFF
    distance = float(re.search(r"identity distance ([0-9.]+)", result.stderr).group(1))
    assert distance < SAME_PERSON
    original, edited = np.asarray(Image.open(photo).convert("RGB")), np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(original[150:], edited[150:])  # below the eye band: untouched
    assert not np.array_equal(original[90:130], edited[90:130])


def test_a_smile_drawn_by_moving_the_photos_mouth_lands_and_keeps_the_skins_colour(judges, tmp_path):
    """Through the real CLI: `+ smile` moves the photo's own lips along the flow of the model's change (warping.py)
    and adds only what the move leaves out. On this CelebA training photo (a dark-skinned man, not smiling) FER's
    'happy' rises by more than 0.25 and the skin's ITA stays within 8 degrees (judges/edits.py). Adding the model's
    change instead raised 'happy' too, but lightened the skin by 12 degrees: not landed."""
    photo = tmp_path / "000044.jpg"
    shutil.copy(celeba_file(44), photo)
    out = tmp_path / "smile.png"
    result = run_cli("arith", photo, "+", "smile", "-o", out, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    before, after = judges.read_frames([judges.places(Image.open(path))[0].frame for path in (photo, out)])
    eligible, landed = TESTS[("smile", 1)][1]
    assert eligible(before) and landed(before, after), (before["expression"], after["expression"])
    distance = float(re.search(r"identity distance ([0-9.]+)", result.stderr).group(1))
    assert distance < SAME_PERSON
