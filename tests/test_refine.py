"""Refined codes (--refine STEPS): gradient steps through the frozen decoder, on the bundled orl model's held-out
faces and through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import REPO, assert_usage_error, run_cli
from facealgebra.checkpoint import load_model
from facealgebra.data import load_data
from facealgebra.latents import Latents
from facealgebra.refine import refined


@pytest.fixture(scope="module")
def orl():
    loaded = load_model("orl")
    faces = load_data("orl?split=test", loaded.model.cfg.image_size, loaded.model.cfg.channels).images[:6]
    return loaded, torch.from_numpy(faces).float() / 255.0


def errors(model, codes, x) -> torch.Tensor:
    with torch.no_grad():
        return (model.decode(codes) - x).abs().mean(dim=(1, 2, 3))


def test_refining_brings_every_decoding_closer_and_leaves_the_weights_alone(orl):
    loaded, x = orl
    model = loaded.model
    before_weights = {name: p.detach().clone() for name, p in model.named_parameters()}
    with torch.no_grad():
        codes = model.encode(x)
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
