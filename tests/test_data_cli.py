"""End to end: `facealgebra train --data SPEC` on every source, and one-line errors for bad data specs."""

from __future__ import annotations

import json

import pytest
from celeba_fixture import write_celeba
from conftest import assert_usage_error, run_cli
from PIL import Image


@pytest.fixture
def cache_env(tmp_path):
    return {"FACEALGEBRA_CACHE": str(tmp_path / "cache")}


def train(data: str, out, env: dict):
    return run_cli("train", "--data", data, "--preset", "tiny", "--steps", "2", "--out", out, "--device", "cpu",
                   env=env)


@pytest.mark.parametrize("layout", ["official", "kaggle"])
def test_trains_on_celeba(tmp_path, cache_env, layout):
    root = write_celeba(tmp_path / "celeba", layout, 12)
    result = train(f"celeba:{root}?split=all", tmp_path / "run", cache_env)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 2


@pytest.mark.parametrize("spec", ["orl", "lfw", "toyfaces:16"])
def test_trains_on_packaged_and_procedural_faces(tmp_path, cache_env, spec):
    result = train(spec, tmp_path / "run", cache_env)
    assert result.returncode == 0, result.stderr


def test_trains_on_a_folder(tmp_path, cache_env):
    for index in range(4):
        Image.new("RGB", (30, 20), (60 * index, 0, 0)).save(tmp_path / f"{index}.jpg")
    assert train(f"folder:{tmp_path}", tmp_path / "run", cache_env).returncode == 0


def test_missing_celeba_root(tmp_path, cache_env):
    assert_usage_error(train(f"celeba:{tmp_path / 'nowhere'}", tmp_path / "run", cache_env), "nowhere")


def test_celeba_root_in_neither_layout(tmp_path, cache_env):
    assert_usage_error(train(f"celeba:{tmp_path}", tmp_path / "run", cache_env),
                       "list_attr_celeba.txt", "list_eval_partition.csv", "img_align_celeba/img_align_celeba")


def test_empty_folder(tmp_path, cache_env):
    (tmp_path / "empty").mkdir()
    assert_usage_error(train(f"folder:{tmp_path / 'empty'}", tmp_path / "run", cache_env), "no images under")


def test_unknown_spec(tmp_path, cache_env):
    assert_usage_error(train("imagenet", tmp_path / "run", cache_env), "unknown data spec", "imagenet")
