"""Each metric of facealgebra.evaluate on a case with a known answer, and the `eval` command end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from facealgebra.evaluate import (
    arithmetic_scores,
    cross_validated_accuracy,
    factor_reconstruction,
    layer_mi,
    logistic_regression,
    majority_label,
    mig,
    normalised_mi,
    stratified_folds,
)
from conftest import assert_usage_error, run_cli

FACTORS = {"a": 4, "b": 5, "c": 3, "d": 2}


def random_factors(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(n, size=count) for n in FACTORS.values()], axis=1)


# ---- MI and MIG ------------------------------------------------------------------------------------------------
def test_mig_is_one_when_each_dim_copies_one_factor():
    factors = random_factors(5000)  # the runner-up dims score only the plug-in estimator's small positive bias
    assert mig(normalised_mi(factors.astype(float), factors)) == pytest.approx(1.0, abs=0.005)


def test_mig_is_about_zero_for_noise():
    factors = random_factors(5000)
    noise = np.random.default_rng(1).normal(size=(5000, 8))
    assert mig(normalised_mi(noise, factors)) < 0.01


def test_layer_mi_takes_the_best_dim_of_each_layer():
    factors = random_factors(5000)
    noise = np.random.default_rng(1).normal(size=(5000, 2))
    latents = np.concatenate([noise, factors[:, :1].astype(float), noise], axis=1)  # factor a in layer 2
    per_layer = layer_mi(normalised_mi(latents, factors), [2, 1, 2])
    assert per_layer.shape == (3, len(FACTORS))
    assert per_layer[:, 0].argmax() == 1 and per_layer[1, 0] == pytest.approx(1.0)


# ---- probes ----------------------------------------------------------------------------------------------------
def test_probe_on_noise_is_at_chance():
    labels = np.random.default_rng(0).integers(10, size=4000)
    noise = np.random.default_rng(1).normal(size=(4000, 4))
    fold = stratified_folds(labels, 4, seed=0)
    assert abs(cross_validated_accuracy(logistic_regression, noise, labels, fold) - 0.1) < 0.03
    assert abs(cross_validated_accuracy(majority_label, noise, labels, fold) - 0.1) < 0.03


def test_probe_reads_a_label_the_features_hold():
    labels = np.random.default_rng(0).integers(5, size=2000)
    features = np.eye(5)[labels] + 0.1 * np.random.default_rng(1).normal(size=(2000, 5))
    fold = stratified_folds(labels, 4, seed=0)
    assert cross_validated_accuracy(logistic_regression, features, labels, fold) > 0.98


def test_stratified_folds_deal_every_label_evenly():
    labels = np.repeat(np.arange(4), [8, 12, 20, 40])
    fold = stratified_folds(labels, 4, seed=3)
    for k in range(4):
        assert np.bincount(labels[fold == k]).tolist() == [2, 3, 5, 10]


# ---- arithmetic ------------------------------------------------------------------------------------------------
def linear_render(values: dict[str, int], size: int, channels: int) -> np.ndarray:
    """Factor k sets the brightness of column band k, linearly in its value: an exactly linear 'renderer'."""
    image = np.zeros((channels, size, size), dtype=np.uint8)
    band = size // len(FACTORS)
    for k, (name, count) in enumerate(FACTORS.items()):
        image[:, :, k * band:(k + 1) * band] = round(255 * values[name] / (count - 1))
    return image


def band_encode(images: torch.Tensor) -> list[torch.Tensor]:
    """Reads each band's brightness back; factors a, b form layer 1 and c, d layer 2."""
    band = images.shape[-1] // len(FACTORS)
    levels = images[:, 0, 0, ::band][:, :len(FACTORS)]
    return [levels[:, :2], levels[:, 2:]]


def band_decode(latents: list[torch.Tensor]) -> torch.Tensor:
    levels = torch.cat(latents, dim=1)
    size = 16
    return levels.repeat_interleave(size // len(FACTORS), dim=1)[:, None, None, :].expand(-1, 1, size, -1)


def test_arithmetic_is_exact_for_a_model_linear_in_the_factors():
    scores = arithmetic_scores(band_encode, band_decode, linear_render, FACTORS, {"a": 1, "b": 1, "c": 2, "d": 2},
                               image_size=16, channels=1, seed=0, triples=40)
    assert set(scores) == set(FACTORS)
    for score in scores.values():
        assert score["psnr"] == pytest.approx(100.0) and score["psnr_layer"] == pytest.approx(100.0)
        assert score["psnr_unedited"] < 30.0
        assert score["accuracy"] == 1.0 and score["accuracy_layer"] == 1.0


def test_arithmetic_in_the_wrong_layer_misses():
    wrong = {"a": 2, "b": 2, "c": 1, "d": 1}
    scores = arithmetic_scores(band_encode, band_decode, linear_render, FACTORS, wrong, image_size=16, channels=1,
                               seed=0, triples=40)
    for name, score in scores.items():
        assert score["psnr_layer"] == pytest.approx(score["psnr_unedited"]), name
        assert score["accuracy_layer"] == 0.0 and score["accuracy"] == 1.0, name


# ---- factor reconstruction -------------------------------------------------------------------------------------
def test_a_perfect_reconstruction_draws_every_factor():
    scores = factor_reconstruction(lambda x: x, linear_render, FACTORS, image_size=16, channels=1, seed=0, faces=50)
    assert {name: score["accuracy"] for name, score in scores.items()} == {name: 1.0 for name in FACTORS}
    assert {name: score["chance"] for name, score in scores.items()} == {name: 1 / n for name, n in FACTORS.items()}


def test_a_reconstruction_that_ignores_a_factor_scores_about_chance():
    def blank_band_a(x: torch.Tensor) -> torch.Tensor:  # factor a's band drawn at one level whatever a is
        x = x.clone()
        x[..., :16 // len(FACTORS)] = 0.5
        return x

    scores = factor_reconstruction(blank_band_a, linear_render, FACTORS, image_size=16, channels=1, seed=0,
                                   faces=400)
    assert abs(scores["a"]["accuracy"] - 0.25) < 0.1  # a's middle values tie; argmin keeps the first
    assert all(scores[name]["accuracy"] == 1.0 for name in ("b", "c", "d"))


# ---- the command -----------------------------------------------------------------------------------------------
def test_eval_command_writes_json_and_repeats_exactly(tiny_model, tmp_path):
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    for out in (first, second):
        result = run_cli("eval", "--model", tiny_model, "--data", "synthetic:64", "--json", out, "--device", "cpu")
        assert result.returncode == 0, result.stderr
        assert result.stdout == b""
    figures = json.loads(first.read_text())
    assert figures == json.loads(second.read_text())
    assert [layer["layer"] for layer in figures["layers"]] == [1, 2]
    assert 0 < figures["reconstruction"]["mse"] < 1 and figures["training_data"] == "synthetic:64"
    assert "reconstruction" in result.stderr and "z2" in result.stderr


@pytest.mark.parametrize("args, fragment", [
    (["--model", "no-such-model", "--data", "synthetic:8"], "no-such-model"),
    (["--data", "no-such-source"], "no-such-source"),
    (["--data", "synthetic:8", "--plot", "out.png"], "--plot"),
])
def test_eval_rejects_bad_input(tiny_model, tmp_path, args, fragment):
    if "--model" not in args:
        args = ["--model", str(tiny_model), *args]
    result = run_cli("eval", *args, "--device", "cpu", cwd=tmp_path)
    assert_usage_error(result, fragment)
    assert not (tmp_path / "out.png").exists()


def test_eval_on_toyfaces_measures_factors_and_arithmetic_and_plots(tiny_model, tmp_path):
    out, plot = tmp_path / "toy.json", tmp_path / "mi.png"
    result = run_cli("eval", "--model", tiny_model, "--data", "toyfaces:300", "--json", out, "--plot", plot,
                     "--device", "cpu")
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    names = figures["factors"]["names"]
    assert len(figures["factors"]["mi"]) == 2 and all(len(row) == len(names) for row in figures["factors"]["mi"])
    assert 0.0 <= figures["factors"]["mig"] <= 1.0
    assert set(figures["arithmetic"]) == set(names) and set(figures["probes"]) == set(names)
    assert set(figures["factor_reconstruction"]) == set(names)
    assert all(0.0 <= score["accuracy"] <= 1.0 for score in figures["factor_reconstruction"].values())
    assert all(score["layer"] == figures["layer_information"]["holding_layer"][name]
               for name, score in figures["arithmetic"].items())
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.height > 30 * len(names)


def test_layer_level_share_and_gap_find_each_factor_in_its_layer_and_ignore_rotation():
    """Latents built so that factor k sits in layer k alone (its value on a circle, plus noise); the other layers
    are noise. The share is near 1 in the right layer, and rotating every layer's code changes nothing."""
    from facealgebra.evaluate import layer_information

    rng = np.random.default_rng(0)
    count, layers, dims = 1200, 3, 4
    factors = {f"f{k + 1}": rng.integers(0, 4, count) for k in range(layers)}
    means = []
    for k, values in enumerate(factors.values()):
        code = rng.standard_normal((count, dims)) * 0.2
        code[:, 0] += 2 * np.cos(values * np.pi / 2)
        code[:, 1] += 2 * np.sin(values * np.pi / 2)
        means.append(code.astype(np.float32))
    plain = layer_information(means, factors, seed=0)
    rotations = [np.linalg.qr(rng.standard_normal((dims, dims)))[0] for _ in range(layers)]
    rotated = layer_information([(code @ turn).astype(np.float32) for code, turn in zip(means, rotations)],
                                factors, seed=0)
    for k, name in enumerate(factors):
        assert plain["holding_layer"][name] == k + 1
        assert plain["share"][name] > 0.9 and plain["gap"][name] > 0.9
        assert abs(rotated["share"][name] - plain["share"][name]) < 0.01
    assert plain["mean_redundancy"] < 0.1 and rotated["mean_redundancy"] < 0.1

    unread = layer_information(means, {"f1": factors["f1"], "noise": rng.integers(0, 4, count)}, seed=0)
    assert "noise" not in unread["share"] and unread["labels_read"] == 1  # no layer reads it: no share of noise
    assert unread["mean_share"] == plain["share"]["f1"]

    spread = layer_information([means[0]] * layers, {"f1": factors["f1"]}, seed=0)  # one factor in every layer
    assert spread["share"]["f1"] < 0.4 and spread["gap"]["f1"] < 0.05 and spread["redundancy"]["f1"] > 1.8
