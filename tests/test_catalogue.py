"""The attribute catalogue: learning (balanced directions, per-layer AUC, layers), the file beside a model, and
its names in arith and vectors through the real CLI (on the tiny model of the shared fixture)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import assert_usage_error, run_cli
from facealgebra.catalogue import WORN, Catalogue, catalogue_path, expression_region, model_catalogue
from facealgebra.checkpoint import load_model
from facealgebra.edit_evaluation import (choose_drawing, choose_scale, drawing_choices, layer_choices, sign_drawings,
                                         with_drawings)
from facealgebra.errors import FaceAlgebraError
from facealgebra.judges.catalogue_build import auc, chosen_layers, fit_directions, regions
from facealgebra.latents import Latents


# ---- learning --------------------------------------------------------------------------------------------------
def test_directions_are_balanced_against_a_correlated_attribute():
    rng = np.random.default_rng(0)
    smile = rng.random(4000) < 0.5
    mouth = np.where(rng.random(4000) < 0.8, smile, ~smile)  # open mouths go with smiles 80% of the time
    codes = np.outer(smile, [1.0, 0.0]) + np.outer(mouth, [0.0, 1.0]) + rng.normal(0, 0.1, (4000, 2))
    directions = fit_directions(codes, np.stack([smile, mouth], axis=1).astype(float))
    assert np.allclose(directions, np.eye(2), atol=0.03)  # a class-mean difference would mix them (0.6 off)
    mean_difference = codes[smile].mean(0) - codes[~smile].mean(0)
    assert mean_difference[1] > 0.5


def test_unsure_labels_move_no_direction():
    rng = np.random.default_rng(1)
    label = (rng.random(2000) < 0.5).astype(float)
    codes = np.outer(label, [2.0]) + rng.normal(0, 0.1, (2000, 1))
    unsure = label.copy()
    unsure[:500] = np.nan
    assert fit_directions(codes, unsure[:, None])[0, 0] == pytest.approx(2.0, abs=0.05)


def test_auc_is_one_half_and_zero_as_scores_separate():
    positive = np.array([True, True, False, False])
    assert auc(np.array([3.0, 4.0, 1.0, 2.0]), positive) == 1.0
    assert auc(np.array([1.0, 1.0, 1.0, 1.0]), positive) == 0.5
    assert auc(np.array([1.0, 2.0, 3.0, 4.0]), positive) == 0.0


def test_an_attribute_edits_the_layers_near_its_best_auc():
    aucs = np.array([[0.9, 0.85, 0.7, 0.5], [0.55, 0.52, 0.5, 0.51]])
    assert chosen_layers(aucs).tolist() == [[True, True, False, False], [True, False, False, False]]


# ---- the CLI ---------------------------------------------------------------------------------------------------
@pytest.fixture()
def catalogued(tiny_model, tmp_path) -> tuple[Path, Catalogue]:
    """A copy of the tiny model (2 layers x 2 dims) with a catalogue: glasses in layer 1 (scale 2), smile in
    layer 2 (scale 1)."""
    model = tmp_path / "model" / "tiny.safetensors"
    model.parent.mkdir()
    shutil.copy(tiny_model, model)
    fingerprint = Latents.load(encoded(model, tmp_path)).fingerprint
    catalogue = Catalogue(fingerprint, ["glasses", "smile"], ["rule a", "rule b"],
                          [np.array([[0.5, -0.25], [0.125, 0.0]]), np.array([[0.75, 0.5], [-0.5, 0.25]])],
                          np.array([[True, False], [False, True]]), np.array([[0.81, 0.6], [0.55, 0.7]]),
                          np.array([40, 30]), np.array([400, 300]), np.array([2.0, 1.0]))
    catalogue.save(catalogue_path(model))
    return model, catalogue


def face(tmp_path: Path) -> Path:
    path = tmp_path / "face.png"
    if not path.exists():
        pixels = np.zeros((20, 20), np.uint8)
        pixels[5:15, 6:14] = 200
        Image.fromarray(pixels).save(path)
    return path


def encoded(model: Path, tmp_path: Path) -> Path:
    out = tmp_path / "face.npz"
    if not out.exists():
        result = run_cli("encode", face(tmp_path), "-o", out, "--model", model, "--device", "cpu")
        assert result.returncode == 0, result.stderr
    return out


def arith_latent(model: Path, tmp_path: Path, *expression: str) -> Latents:
    out = tmp_path / "result.npz"
    result = run_cli("arith", *expression, "--decoded", "-o", tmp_path / "out.png", "--save-latent", out,
                     "--model", model, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    return Latents.load(out)


def test_a_named_attribute_edits_only_its_own_layers(catalogued, tmp_path):
    model, _ = catalogued
    before = Latents.load(encoded(model, tmp_path))
    after = arith_latent(model, tmp_path, str(face(tmp_path)), "+", "0.5*glasses", "-", "smile")
    assert np.allclose(after.layers[0] - before.layers[0], 0.5 * 2.0 * np.array([0.5, -0.25]), atol=1e-6)
    assert np.allclose(after.layers[1] - before.layers[1], -np.array([-0.5, 0.25]), atol=1e-6)


def test_layers_option_overrides_the_attributes_layers(catalogued, tmp_path):
    model, _ = catalogued
    before = Latents.load(encoded(model, tmp_path))
    after = arith_latent(model, tmp_path, str(face(tmp_path)), "+", "glasses", "--layers", "2")
    assert np.array_equal(after.layers[0], before.layers[0])  # glasses' own layer, left out by --layers
    assert np.allclose(after.layers[1] - before.layers[1], 2.0 * np.array([0.75, 0.5]), atol=1e-6)


def test_subtracting_an_attribute_takes_its_own_step(catalogued, tmp_path):
    model, catalogue = catalogued
    catalogue.negative_scale = np.array([0.5, 1.0])
    catalogue.save(catalogue_path(model))
    before = Latents.load(encoded(model, tmp_path))
    after = arith_latent(model, tmp_path, str(face(tmp_path)), "-", "glasses")
    assert np.allclose(after.layers[0] - before.layers[0], -0.5 * np.array([0.5, -0.25]), atol=1e-6)
    after = arith_latent(model, tmp_path, str(face(tmp_path)), "+", "glasses")
    assert np.allclose(after.layers[0] - before.layers[0], 2.0 * np.array([0.5, -0.25]), atol=1e-6)
    with np.load(catalogue_path(model)) as file:  # a catalogue from before: `- name` takes `scale`
        arrays = {key: file[key] for key in file.files if key != "negative_scale"}
    np.savez(tmp_path / "old.catalogue.npz", **arrays)
    assert Catalogue.load(tmp_path / "old.catalogue.npz").negative_scales().tolist() == [2.0, 1.0]


def test_subtracting_an_attribute_can_take_another_away_with_it(catalogued, tmp_path):
    model, catalogue = catalogued
    catalogue.negative_also = ["smile", ""]
    catalogue.negative_scale = np.array([0.5, 3.0])
    catalogue.save(catalogue_path(model))
    before = Latents.load(encoded(model, tmp_path))
    after = arith_latent(model, tmp_path, str(face(tmp_path)), "-", "glasses")  # smile's own - step, in its layer
    assert np.allclose(after.layers[0] - before.layers[0], -0.5 * np.array([0.5, -0.25]), atol=1e-6)
    assert np.allclose(after.layers[1] - before.layers[1], -3.0 * np.array([-0.5, 0.25]), atol=1e-6)
    after = arith_latent(model, tmp_path, str(face(tmp_path)), "+", "glasses")  # adding takes nothing else
    assert np.array_equal(after.layers[1], before.layers[1])
    rows = [json.loads(line) for line in run_cli("vectors", "--model", model, "--json").stdout.decode().splitlines()]
    assert rows[0]["negative_also"] == "smile" and rows[1]["negative_also"] == ""
    catalogue.negative_also = ["elbow", ""]
    catalogue.save(catalogue_path(model))
    assert_usage_error(run_cli("vectors", "--model", model), "elbow")


def test_an_unknown_name_lists_the_known_names(catalogued, tmp_path):
    model, _ = catalogued
    result = run_cli("arith", face(tmp_path), "+", "glases", "-o", tmp_path / "out.png", "--model", model,
                     "--device", "cpu")
    assert_usage_error(result, "glases", "known: glasses, smile")
    assert not (tmp_path / "out.png").exists()


def test_a_model_without_a_catalogue_says_how_to_build_one(tiny_model, tmp_path):
    result = run_cli("arith", face(tmp_path), "+", "glasses", "-o", tmp_path / "out.png", "--model", tiny_model,
                     "--device", "cpu")
    assert_usage_error(result, "glasses: no such file", "no attribute catalogue", "examples/build_catalogue.py")


def test_a_catalogue_of_another_model_is_refused(catalogued, tiny_model, tmp_path):
    model, catalogue = catalogued
    catalogue.fingerprint = "0" * 64
    catalogue.save(catalogue_path(model))
    result = run_cli("vectors", "--model", model)
    assert_usage_error(result, "another model", "build_catalogue.py")


def test_vectors_lists_name_layers_auc_and_counts(catalogued):
    model, _ = catalogued
    result = run_cli("vectors", "--model", model, "--json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert rows[0] == {"name": "glasses", "layers": [1], "auc": [0.81, 0.6], "with": 40, "without": 400,
                       "scale": 2.0, "negative_scale": 2.0, "negative_also": "", "region": "head",
                       "untuned": False, "negative_untuned": False, "label": "rule a"}
    assert [row["name"] for row in rows] == ["glasses", "smile"] and rows[1]["layers"] == [2]
    table = run_cli("vectors", "--model", model).stdout.decode()
    assert "glasses" in table and "0.81" in table and "AUC z2" in table and "scale" in table


def test_a_catalogue_saved_without_scales_reads_as_scale_one(catalogued, tmp_path):
    _, catalogue = catalogued
    path = tmp_path / "old.catalogue.npz"
    catalogue.save(path)
    with np.load(path) as file:
        arrays = {key: file[key] for key in file.files if key != "scale"}
    np.savez(path, **arrays)
    assert Catalogue.load(path).scale.tolist() == [1.0, 1.0]


def test_regions_are_saved_and_a_catalogue_without_them_lands_on_the_head(catalogued, tmp_path):
    _, catalogue = catalogued
    path = tmp_path / "regions.catalogue.npz"
    catalogue.regions = ["head", "lower-face"]
    catalogue.save(path)
    loaded = Catalogue.load(path)
    assert [loaded.region(name) for name in loaded.names] == ["head", "lower-face"]
    assert expression_region(loaded, ["smile"]) == "lower-face"
    assert expression_region(loaded, ["smile", "glasses"]) == "head"  # mixed: the whole head
    assert expression_region(loaded, []) == "head"
    with np.load(path) as file:
        arrays = {key: file[key] for key in file.files}
    np.savez(path, **{**arrays, "region": np.array(["head", "elbow"])})
    with pytest.raises(FaceAlgebraError, match="elbow"):
        Catalogue.load(path)
    del arrays["region"]
    np.savez(path, **arrays)
    assert Catalogue.load(path).region("smile") == "head"



@pytest.mark.parametrize("model", ["faces", "faces-large"])
def test_a_hair_colour_lands_on_the_hair_in_the_shipped_catalogues(model):
    assert regions(["blond", "black-hair", "grey-hair", "hat", "smile", "glasses", "dark-skin"]) == \
        ["hair", "hair", "hair", "head", "lower-face", "eyes", "head"]
    loaded = load_model(model)
    catalogue = model_catalogue(loaded.path, loaded.fingerprint, model)
    assert [catalogue.region(name) for name in catalogue.names] == regions(catalogue.names)


# ---- scale calibration -----------------------------------------------------------------------------------------------
def test_the_scale_chosen_lands_most_while_keeping_the_person():
    # (eligible, landed, kept): 3.0 lands most, but keeps the person on 16 of 30 faces; 2.0 on 28 of 30 (< 97 %)
    counts = {1.0: (30, 9, 30), 1.5: (30, 14, 30), 2.0: (30, 18, 28), 3.0: (30, 27, 16)}
    assert choose_scale(counts) == (1.5, 14 / 30)


def test_a_near_tie_goes_to_the_smaller_scale():
    counts = {1.0: (20, 10, 20), 1.5: (20, 16, 20), 2.0: (20, 17, 20), 3.0: (20, 17, 19)}
    assert choose_scale(counts)[0] == 1.5


def test_a_sign_with_too_few_faces_takes_the_other_signs_scale():
    assert choose_scale({1.0: (2, 2, 2), 2.0: (2, 2, 0)}) is None
    counts = {1.0: {1: (40, 4, 40), -1: (2, 2, 2)}, 2.0: {1: (40, 30, 40), -1: (2, 2, 0)}}
    assert choose_drawing({((0,), True): counts}) == ((0,), (True, True), (2.0, 2.0))


def test_each_sign_gets_its_own_scale():
    # adding lands more with a larger step and keeps the person; subtracting loses the person past 1.5
    counts = {1.0: {1: (40, 10, 40), -1: (40, 10, 40)}, 1.5: {1: (40, 20, 40), -1: (40, 20, 40)},
              3.0: {1: (40, 36, 40), -1: (40, 36, 30)}}
    assert choose_drawing({((1,), True): counts}) == ((1,), (True, True), (3.0, 1.5))


def test_with_no_scale_that_keeps_the_person_the_smallest_is_chosen():
    assert choose_scale({1.5: (10, 5, 9), 1.0: (10, 1, 5), 2.0: (10, 9, 5)}) == (1.0, 0.0)
    assert choose_drawing({((0,), True): {1.0: {1: (2, 1, 2)}, 2.0: {1: (1, 1, 1)}}}) == (
        (0,), (True, True), (1.0, 1.0))  # none judged


# ---- layer calibration -----------------------------------------------------------------------------------------------
def test_a_wider_layer_set_is_chosen_only_when_it_lands_clearly_more():
    narrow = {1.0: {1: (40, 10, 40)}, 2.0: {1: (40, 20, 40)}}
    wide = {1.0: {1: (40, 36, 40)}, 2.0: {1: (40, 38, 30)}}
    assert choose_drawing({((0,), True): narrow, ((0, 1), True): wide}) == ((0, 1), (True, True), (1.0, 1.0))
    wide = {1.0: {1: (40, 21, 40)}, 2.0: {1: (40, 22, 40)}}
    assert choose_drawing({((0,), True): narrow, ((0, 1), True): wide}) == ((0,), (True, True), (2.0, 2.0))
    # the wider set lands everywhere but never keeps the person
    assert choose_drawing({((0,), True): narrow, ((0, 1), True): {1.0: {1: (40, 40, 20)}}}) == (
        (0,), (True, True), (2.0, 2.0))


def test_the_layers_tried_widen_the_auc_choice_by_its_best_read_layer():
    aucs = np.array([[0.91, 0.74, 0.69, 0.66], [0.70, 0.78, 0.65, 0.81], [0.8, 0.8, 0.8, 0.8]])
    catalogue = Catalogue("f", ["blond", "smile", "hat"], ["a", "b", "c"], [np.ones((3, 2))] * 4,
                          np.ones((3, 4), bool), aucs, np.ones(3), np.ones(3), np.ones(3))
    assert layer_choices(catalogue, "blond") == [(0,), (0, 1)]  # z2 read next best; earlier choices ignored
    assert layer_choices(catalogue, "smile") == [(1, 3), (0, 1, 3)]
    assert layer_choices(catalogue, "hat") == [(0, 1, 2, 3)]  # every layer already
    widened = with_drawings(catalogue, {"blond": ((0, 1), True)})
    assert widened.layers[0].tolist() == [True, True, False, False] and catalogue.layers[0].all()


def test_each_layer_set_is_tried_tuned_then_untuned_and_glasses_untuned_only():
    aucs = np.array([[0.91, 0.74, 0.69, 0.66], [0.70, 0.78, 0.65, 0.81]])
    catalogue = Catalogue("f", ["glasses", "smile"], ["a", "b"], [np.ones((2, 2))] * 4, np.ones((2, 4), bool),
                          aucs, np.ones(2), np.ones(2), np.ones(2), untuned=[True, False])
    assert drawing_choices(catalogue, "smile") == [((1, 3), True), ((0, 1, 3), True), ((1, 3), False),
                                                   ((0, 1, 3), False)]
    assert drawing_choices(catalogue, "glasses") == [((0,), False), ((0, 1), False)]
    assert sign_drawings("smile", 1) == (True, False) and sign_drawings("smile", -1) == (True,)
    drawn = with_drawings(catalogue, {"smile": ((1,), (False, True))})
    assert drawn.layers[1].tolist() == [False, True, False, False]
    assert not drawn.drawn_tuned(["smile"]) and drawn.drawn_tuned(["smile"], [-1.0])
    assert drawn.untuned_note("smile") == ", untuned +" and drawn.untuned_note("glasses") == ", untuned"
    assert catalogue.drawn_tuned(["smile"]) and catalogue.untuned == [True, False]  # the copy alone changed
    # a catalogue with no drawings saved draws every attribute tuned until one is chosen
    bare = with_drawings(Catalogue("f", ["smile"], ["b"], [np.ones((1, 2))] * 4, np.ones((1, 4), bool),
                                   aucs[1:], np.ones(1), np.ones(1), np.ones(1)), {"smile": ((1,), True)})
    assert bare.untuned == [False] and bare.negative_untuned == [False]


def test_the_untuned_drawing_is_chosen_only_when_it_lands_clearly_more_and_where_a_sign_may_take_it():
    tuned = {1.0: {1: (40, 10, 40), -1: (40, 20, 40)}, 2.0: {1: (40, 28, 40), -1: (40, 30, 40)}}
    untuned = {1.0: {1: (40, 30, 40), -1: (40, 38, 40)}, 2.0: {1: (40, 38, 36), -1: (40, 39, 36)}}
    # + : untuned lands 30 at 1 against 28 tuned at 2 (a tie: tuned); - : 38 against 30 (untuned)
    assert choose_drawing({((1,), True): tuned, ((1,), False): untuned}) == ((1,), (True, False), (2.0, 1.0))
    untuned[1.0][1] = (40, 34, 40)
    assert choose_drawing({((1,), True): tuned, ((1,), False): untuned}) == ((1,), (False, False), (1.0, 1.0))
    # `-` may be drawn tuned only (a smile): it keeps its tuned scale
    assert choose_drawing({((1,), True): tuned, ((1,), False): untuned}, {1: (True, False), -1: (True,)}) == (
        (1,), (False, True), (1.0, 2.0))
    # a sign with too few faces takes the other's drawing and scale where it may
    few = [{scale: {1: counts[1], -1: (2, 2, 2)} for scale, counts in drawn.items()} for drawn in (tuned, untuned)]
    assert choose_drawing({((1,), True): few[0], ((1,), False): few[1]}) == ((1,), (False, False), (1.0, 1.0))
    assert choose_drawing({((1,), True): few[0], ((1,), False): few[1]}, {1: (True, False), -1: (True,)}) == (
        (1,), (False, True), (1.0, 1.0))  # `-` may not be untuned: tuned, at the other's scale


def test_untuned_is_saved_and_a_catalogue_without_it_draws_every_edit_tuned(catalogued, tmp_path):
    _, catalogue = catalogued
    path = tmp_path / "untuned.catalogue.npz"
    catalogue.untuned = [True, False]
    catalogue.save(path)
    loaded = Catalogue.load(path)
    assert not loaded.drawn_tuned(["glasses"]) and loaded.drawn_tuned(["smile"])
    assert not loaded.drawn_tuned(["smile", "glasses"])  # one untuned attribute: the whole change untuned
    assert not loaded.drawn_tuned(["glasses"], [-1.0])  # no `-` drawing of its own: as `+`
    catalogue.negative_untuned = [True, True]
    catalogue.save(path)
    loaded = Catalogue.load(path)
    assert loaded.drawn_tuned(["smile"]) and not loaded.drawn_tuned(["smile"], [-1.0])
    assert not loaded.drawn_tuned(["smile", "smile"], [1.0, -1.0])
    with np.load(path) as file:
        arrays = {key: file[key] for key in file.files if key not in ("untuned", "negative_untuned")}
    np.savez(path, **arrays)
    assert Catalogue.load(path).drawn_tuned(["glasses", "smile"], [1.0, -1.0])


def test_an_untuned_attribute_is_drawn_by_the_models_own_decoder(tmp_path):
    """Through the real CLI on the bundled faces model: with glasses marked untuned in a copy of its catalogue,
    `+ glasses` comes out exactly as with --tune 0, while `+ smile` (tuned) does not."""
    from conftest import REPO

    model = tmp_path / "model" / "faces.safetensors"
    model.parent.mkdir()
    shutil.copy(REPO / "weights" / "faces.safetensors", model)
    catalogue = Catalogue.load(REPO / "weights" / "faces.catalogue.npz")
    catalogue.untuned = [name == "glasses" for name in catalogue.names]
    catalogue.save(catalogue_path(model))
    photo = REPO / "examples" / "photos" / "generated-14.jpg"

    def edited(attribute: str, *tune: str) -> np.ndarray:
        out = tmp_path / f"{attribute}{''.join(tune)}.png"
        result = run_cli("arith", photo, "+", attribute, "-o", out, "--model", model, "--device", "cpu", *tune)
        assert result.returncode == 0, result.stderr
        return np.asarray(Image.open(out), dtype=np.int16)

    np.testing.assert_array_equal(edited("glasses"), edited("glasses", "--tune", "0"))
    assert np.abs(edited("smile") - edited("smile", "--tune", "0")).max() > 2
    vectors = run_cli("vectors", "--model", model, "--json")
    assert [json.loads(line)["untuned"] for line in vectors.stdout.splitlines()] == catalogue.untuned


def test_attributes_drawn_differently_are_drawn_one_after_another(tmp_path):
    """Through the real CLI on the bundled faces-large (the default model): `+ glasses - smile` draws the glasses
    as `+ glasses` alone does (in the eye band, by the model's own decoder), then the smile as `- smile` alone does
    (the photo's own mouth moved, by the tuned decoder). Drawn at once, by one decoder over the whole head, the
    pair had broken the face, the forehead and hair included."""
    from conftest import REPO

    photo = REPO / "examples" / "photos" / "generated-14.jpg"

    def edited(*expression: str) -> np.ndarray:
        out = tmp_path / f"{len(list(tmp_path.iterdir()))}.png"
        result = run_cli("arith", photo, *expression, "-o", out, "--device", "cpu")
        assert result.returncode == 0, result.stderr
        return np.asarray(Image.open(out).convert("RGB"), dtype=np.int16)

    original = np.asarray(Image.open(photo).convert("RGB"), dtype=np.int16)
    both, glasses, smile = edited("+", "glasses", "-", "smile"), edited("+", "glasses"), edited("-", "smile")

    def first_row_changed(picture: np.ndarray) -> int:
        return int(np.nonzero(np.abs(picture - original).max(axis=(1, 2)))[0][0])

    mouth = first_row_changed(smile)
    assert 0 < first_row_changed(glasses) < mouth
    np.testing.assert_array_equal(both[:mouth], glasses[:mouth])  # above the mouth: the glasses alone
    np.testing.assert_array_equal(both[:first_row_changed(glasses)], original[:first_row_changed(glasses)])
    assert np.abs(both[mouth:] - glasses[mouth:]).max() > 30  # and the smile drawn below


def test_a_part_with_nothing_to_take_off_leaves_the_rest_as_it_is_alone(tmp_path):
    """`- glasses + smile` on a face without glasses (faces-large, the default): the glasses part is left out,
    with one note, and the photo and the saved code are those of `+ smile`."""
    from conftest import REPO

    photo = REPO / "examples" / "photos" / "generated-14.jpg"
    outputs = {}
    for label, expression in (("both", ["-", "glasses", "+", "smile"]), ("smile", ["+", "smile"])):
        result = run_cli("arith", photo, *expression, "-o", tmp_path / f"{label}.png", "--save-latent",
                         tmp_path / f"{label}.npz", "--device", "cpu")
        assert result.returncode == 0, result.stderr
        outputs[label] = (np.asarray(Image.open(tmp_path / f"{label}.png")), Latents.load(tmp_path / f"{label}.npz"),
                          result.stderr)
    assert outputs["both"][2].count("reads no glasses") == 1
    np.testing.assert_array_equal(outputs["both"][0], outputs["smile"][0])
    for both, smile in zip(outputs["both"][1].layers, outputs["smile"][1].layers):
        np.testing.assert_array_equal(both, smile)


def test_a_face_wears_what_its_code_reads_above_worn_along_the_attributes_own_direction():
    """Catalogue.worn: `- glasses` takes off only what a face wears (a bare face is left as it is)."""
    catalogue = Catalogue("f", ["glasses", "smile"], ["a", "b"],
                          [np.array([[0.5, -0.25], [0.0, 0.0]]), np.array([[9.0, 9.0], [1.0, 0.0]])],
                          np.array([[True, False], [False, True]]), np.ones((2, 2)), np.ones(2), np.ones(2),
                          np.array([5.0, 1.0]))
    unit = np.array([0.5, -0.25]) / np.hypot(0.5, 0.25)

    def code(reading: float, other: float = 0.0) -> tuple[np.ndarray, ...]:
        return (np.array([reading * unit], np.float32), np.array([[other, other]], np.float32))

    assert catalogue.worn(["glasses"], code(WORN + 0.1)) and not catalogue.worn(["glasses"], code(WORN - 0.1))
    assert not catalogue.worn(["glasses"], code(0.0, other=50.0))  # only its own layers count (z2 is smile's)
    assert not catalogue.worn(["glasses"], code(-3.0))
    assert not catalogue.worn(["glasses", "smile"], code(3.0))  # every name must read as worn
