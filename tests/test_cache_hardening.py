"""A damaged image cache is named, deleted and rebuilt; a build killed at any step leaves a cache from which the
next run gets exactly what an uninterrupted build gives."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

import facealgebra.data.cache as cache
from conftest import REPO, assert_usage_error, run_cli
from facealgebra import faults
from facealgebra.data import load_data

DATA = "toyfaces:24"
KILL_POINTS = re.findall(r'faults\.point\("(cache-[a-z-]+)"\)', Path(cache.__file__).read_text())


def entry_files(folder: Path) -> dict[str, bytes]:
    """Every file in the cache folder, name -> bytes (so a temporary file that a killed build left shows too)."""
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def array_file(folder: Path) -> Path:
    (path,) = folder.glob("*.u8")
    return path


def overwrite_pixels(path: Path) -> None:
    """Damage that keeps the size: what a bad disk block or a stray write does."""
    data = bytearray(path.read_bytes())
    middle = slice(len(data) // 2, len(data) // 2 + 64)
    data[middle] = bytes(255 - value for value in data[middle])
    path.write_bytes(bytes(data))


DAMAGES = {
    "cut short": lambda folder: array_file(folder).write_bytes(array_file(folder).read_bytes()[:-100]),
    "emptied": lambda folder: array_file(folder).write_bytes(b""),
    "pixels overwritten": lambda folder: overwrite_pixels(array_file(folder)),
    "garbage at the start": lambda folder: array_file(folder).write_bytes(
        b"\x93NUMPY garbage" + array_file(folder).read_bytes()[15:]),
    "array deleted": lambda folder: array_file(folder).unlink(),
    "index garbled": lambda folder: next(folder.glob("*.json")).write_text("{\"format\": garbage"),
}


# ---- damage, read in this process --------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_entry_is_named_deleted_and_rebuilt(tmp_path, monkeypatch, capsys, damage):
    folder = tmp_path / "cache"
    monkeypatch.setenv("FACEALGEBRA_CACHE", str(folder))
    good = np.array(load_data(DATA, image_size=16).images)
    sound = entry_files(folder)
    DAMAGES[damage](folder)
    capsys.readouterr()
    np.testing.assert_array_equal(load_data(DATA, image_size=16).images, good)
    (warning,) = capsys.readouterr().err.splitlines()
    assert warning.startswith(f"warning: damaged image cache {folder}") and "rebuilding" in warning
    assert entry_files(folder) == sound
    load_data(DATA, image_size=16)
    assert capsys.readouterr().err == ""  # the rebuilt entry is sound


# ---- damage and kills, met through the command line --------------------------------------------------------------
def cache_env(folder: Path, kill_at: str | None) -> dict[str, str]:
    """The cache folder, and the point at which the process is to be killed, if any."""
    return {"FACEALGEBRA_CACHE": str(folder), **({faults.KILL_AT: kill_at} if kill_at else {})}


def train(tmp_path: Path, folder: Path, name: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
    return run_cli("train", "--data", DATA, "--preset", "tiny", "--steps", "2", "--out", tmp_path / name,
                   "--device", "cpu", env=cache_env(folder, kill_at))


def fingerprint(run: Path) -> str:
    with safe_open(str(run / "model.safetensors"), "np") as handle:
        return handle.metadata()["fingerprint"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[str, dict[str, bytes], Path]:
    """The model an uninterrupted run trains, the cache it builds, and that cache's folder."""
    tmp_path = tmp_path_factory.mktemp("uninterrupted")
    result = train(tmp_path, tmp_path / "cache", "run")
    assert result.returncode == 0, result.stderr
    return fingerprint(tmp_path / "run"), entry_files(tmp_path / "cache"), tmp_path / "cache"


def test_a_damaged_entry_that_cannot_be_deleted_exits_2_naming_it(tmp_path, uninterrupted):
    folder = tmp_path / "cache"
    shutil.copytree(uninterrupted[2], folder)
    array = array_file(folder)
    array.unlink()
    (array / "in-the-way").mkdir(parents=True)  # a folder where the pixels should be: unlink cannot remove it
    result = train(tmp_path, folder, "run")
    assert_usage_error(result, str(array), "FACEALGEBRA_CACHE")
    assert not (tmp_path / "run").exists()


def test_train_names_a_damaged_cache_and_a_kill_in_its_rebuild_changes_no_result(tmp_path, uninterrupted):
    model, sound, built = uninterrupted
    folder = tmp_path / "cache"
    shutil.copytree(built, folder)
    overwrite_pixels(array_file(folder))  # before, these pixels trained silently
    killed = train(tmp_path, folder, "killed", kill_at="cache-array-renamed")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert f"warning: damaged image cache {array_file(folder)}" in killed.stderr
    result = train(tmp_path, folder, "run")
    assert result.returncode == 0, result.stderr
    assert fingerprint(tmp_path / "run") == model and entry_files(folder) == sound


# only the cache build, in a process of its own (train builds it the same way, after a few seconds of torch)
BUILD = [sys.executable, "-c", f"from facealgebra.data import load_data; load_data({DATA!r}, image_size=16)"]


def build(folder: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(BUILD, capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **cache_env(folder, kill_at)})


def test_every_cache_write_step_has_a_kill_point():
    assert KILL_POINTS == ["cache-index-retracted", "cache-array-written", "cache-array-renamed",
                           "cache-index-written", "cache-index-renamed"]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_build_killed_at_any_step_is_rebuilt_to_the_same_bytes(tmp_path, uninterrupted, point):
    # the build replaces a damaged entry, so that it passes every point, the retraction of the old entry included
    _, sound, built = uninterrupted
    folder = tmp_path / "cache"
    shutil.copytree(built, folder)
    overwrite_pixels(array_file(folder))
    killed = build(folder, kill_at=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    result = build(folder)
    assert result.returncode == 0, result.stderr
    assert entry_files(folder) == sound


def test_a_second_build_waits_for_the_first_and_reads_its_entry(tmp_path, uninterrupted):
    built = uninterrupted[2]
    key = array_file(built).stem
    folder = tmp_path / "cache"
    folder.mkdir()
    with open(folder / f"{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # this test is the first build
        second = subprocess.Popen(BUILD, stderr=subprocess.PIPE, text=True, cwd=REPO,
                                  env={**os.environ, **cache_env(folder, None)})
        assert second.stderr.readline().startswith(f"waiting for another process to finish the image cache {folder}")
        for name in (f"{key}.u8", f"{key}.json"):  # the first build ends
            shutil.copy(built / name, folder / name)
        pixels = (folder / f"{key}.u8").stat().st_ino
    assert second.wait(timeout=120) == 0, second.stderr.read()
    assert (folder / f"{key}.u8").stat().st_ino == pixels  # read, not built again
