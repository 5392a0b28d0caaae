"""The generated-face source `stylegan:N`: face i is a pure function of i, the store resumes after a kill and
keeps nothing half-written, and bad specs or a missing generator give one error line. The real generator runs
(about a second a face here), so the store is cut into chunks of 2 faces (FACEALGEBRA_STYLEGAN_CHUNK)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_usage_error, run_cli
from facealgebra.data import load_data, stylegan
from facealgebra.errors import FaceAlgebraError

GENERATOR = importlib.util.find_spec("openvino") and importlib.util.find_spec("random_face")
needs_generator = pytest.mark.skipif(not GENERATOR, reason="openvino and random-face are not installed")
CHUNK = "2"
# load a spec at the stored frame size and save its pixels, as a separate process (a run of its own)
LOAD = ("import sys, numpy; from facealgebra.data import load_data; "
        "numpy.save(sys.argv[2], load_data(sys.argv[1], 128).images)")


def load(spec: str, cache: Path, saved: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LOAD, spec, str(saved)], capture_output=True, text=True,
                          env={**os.environ, "FACEALGEBRA_CACHE": str(cache), "FACEALGEBRA_STYLEGAN_CHUNK": CHUNK,
                               **env})


def store_files(cache: Path) -> list[str]:
    return sorted(path.name for path in cache.glob("stylegan/*/*") if path.name != ".lock")


@needs_generator
def test_generation_resumes_after_kills_and_face_i_is_the_same_in_every_run_and_slice(tmp_path):
    cache = tmp_path / "cache"
    # killed with chunk 0 complete in a temporary file: no chunk is kept
    killed = load("stylegan:4", cache, tmp_path / "none.npy", FACEALGEBRA_KILL_AT="stylegan-chunk-saved")
    assert killed.returncode == -9, killed.stderr
    assert not [name for name in store_files(cache) if not name.startswith(".")]
    # killed just after chunk 0 was moved into place: it stays, and the stray temporary file is gone
    killed = load("stylegan:4", cache, tmp_path / "none.npy", FACEALGEBRA_KILL_AT="stylegan-chunk-written")
    assert killed.returncode == -9, killed.stderr
    assert store_files(cache) == ["faces-00000000.npy"]
    first_chunk = next(cache.glob("stylegan/*/faces-00000000.npy"))
    made = first_chunk.stat().st_mtime_ns
    # the next run makes only the missing chunk
    finished = load("stylegan:4", cache, tmp_path / "all.npy")
    assert finished.returncode == 0, finished.stderr
    assert store_files(cache) == ["faces-00000000.npy", "faces-00000002.npy"]
    assert first_chunk.stat().st_mtime_ns == made
    faces = np.load(tmp_path / "all.npy")
    assert faces.shape == (4, 3, 128, 128) and faces.dtype == np.uint8
    assert len({face.tobytes() for face in faces}) == 4 and faces.std() > 20  # four different, real pictures
    # another store, another process, a slice that starts mid-chunk: the same faces 2 and 3
    sliced = load("stylegan:2?start=2", tmp_path / "other", tmp_path / "slice.npy")
    assert sliced.returncode == 0, sliced.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "slice.npy"), faces[2:])


@pytest.mark.parametrize("spec, fragment", [
    ("stylegan:0", "number of faces"),
    ("stylegan:-5", "number of faces"),
    ("stylegan:10?psi=abc", "psi"),
    ("stylegan:10?start=-1", "start"),
])
def test_bad_specs_are_one_error_line_and_leave_no_cache(tmp_path, spec, fragment):
    cache = tmp_path / "cache"
    result = run_cli("train", "--data", spec, "--preset", "tiny", "--steps", "1", "--out", tmp_path / "run",
                     "--device", "cpu", env={"FACEALGEBRA_CACHE": str(cache)})
    assert_usage_error(result, fragment)
    assert not cache.exists() or not any(cache.rglob("*"))
    assert not (tmp_path / "run" / "model.safetensors").exists()


@pytest.mark.parametrize("spec, fragment", [
    ("stylegan", "number of faces"),
    ("stylegan:10?psi=1.5", "psi"),
    ("stylegan:10?psi=nan", "psi"),
    ("stylegan:10?seed=3", "unknown option"),
    ("stylegan:4+", "empty source"),
    ("celeba-sample?split=valid", "split"),
    ("celeba-sample:x", "no argument"),
    ("stylegan:4+mnist", "prepare images differently"),
])
def test_more_bad_specs_fail_before_any_work(tmp_path, monkeypatch, spec, fragment):
    monkeypatch.setenv("FACEALGEBRA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(stylegan, "generated_faces", lambda start, count, psi: np.zeros((count, 3, 128, 128),
                                                                                         np.uint8))
    with pytest.raises(FaceAlgebraError, match=fragment):
        load_data(spec, 16)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*"))


def test_joined_sources_keep_their_order_and_one_recipe(tmp_path, monkeypatch):
    monkeypatch.setattr(stylegan, "generated_faces", lambda start, count, psi: np.full((count, 3, 128, 128), start,
                                                                                       np.uint8))
    joined = load_data("stylegan:2+stylegan:3?start=7", 32)
    assert joined.images.shape == (5, 3, 32, 32)
    assert [int(face.mean()) for face in joined.images] == [0, 0, 7, 7, 7]
    assert joined.names == ["stylegan-0", "stylegan-1", "stylegan-7", "stylegan-8", "stylegan-9"]
    assert joined.preprocess["template"]["frame"] == [128, 128] and joined.preprocess["size"] == 32


# the real CLI in a process where find_spec cannot see one package, as if it were not installed
WITHOUT = ("import importlib.util, runpy, sys; real = importlib.util.find_spec; hidden = sys.argv.pop(1); "
           "importlib.util.find_spec = lambda name, *a: None if name == hidden else real(name, *a); "
           "sys.argv[0] = 'facealgebra'; runpy.run_module('facealgebra', run_name='__main__')")


@pytest.mark.parametrize("hidden, command", [
    ("openvino", "pip install openvino"),
    ("random_face", "pip install --no-deps random-face==2021.7.21.1"),
])
def test_a_missing_generator_package_names_its_pip_command(tmp_path, hidden, command):
    cache = tmp_path / "cache"
    result = subprocess.run([sys.executable, "-c", WITHOUT, hidden, "train", "--data", "stylegan:4", "--preset",
                             "tiny", "--steps", "1", "--out", str(tmp_path / "run"), "--device", "cpu"],
                            capture_output=True, text=True, env={**os.environ, "FACEALGEBRA_CACHE": str(cache)})
    assert_usage_error(result, command)
    assert not list(cache.glob("stylegan/*/faces-*"))
