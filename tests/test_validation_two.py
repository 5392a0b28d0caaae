"""Hardening, round two (issue 26): crafted model files, specs, empty and complex inputs, memory bombs, orphaned
workers. Every case runs the real CLI and must end in one `error:` line and exit 2 (or, for the kills, leave
nothing behind), quickly and within a memory limit."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from conftest import REPO, assert_usage_error, run_cli
from facealgebra.checkpoint import save_model
from facealgebra.config import PRESETS
from facealgebra.model import VLAE

RECIPE = {"crop_fraction": 1.0, "size": 16, "channels": 1, "range": [0, 1]}
TEMPLATE = {"landmarks": [[5.0, 6.0], [11.0, 6.0], [8.0, 9.0], [6.0, 12.0], [10.0, 12.0]], "frame": [16, 16],
            "faces": 5, "source": "test"}
MEMORY_LIMIT = 4 << 30  # address space: torch and the model fit; the gigabytes a crafted file asked for do not


# glibc reserves an arena of address space per thread; a few keep torch's threads inside the limit
FEW_ARENAS = {"MALLOC_ARENA_MAX": "2", "OMP_NUM_THREADS": "2"}


def run_cli_limited(args, timeout: float, limit: int = MEMORY_LIMIT) -> subprocess.CompletedProcess:
    """The CLI as run_cli runs it, under `limit` bytes of address space and a timeout of a few seconds' work: a
    runaway allocation fails (or times out) instead of passing slowly."""
    def limited_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    result = subprocess.run([sys.executable, "-m", "facealgebra", *map(str, args)], capture_output=True,
                            timeout=timeout, preexec_fn=limited_memory, env={**os.environ, "PYTHONUNBUFFERED": "1", **FEW_ARENAS})
    result.stderr = result.stderr.decode(errors="replace")
    return result


@pytest.fixture(scope="module")
def honest_model(tmp_path_factory):
    """An untrained `tiny` model, saved as training saves it."""
    path = tmp_path_factory.mktemp("honest") / "m.safetensors"
    torch.manual_seed(0)
    save_model(path, VLAE(PRESETS["tiny"].model).eval(), RECIPE, {"steps": 0})
    return path


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "face.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 20), dtype=np.uint8), "L").save(path)
    return path


def crafted(honest, path, **changes):
    """The honest model's tensors under changed metadata: `config` / `preprocess` as dicts of fields to change
    (None removes the key), or raw strings."""
    with safe_open(str(honest), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    for key, change in changes.items():
        if change is None:
            metadata.pop(key)
        elif isinstance(change, dict):
            metadata[key] = json.dumps({**json.loads(metadata[key]), **change})
        else:
            metadata[key] = change
    save_file(tensors, str(path), metadata=metadata)
    return path


# ---- findings 11 and 12: crafted model files -------------------------------------------------------------------
CRAFTED = {
    "missing config": ({"config": None}, "no config"),
    "config not JSON": ({"config": "{not json"}, "config is not JSON"),
    "config a list": ({"config": "[1, 2]"}, "not a JSON object"),
    "width a string": ({"config": {"base_width": "4"}}, "base_width must be a whole number"),
    "latent sizes a number": ({"config": {"latent_dims": 7}}, "latent_dims must be a list"),
    "negative width": ({"config": {"base_width": -4}}, "base_width must be 1 to"),
    "latent size 10**9": ({"config": {"latent_dims": [2, 10 ** 9]}}, "latent sizes must be at most"),
    "image size 9000": ({"config": {"image_size": 9000}}, "image size must be 8 to"),
    "NaN beta": ({"config": '{"base_width": 4, "beta": NaN, "channels": 1, "image_size": 16, "latent_dims": [2, 2],'
                            ' "max_width": 8, "arch": "ladder-2"}'}, "beta must be a finite"),
    "preprocess not JSON": ({"preprocess": "]"}, "preprocess is not JSON"),
    "preprocess size 9000": ({"preprocess": {"size": 9000}}, "has size 9000"),
    "NaN template": ({"preprocess": {"template": {**TEMPLATE, "landmarks": [[float("nan"), 1.0]] * 5}}},
                     "not 5 finite"),
    "zero-size frame": ({"preprocess": {"template": {**TEMPLATE, "frame": [0, 0]}}}, "template frame of [0, 0]"),
    "crop fraction 0": ({"preprocess": {"crop_fraction": 0}}, "crop_fraction 0"),
    "tensors of another shape": ({"config": {"latent_dims": [3, 2]}}, "do not fit the stored config"),
}


@pytest.mark.parametrize("case", CRAFTED)
def test_a_crafted_model_file_is_refused_naming_the_field(tmp_path, honest_model, photo, case):
    changes, fragment = CRAFTED[case]
    model = crafted(honest_model, tmp_path / "m.safetensors", **changes)
    out = tmp_path / "z.npz"
    result = run_cli("encode", photo, "--model", model, "-o", out, "--device", "cpu")
    assert_usage_error(result, str(model), fragment)
    assert not out.exists()


@pytest.mark.parametrize("changes", [
    {"config": {"base_width": 3000, "max_width": 3000}},
    {"config": {"base_width": 4096, "max_width": 4096, "image_size": 1024}, "preprocess": {"size": 1024}},
])
def test_a_config_asking_for_gigabytes_is_refused_before_building(tmp_path, honest_model, photo, changes):
    """base_width=3000 built 8.5 GB of weights before the state dict was found not to fit."""
    model = crafted(honest_model, tmp_path / "m.safetensors", **changes)
    result = run_cli_limited(("encode", photo, "--model", model, "-o", tmp_path / "z.npz", "--device", "cpu"),
                             timeout=60)
    assert_usage_error(result, "weights, over the 100,000,000")


def test_the_honest_model_still_loads(tmp_path, honest_model, photo):
    result = run_cli("encode", photo, "--model", honest_model, "-o", tmp_path / "z.npz", "--device", "cpu")
    assert result.returncode == 0, result.stderr


# ---- finding 13: specs and seeds -------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, fragment", [
    ("synthetic:abc", "N must be a whole number"),
    ("synthetic:-3", "not '-3'"),
    ("synthetic:100000000000", "from 1 to 100,000"),
    ("synthetic:²", "not '²'"),
    ("toyfaces:²", "not '²'"),
    ("toyfaces:4?start=³", "start must be a whole number"),
    ("stylegan:²", "not '²'"),
])
def test_a_bad_count_in_a_spec_is_refused(tmp_path, spec, fragment):
    result = run_cli_limited(("eval", "--model", "mnist", "--data", spec, "--device", "cpu"), timeout=120)
    assert_usage_error(result, spec, fragment)


@pytest.mark.parametrize("command", [
    ("eval", "--model", "mnist", "--data", "synthetic:8"),
    ("traverse", "--model", "mnist", "--layer", "1", "-o", "t.png"),
    ("train", "--data", "synthetic:8", "--preset", "tiny", "--steps", "1", "--out", "run"),
])
def test_a_seed_beyond_64_bits_is_refused(tmp_path, command):
    result = run_cli(*command, "--seed", str(10 ** 23), "--device", "cpu", cwd=tmp_path)
    assert_usage_error(result, "--seed", "less than or equal to")
    assert list(tmp_path.iterdir()) == []


# ---- latents files: empty, complex, too many rows, bombs (findings 14, 18, 9, 10) ----------------------------
@pytest.fixture(scope="module")
def mnist_latents(tmp_path_factory, photo):
    """Real latents of the bundled mnist model: its fingerprint and layer sizes, to craft files from."""
    path = tmp_path_factory.mktemp("latents") / "one.npz"
    result = run_cli("encode", photo, "--model", "mnist", "-o", path, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    with np.load(path) as archive:
        return {key: archive[key] for key in archive.files}


def latents_file(path, arrays, rows=None, **changes):
    """The arrays with every row repeated to `rows` rows (names too), then `changes` applied; saved compressed."""
    arrays = dict(arrays)
    if rows is not None:
        for key in [key for key in arrays if key.startswith("z")] + ["names"]:
            arrays[key] = np.zeros((rows, *arrays[key].shape[1:]), dtype=arrays[key].dtype)
    arrays.update(changes)
    np.savez_compressed(path, **arrays)
    return path


def test_decode_of_a_latents_file_with_no_rows_is_refused(tmp_path, mnist_latents):
    empty = latents_file(tmp_path / "empty.npz", mnist_latents, rows=0)
    result = run_cli("decode", empty, "--model", "mnist", "--grid", "-o", tmp_path / "g.png")
    assert_usage_error(result, "empty.npz", "holds no latents")
    assert not (tmp_path / "g.png").exists()


def test_complex_latents_are_refused_not_truncated(tmp_path, mnist_latents):
    z1 = mnist_latents["z1"].astype(np.complex64) + 1j
    path = latents_file(tmp_path / "complex.npz", mnist_latents, z1=z1)
    result = run_cli("decode", path, "--model", "mnist", "-o", tmp_path / "face.png")
    assert_usage_error(result, "z1 holds complex numbers")
    assert "Warning" not in result.stderr and not (tmp_path / "face.png").exists()


@pytest.fixture(scope="module")
def two_million_rows(tmp_path_factory, mnist_latents):
    """0.3 MB on disk, 2 million latents."""
    return latents_file(tmp_path_factory.mktemp("rows") / "many.npz", mnist_latents, rows=2_000_000)


@pytest.mark.parametrize("out, fragment", [("grid.png", "pixels, over the 50,000,000"),
                                           ("folder/", "over the 100,000 pictures")])
def test_decode_of_millions_of_rows_is_refused_within_seconds(tmp_path, two_million_rows, out, fragment):
    result = run_cli_limited(("decode", two_million_rows, "--model", "mnist", "-o", tmp_path / out, "--device",
                              "cpu") + (("--grid",) if out.endswith(".png") else ()), timeout=60)
    assert_usage_error(result, fragment)
    assert not (tmp_path / "grid.png").exists() and not any((tmp_path / "folder").glob("*.png"))


def test_traverse_too_large_to_write_is_refused_before_decoding(tmp_path):
    """--samples 100 --steps 100000 reached 11 GB in 60 s before the 50-Mpx rule was checked."""
    result = run_cli_limited(("traverse", "--model", "mnist", "--layer", "1", "--samples", "100", "--steps",
                              "100000", "-o", tmp_path / "t.png", "--device", "cpu"), timeout=60)
    assert_usage_error(result, "t.png", "pixels, over the 50,000,000")
    assert not (tmp_path / "t.png").exists()


def write_deflated_bomb(path, arrays, unpacked: int) -> None:
    """A latents .npz whose z1 is `unpacked` bytes of zeros, deflated to a few MB (written a block at a time)."""
    rows = unpacked // (4 * 2)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("z1.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False,
                                                          "shape": (rows, 2)})
            block = bytes(64 << 20)
            for start in range(0, rows * 8, len(block)):
                member.write(block[:min(len(block), rows * 8 - start)])
        for key in ("names", "fingerprint", "format", "z2", "z3"):
            with archive.open(f"{key}.npy", "w") as member:
                np.lib.format.write_array(member, arrays[key][:1] if key == "names" else arrays[key])


def test_a_deflated_bomb_is_refused_from_its_zip_directory(tmp_path, mnist_latents):
    """A few MB that unpack past 1 GiB: refused before any array is read, under a 1 GiB address space (decode
    refuses it before torch loads)."""
    bomb = tmp_path / "bomb.npz"
    write_deflated_bomb(bomb, mnist_latents, unpacked=(1 << 30) + (100 << 20))
    assert bomb.stat().st_size < 20 << 20
    result = run_cli_limited(("decode", bomb, "--model", "mnist", "-o", tmp_path / "face.png"), timeout=30,
                             limit=1 << 30)
    assert_usage_error(result, "bomb.npz", "would unpack to")


def test_an_npy_header_promising_more_than_its_bytes_is_refused(tmp_path, mnist_latents):
    """numpy allocates the array a header describes before reading it: 5.6 GB for a few bytes."""
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("z1.npy", "w") as member:
            np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False,
                                                          "shape": (700_000_000, 2)})
        for key in ("names", "fingerprint", "format", "z2", "z3"):
            with archive.open(f"{key}.npy", "w") as member:
                np.lib.format.write_array(member, mnist_latents[key])
    result = run_cli_limited(("decode", path, "--model", "mnist", "-o", tmp_path / "face.png"), timeout=30,
                             limit=1 << 30)
    assert_usage_error(result, "liar.npz", "z1 is damaged")


# ---- eval on a handful of images (findings 14 and 18) ---------------------------------------------------------
@pytest.fixture(scope="module")
def toyfaces_model(tmp_path_factory):
    """A `tiny` model trained one step on toyfaces: eval then measures factors and arithmetic, at 16 pixels."""
    out = tmp_path_factory.mktemp("toy") / "run"
    result = run_cli("train", "--data", "toyfaces:16", "--preset", "tiny", "--steps", "1", "--out", out,
                     "--device", "cpu")
    assert result.returncode == 0, result.stderr
    return out / "model.safetensors"


@pytest.mark.parametrize("count", [1, 3])
def test_eval_on_a_few_toyfaces_reports_what_it_can(tmp_path, toyfaces_model, count):
    """toyfaces:1 died with KeyError (no holding layer to edit), toyfaces:3 inside L-BFGS (a probe with nothing
    to fit on)."""
    figures = tmp_path / "figures.json"
    result = run_cli("eval", "--model", toyfaces_model, "--data", f"toyfaces:{count}", "--json", figures,
                     "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "error" not in result.stderr, result.stderr
    report = json.loads(figures.read_text())
    assert report["images"] == count and report["probes"] == {} and report["arithmetic"] == {}
    assert len(report["factor_reconstruction"]) == 10


def test_eval_on_one_photo_calls_mmd_not_measurable_not_collapse(tmp_path, photo):
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "face.png").write_bytes(photo.read_bytes())
    figures = tmp_path / "figures.json"
    result = run_cli("eval", "--model", "mnist", "--data", folder, "--json", figures, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "not measurable on 1 image" in result.stderr and "collapse" not in result.stderr, result.stderr
    layers = json.loads(figures.read_text())["layers"]
    assert all(layer["mmd"] is None and layer["active_dims"] is None for layer in layers)


# ---- finding 25: imports run one way ---------------------------------------------------------------------------
def imported_modules(path) -> set[str]:
    """Every facealgebra module a source file imports, at any depth of its code."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return {name for name in names if name.startswith("facealgebra")}


@pytest.mark.parametrize("module", ["align", "retinaface", "specs", "packaged"])
def test_align_and_the_detector_import_nothing_from_data(module):
    """The face sources in data/ use align; align and retinaface use nothing from data/ (no circle)."""
    imported = imported_modules(REPO / "facealgebra" / f"{module}.py")
    assert not {name for name in imported if name.startswith("facealgebra.data")}, imported


# ---- finding 7: no orphaned decoding workers -------------------------------------------------------------------
def children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found |= {int(child) for child in (task / "children").read_text().split()}
    return found


def alive(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return False


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_a_sigkilled_first_cache_build_leaves_no_worker_and_no_lock(tmp_path):
    """kill -9 while the workers decode: they die with it, and the next runs, elsewhere and in the same --out,
    proceed (the orphans held --out/.lock and the cache's build lock for ever)."""
    env = {**os.environ, "FACEALGEBRA_CACHE": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "facealgebra", "train", "--data", "toyfaces:3000", "--preset", "tiny",
               "--steps", "1", "--device", "cpu", "--out"]
    first = subprocess.Popen([*command, tmp_path / "run"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline, workers = time.monotonic() + 120, set()
    while not workers and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
        workers = children(first.pid)
    assert workers, "the build started no workers"
    time.sleep(0.5)  # the workers are decoding now
    first.send_signal(signal.SIGKILL)
    first.wait()
    deadline = time.monotonic() + 10
    while any(alive(worker) for worker in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(worker) for worker in workers), "orphaned workers"
    for out in (tmp_path / "elsewhere", tmp_path / "run"):
        result = subprocess.run([*command, out], env=env, capture_output=True, text=True, timeout=240)
        assert result.returncode == 0, result.stderr
