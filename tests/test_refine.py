"""Refined codes (--refine STEPS): gradient steps through the frozen decoder; tuned decoders (--tune STEPS): the
decoder's weights fitted to one face. On the bundled orl model's held-out faces and through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO, assert_usage_error, run_cli
from facealgebra.align import photo_input
from facealgebra.checkpoint import load_model
from facealgebra.data import load_data
from facealgebra.latents import Latents
from facealgebra.refine import TUNE_DEFAULT, reconstructions, refined, tuned


@pytest.fixture(scope="module")
def orl():
    loaded = load_model("orl")
    faces = load_data("orl?split=test", loaded.model.cfg.image_size, loaded.model.cfg.channels).images[:6]
    return loaded, torch.from_numpy(faces).float() / 255.0


def errors(model, codes, x) -> torch.Tensor:
    with torch.no_grad():
        return (model.decode(codes) - x).abs().mean(dim=(1, 2, 3))


def snapshot(orl):
    """The model, a copy of its weights as they are, and the encoder's codes of the faces."""
    model = orl[0].model
    with torch.no_grad():
        return model, {name: p.detach().clone() for name, p in model.named_parameters()}, model.encode(orl[1])


def test_refining_brings_every_decoding_closer_and_leaves_the_weights_alone(orl):
    x = orl[1]
    model, before_weights, codes = snapshot(orl)
    better = refined(model, x, codes, 20)
    assert (errors(model, better, x) < errors(model, codes, x)).all()
    assert all(torch.equal(p, before_weights[name]) for name, p in model.named_parameters())
    assert all(p.requires_grad for p in model.parameters())
    assert refined(model, x, codes, 0) is codes


def test_a_face_is_refined_alike_alone_or_in_a_batch(orl):
    loaded, x = orl
    model = loaded.model
    with torch.no_grad():
        codes = model.encode(x)
    together = refined(model, x, codes, 10)
    alone = refined(model, x[2:3], [code[2:3] for code in codes], 10)
    for layer_together, layer_alone in zip(together, alone):
        assert torch.allclose(layer_together[2:3], layer_alone, atol=1e-4)


def test_encode_and_eval_refine_through_the_cli(tmp_path):
    photo = REPO / "examples" / "a-glasses.png"
    for steps in ("0", "20"):
        result = run_cli("encode", photo, "--model", "orl", "--refine", steps, "-o", tmp_path / f"{steps}.npz",
                         "--device", "cpu")
        assert result.returncode == 0, result.stderr
    plain, better = Latents.load(tmp_path / "0.npz"), Latents.load(tmp_path / "20.npz")
    assert not all(np.array_equal(a, b) for a, b in zip(plain.layers, better.layers))
    figures = {}
    for steps in ("0", "20"):
        result = run_cli("eval", "--model", "orl", "--data", "orl?split=test", "--refine", steps, "--device", "cpu",
                         "--json", tmp_path / f"eval{steps}.json")
        assert result.returncode == 0, result.stderr
        figures[steps] = json.loads((tmp_path / f"eval{steps}.json").read_text())["reconstruction"]
    assert figures["20"]["refine_steps"] == 20 and figures["0"]["refine_steps"] == 0
    assert figures["20"]["psnr"] > figures["0"]["psnr"] + 0.3
    assert "codes refined by 20 steps" in result.stderr


@pytest.mark.parametrize("command", [("encode", "x.png", "-o", "out.npz"), ("arith", "x.png", "-o", "out.png"),
                                     ("eval", "--model", "orl", "--data", "orl")])
def test_a_step_count_out_of_range_is_refused(command, tmp_path):
    assert_usage_error(run_cli(*command, "--refine", "-1", cwd=tmp_path), "--refine")
    assert not list(tmp_path.iterdir())


# ---- --tune: the decoder tuned to one face ---------------------------------------------------------------------
def test_a_tuned_decoder_draws_its_face_closer_and_leaves_the_model_alone(orl):
    x = orl[1]
    model, before_weights, codes = snapshot(orl)
    for row in range(3):
        face, code = x[row:row + 1], [layer[row:row + 1] for layer in codes]
        copy = tuned(model, face, code, TUNE_DEFAULT)
        assert copy is not model
        assert errors(copy, code, face)[0] < 0.9 * errors(model, code, face)[0]
        assert not any(p.requires_grad for p in copy.parameters())
    assert all(torch.equal(p, before_weights[name]) for name, p in model.named_parameters())
    assert tuned(model, x[:1], [layer[:1] for layer in codes], 0) is model


def test_reconstructions_tune_each_face_on_its_own(orl):
    loaded, x = orl
    model = loaded.model
    with torch.no_grad():
        codes = model.encode(x)
        together = reconstructions(model, x[:3], [layer[:3] for layer in codes], 5)
        alone = tuned(model, x[1:2], [layer[1:2] for layer in codes], 5).decode([layer[1:2] for layer in codes])
        assert torch.allclose(together[1:2], alone, atol=1e-5)
        assert torch.equal(reconstructions(model, x, codes, 0), model.decode(codes))


def test_arith_and_eval_tune_through_the_cli(tmp_path):
    """--decoded draws a photo's reconstruction: closer to the photo with the tuned decoder; eval on a folder tunes
    by default and reports the untuned figure beside it."""
    photo = REPO / "examples" / "a-glasses.png"
    drawn = {}
    for steps in ("0", "30"):
        result = run_cli("arith", photo, "+", "0*" + str(photo), "--decoded", "--model", "orl", "--tune", steps,
                         "-o", tmp_path / f"{steps}.png", "--device", "cpu")
        assert result.returncode == 0, result.stderr
        drawn[steps] = np.asarray(Image.open(tmp_path / f"{steps}.png").convert("L"), dtype=np.float32)
    loaded = load_model("orl")
    seen = photo_input(loaded.preprocess, "auto", None, "orl")(Image.open(photo), "a")[0].astype(np.float32)
    assert np.abs(drawn["30"] - seen).mean() < 0.8 * np.abs(drawn["0"] - seen).mean()
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.open(photo).save(folder / "a.png")
    result = run_cli("eval", "--model", "orl", "--data", folder, "--judges", "off", "--device", "cpu", "--json",
                     tmp_path / "eval.json")
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "eval.json").read_text())["reconstruction"]
    assert figures["tune_steps"] == TUNE_DEFAULT and figures["psnr"] > figures["untuned"]["psnr"] + 1
    assert f"decoder tuned to each image by {TUNE_DEFAULT} steps" in result.stderr
    # toyfaces was trained on drawn faces, not photos: not tuned unless asked
    for steps, expected in ((None, 0), ("5", 5)):
        result = run_cli("eval", "--model", "toyfaces", "--data", folder, "--judges", "off", "--device", "cpu",
                         "--json", tmp_path / "toy.json", *(("--tune", steps) if steps else ()))
        assert result.returncode == 0, result.stderr
        assert json.loads((tmp_path / "toy.json").read_text())["reconstruction"]["tune_steps"] == expected


@pytest.mark.parametrize("command", [("arith", "x.png", "-o", "out.png"), ("traverse", "-o", "out.png"),
                                     ("eval", "--model", "orl", "--data", "orl")])
@pytest.mark.parametrize("steps", ["-1", "1001"])
def test_a_tune_count_out_of_range_is_refused(command, steps, tmp_path):
    assert_usage_error(run_cli(*command, "--tune", steps, cwd=tmp_path), "--tune")
    assert not list(tmp_path.iterdir())
