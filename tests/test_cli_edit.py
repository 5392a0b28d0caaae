"""encode, decode, traverse and arith through the real CLI, on the tiny model the shared fixture trains."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, assert_usage_error, run_cli
from facealgebra.latents import Latents


# ---- inputs ----------------------------------------------------------------------------------------------------
def blob(path: Path, seed: int, size: tuple[int, int] = (40, 30), mode: str = "RGB") -> Path:
    """A bright ellipse on a dark ground, like the tiny model's training data, at any size and mode."""
    rng = np.random.default_rng(seed)
    height, width = size
    grid_y, grid_x = np.mgrid[0:height, 0:width]
    cy, cx = rng.uniform(0.3, 0.7, 2) * (height, width)
    inside = ((grid_y - cy) / (0.2 * height)) ** 2 + ((grid_x - cx) / (0.25 * width)) ** 2 <= 1
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[inside] = rng.integers(100, 256, 3)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


@pytest.fixture()
def faces(tmp_path) -> list[Path]:
    folder = tmp_path / "faces"
    folder.mkdir()
    return [blob(folder / "a.jpg", 1), blob(folder / "b.png", 2, (16, 16), "L"), blob(folder / "c.png", 3, mode="RGBA")]


def model_args(tiny_model: Path) -> list[str]:
    return ["--model", str(tiny_model), "--device", "cpu"]


def png(data: bytes | Path) -> np.ndarray:
    image = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
    return np.asarray(image, dtype=np.int16)


def in_process_codes(tiny_model: Path, paths: list[Path]) -> list[list[np.ndarray]]:
    import torch

    from facealgebra.checkpoint import load_model
    from facealgebra.images import load_for_model

    loaded = load_model(tiny_model)
    with torch.no_grad():
        inputs = [torch.tensor(load_for_model(path, loaded.preprocess)[None]) / 255.0 for path in paths]
        return [[z.numpy() for z in loaded.model.encode(x)] for x in inputs]


def in_process_png(tiny_model: Path, layers: list[np.ndarray]) -> np.ndarray:
    import torch

    from facealgebra.checkpoint import load_model
    from facealgebra.images import image_bytes, to_pil

    with torch.no_grad():
        image = load_model(tiny_model).model.decode([torch.from_numpy(z) for z in layers])[0].numpy()
    return png(image_bytes(to_pil(image)))


# ---- arith -----------------------------------------------------------------------------------------------------
def test_arith_draws_the_decoded_sum_of_codes(tiny_model, faces, tmp_path):
    a, b, c = faces
    # --tune 0: the model as trained draws the sum (by default c's face would be drawn by the decoder tuned to c)
    result = run_cli("arith", a, "-", b, "+", c, "-o", tmp_path / "out.png", "--save-latent", tmp_path / "out.npz",
                     "--decoded", "--tune", "0", *model_args(tiny_model))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    z_a, z_b, z_c = in_process_codes(tiny_model, faces)
    expected = [la - lb + lc for la, lb, lc in zip(z_a, z_b, z_c)]
    saved = Latents.load(tmp_path / "out.npz")
    for mine, theirs in zip(expected, saved.layers):
        np.testing.assert_allclose(theirs, mine, atol=1e-5)
    assert np.abs(png(tmp_path / "out.png") - in_process_png(tiny_model, expected)).max() <= 1


def test_arith_layers_keeps_the_other_layers_of_the_edited_face_bit_identical(tiny_model, faces, tmp_path):
    a, b, c = faces  # the edited face is c, the last photo with a + sign
    result = run_cli("arith", a, "-", b, "+", "2*" + str(c), "--layers", "2", "-o", tmp_path / "out.png",
                     "--save-latent", tmp_path / "out.npz", *model_args(tiny_model))
    assert result.returncode == 0, result.stderr
    saved = Latents.load(tmp_path / "out.npz")
    first = run_cli("arith", c, "-o", tmp_path / "c.png", "--save-latent", tmp_path / "c.npz", *model_args(tiny_model))
    assert first.returncode == 0, first.stderr
    alone = Latents.load(tmp_path / "c.npz")
    assert saved.layers[0].tobytes() == alone.layers[0].tobytes()
    assert saved.layers[1].tobytes() != alone.layers[1].tobytes()


def test_arith_panel_shows_each_term_the_result_and_the_comparison(tiny_model, faces, tmp_path):
    a, b, c = faces
    result = run_cli("arith", a, "-", b, "+", c, "--panel", "--compare", a, "-o", tmp_path / "panel.png",
                     *model_args(tiny_model))
    assert result.returncode == 0, result.stderr
    panel = png(tmp_path / "panel.png")
    tile = 16 + 2  # the tiny model's size plus the grid's padding
    assert panel.shape[:2] == (tile + 2, 5 * tile + 2)
    result_tile = panel[2:18, 3 * tile + 2:3 * tile + 18]
    alone = run_cli("arith", a, "-", b, "+", c, "-o", "-", "--decoded", *model_args(tiny_model))
    assert np.array_equal(result_tile, png(alone.stdout))


def test_arith_writes_png_to_stdout_and_takes_npz_and_folder_terms(tiny_model, faces, tmp_path):
    encoded = run_cli("encode", faces[0].parent, "-o", tmp_path / "all.npz", *model_args(tiny_model))
    assert encoded.returncode == 0, encoded.stderr
    result = run_cli("arith", faces[0], "+", "0.5*" + str(tmp_path / "all.npz"), "-", faces[0].parent, "--size", "32",
                     "-o", "-", "--decoded", *model_args(tiny_model))
    assert result.returncode == 0, result.stderr
    assert Image.open(io.BytesIO(result.stdout)).size == (32, 32)
    assert list(tmp_path.glob("*.png")) == []


# ---- encode and decode -----------------------------------------------------------------------------------------
def test_encode_then_decode_round_trips_names_and_shapes(tiny_model, faces, tmp_path):
    result = run_cli("encode", faces[0].parent, "-o", tmp_path / "z.npz", "--json", *model_args(tiny_model))
    assert result.returncode == 0, result.stderr
    assert "images/s" in result.stderr
    line = json.loads(result.stdout)
    assert line["path"] == str(tmp_path / "z.npz") and len(line["norms"]) == 2
    latents = Latents.load(tmp_path / "z.npz")
    assert latents.names == tuple(str(p) for p in sorted(faces)) and latents.dims == (2, 2)

    decoded = run_cli("decode", tmp_path / "z.npz", "-o", tmp_path / "out", "--json", *model_args(tiny_model))
    assert decoded.returncode == 0, decoded.stderr
    written = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in written] == ["0000-a.png", "0001-b.png", "0002-c.png"]
    assert [json.loads(line)["path"] for line in decoded.stdout.decode().splitlines()] == [str(p) for p in written]
    assert all(Image.open(p).size == (16, 16) for p in written)

    gridded = run_cli("decode", tmp_path / "z.npz", "--grid", "-o", tmp_path / "grid.png", *model_args(tiny_model))
    assert gridded.returncode == 0, gridded.stderr
    assert Image.open(tmp_path / "grid.png").size == (2 * 18 + 2, 2 * 18 + 2)


def test_encode_reads_paths_from_stdin_and_stores_the_mean(tiny_model, faces, tmp_path):
    paths = "".join(f"{p}\n" for p in faces).encode()
    result = run_cli("encode", "-", "--mean", "-o", tmp_path / "mean.npz", input=paths, *model_args(tiny_model))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    full = run_cli("encode", *faces, "-o", tmp_path / "all.npz", *model_args(tiny_model))
    assert full.returncode == 0, full.stderr
    mean, rows = Latents.load(tmp_path / "mean.npz"), Latents.load(tmp_path / "all.npz")
    assert len(mean) == 1
    np.testing.assert_allclose(mean.layers[0][0], rows.layers[0].mean(axis=0), atol=1e-6)


def test_encode_attribute_vectors_from_folders_and_labels(tiny_model, tmp_path):
    with_dir, without_dir = tmp_path / "with", tmp_path / "without"
    with_dir.mkdir(), without_dir.mkdir()
    for seed in range(3):
        blob(with_dir / f"{seed}.png", seed, (16, 16))
        blob(without_dir / f"{seed}.png", seed + 10, (16, 16))
    folders = run_cli("encode", "--with", with_dir, "--without", without_dir, "-o", tmp_path / "v.npz",
                      *model_args(tiny_model))
    assert folders.returncode == 0, folders.stderr
    assert len(Latents.load(tmp_path / "v.npz")) == 1
    labeled = run_cli("encode", "--attr", "glasses", "--data", "toyfaces:40", "-o", tmp_path / "g.npz",
                      *model_args(tiny_model))
    assert labeled.returncode == 0, labeled.stderr
    assert Latents.load(tmp_path / "g.npz").names == ("glasses in toyfaces:40",)


# ---- traverse --------------------------------------------------------------------------------------------------
def test_traverse_grid_has_rows_by_columns_of_model_size(tiny_model, faces, tmp_path):
    result = run_cli("traverse", "--layer", "2", "--steps", "5", "--samples", "3", "-o", tmp_path / "t.png",
                     "--gif", tmp_path / "t.gif", *model_args(tiny_model))
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "t.png").size == (5 * 18 + 2, 3 * 18 + 2)
    assert Image.open(tmp_path / "t.gif").n_frames == 5

    every = run_cli("traverse", "--layer", "all", "--steps", "4", "--samples", "2", "--from", faces[0], "--size", "32",
                    "--decoded", "-o", tmp_path / "all.png", *model_args(tiny_model))
    assert every.returncode == 0, every.stderr
    assert Image.open(tmp_path / "all.png").size == (2 * ((2 * 4 + 1) * 18 + 2), 2 * (2 * 18 + 2))


def test_traverse_between_draws_one_strip(tiny_model, faces, tmp_path):
    result = run_cli("traverse", "--between", faces[0], faces[1], "--slerp", "--steps", "6", "-o", "-",
                     *model_args(tiny_model))
    assert result.returncode == 0, result.stderr
    assert Image.open(io.BytesIO(result.stdout)).size == (6 * 18 + 2, 18 + 2)


# ---- bad input -------------------------------------------------------------------------------------------------
def bomb(path: Path) -> Path:
    """A 20000 x 20000 PNG header with no pixel data: the size alone must be refused, before decoding."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


@pytest.fixture()
def bad_inputs(tmp_path, faces) -> dict[str, Path]:
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    good = faces[0].read_bytes()
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(good[: len(good) // 2])
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, z1=np.array([object()], dtype=object))
    return {"missing": tmp_path / "missing.jpg", "text": text, "truncated": truncated,
            "bomb": bomb(tmp_path / "huge.png"), "pickled": pickled}


@pytest.mark.parametrize("command, kind", [(command, kind) for command in ("arith", "encode", "traverse")
                                           for kind in ("missing", "text", "truncated", "bomb", "pickled")
                                           if (command, kind) != ("encode", "pickled")])  # encode takes images only
def test_bad_input_file_is_named_and_nothing_is_written(tiny_model, bad_inputs, faces, tmp_path, command, kind):
    culprit = bad_inputs[kind]
    out = tmp_path / ("out.npz" if command == "encode" else "out.png")
    args = {"arith": ["arith", faces[0], "+", culprit], "encode": ["encode", faces[0], culprit],
            "traverse": ["traverse", "--layer", "1", "--from", culprit]}[command]
    result = run_cli(*args, "-o", out, *model_args(tiny_model))
    assert_usage_error(result, culprit.name)
    assert not out.exists() and result.stdout == b""


@pytest.mark.parametrize("expression, token", [
    (["a.jpg", "-", "-", "b.jpg"], "token 3 '-'"),
    (["a.jpg", "+"], "token 2 '+'"),
    (["2*"], "token 1 '2*'"),
    ([], "empty"),
])
def test_malformed_expression_points_at_the_token(tmp_path, expression, token):
    result = run_cli("arith", *expression, "-o", tmp_path / "out.png")
    assert_usage_error(result, "expression", token)
    assert not (tmp_path / "out.png").exists()


def test_latents_from_another_model_are_refused(tiny_model, faces, tmp_path):
    rows = Latents((np.zeros((1, 2)), np.zeros((1, 2))), ("x",), "0" * 64)
    rows.save(tmp_path / "foreign.npz")
    Latents((np.zeros((1, 3)), np.zeros((1, 2))), ("x",), "0" * 64).save(tmp_path / "wide.npz")
    for name, fragment in (("foreign.npz", "another model"), ("wide.npz", "layer sizes [3, 2]")):
        for args in (["arith", faces[0], "+", tmp_path / name], ["decode", tmp_path / name]):
            result = run_cli(*args, "-o", tmp_path / "out.png", *model_args(tiny_model))
            assert_usage_error(result, name, fragment)
    assert not (tmp_path / "out.png").exists()


def test_latents_of_a_bundled_model_name_it(tmp_path):
    """examples/vectors/glasses.npz was encoded by the bundled faces: used with the default model (faces-large,
    the same layer sizes), the one error line says to add --model faces."""
    result = run_cli("arith", REPO / "examples" / "photos" / "generated-14.jpg", "+",
                     REPO / "examples" / "vectors" / "glasses.npz", "-o", tmp_path / "out.png", "--device", "cpu")
    assert_usage_error(result, "glasses.npz", "another model", "made by the bundled model faces: add --model faces")
    assert not (tmp_path / "out.png").exists()


def test_traverse_layer_beyond_the_model_is_refused(tiny_model, tmp_path):
    result = run_cli("traverse", "--layer", "7", "-o", tmp_path / "t.png", *model_args(tiny_model))
    assert_usage_error(result, "--layer 7", "2 layers")
    assert not (tmp_path / "t.png").exists()


def test_an_unknown_model_says_which_models_are_bundled(faces, tmp_path):
    result = run_cli("arith", faces[0], "-o", tmp_path / "out.png", "--device", "cpu", "--model", "no-such-model")
    assert_usage_error(result, "model 'no-such-model'", "bundled")


@pytest.mark.parametrize("args, fragment", [
    (["decode", "{npz}", "-o", "{tmp}/x.png"], "give a folder"),
    (["arith", "{face}", "-o", "-", "--json"], "stdout"),
    (["arith", "{face}", "--layers", "3", "-o", "{tmp}/x.png"], "--layers 3"),
    (["traverse", "-o", "{tmp}/x.png"], "--layer"),
    (["encode", "-o", "{tmp}/x.npz"], "give images"),
])
def test_usage_mistakes_are_one_line_errors(tiny_model, faces, tmp_path, args, fragment):
    Latents((np.zeros((2, 2)), np.zeros((2, 2))), ("p", "q"), "f").save(tmp_path / "two.npz")
    filled = [a.format(npz=tmp_path / "two.npz", tmp=tmp_path, face=faces[0]) for a in args]
    result = run_cli(*filled, *model_args(tiny_model))
    assert_usage_error(result, fragment)
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.npz").exists()


def test_an_output_on_a_read_only_file_system_is_one_error_line(tiny_model, faces):
    result = run_cli("arith", faces[0], "-o", "/proc/facealgebra-out.png", *model_args(tiny_model))
    assert_usage_error(result, "cannot write /proc/facealgebra-out.png")
