"""The editing commands against what a new user tried (issue 16): bad outputs are refused before any work,
absurd numbers never become pictures, names keep their characters, a folder's unreadable photos are skipped and
counted, and every file written is named on stderr."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, assert_usage_error, run_cli
from facealgebra.latents import Latents

# An output checked only after the model loads would be reported as this unknown model instead.
NO_MODEL = ["--model", "no-such-model", "--device", "cpu"]
HAS_PROC = Path("/proc/self").is_dir()


def picture(path: Path, shade: int = 180) -> Path:
    """A bright square on a dark ground, like the tiny model's training shapes."""
    pixels = np.zeros((20, 20, 3), np.uint8)
    pixels[5:15, 6:14] = shade
    Image.fromarray(pixels).save(path, format="PNG")
    return path


def codes_file(model: Path, path: Path, value: float = 0.5, names: tuple[str, ...] = ("x",)) -> Path:
    """A .npz of the tiny model's shape (2 layers x 2 dims) and fingerprint, every value `value`."""
    from safetensors import safe_open

    with safe_open(str(model), "np") as handle:
        fingerprint = handle.metadata()["fingerprint"]
    rows = np.full((len(names), 2), value, np.float32)
    Latents((rows, rows), names, fingerprint).save(path)
    return path


def model_args(model: Path) -> list[str]:
    return ["--model", str(model), "--device", "cpu"]


# ---- 7: absurd numbers ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("expression, token", [(["1e30*{a}"], "1e30*"), (["3e38*{a}", "+", "3e38*{a}"], "3e38*")])
def test_an_absurd_weight_is_refused_before_any_work(tmp_path, expression, token):
    photo = picture(tmp_path / "a.png")
    result = run_cli("arith", *[word.format(a=photo) for word in expression], "-o", tmp_path / "out.png",
                     "--save-latent", tmp_path / "out.npz", *NO_MODEL)
    assert_usage_error(result, token, "weight")
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "out.npz").exists()


@pytest.mark.parametrize("value", [np.inf, np.nan, 3e38])
def test_latents_that_are_no_codes_are_refused_naming_the_file(tiny_model, tmp_path, value):
    codes = codes_file(tiny_model, tmp_path / "bad.npz", value)
    result = run_cli("decode", codes, "-o", tmp_path / "out.png", *model_args(tiny_model))
    assert_usage_error(result, "bad.npz", "z1")
    assert not (tmp_path / "out.png").exists()


def test_a_sum_beyond_any_code_is_refused_naming_its_largest_term(tiny_model, tmp_path):
    small, big = codes_file(tiny_model, tmp_path / "small.npz"), codes_file(tiny_model, tmp_path / "big.npz", 5000)
    result = run_cli("arith", small, "+", f"3*{big}", "-o", tmp_path / "out.png", "--save-latent",
                     tmp_path / "out.npz", *model_args(tiny_model))
    assert_usage_error(result, "big.npz", "z1")  # one line: no numpy warning either
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "out.npz").exists()


# ---- 10, 16, 18: outputs checked before any work -----------------------------------------------------------------
@pytest.mark.parametrize("command, out", [("encode", "emptydir"), ("encode", "."), ("encode", "newdir/"),
                                          ("arith", "folder.png"), ("arith", "new.png/")])
def test_a_file_output_that_names_a_folder_is_refused_before_any_work(tmp_path, command, out):
    picture(tmp_path / "a.png")
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "folder.png").mkdir()
    result = run_cli(command, "a.png", "-o", out, *NO_MODEL, cwd=tmp_path)
    assert_usage_error(result, f"cannot write {out}", "folder")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.png", "emptydir", "folder.png"]
    assert list((tmp_path / "emptydir").iterdir()) == []


@pytest.mark.skipif(not HAS_PROC, reason="needs Linux /proc, where no file can be made")
def test_an_output_folder_where_no_file_can_be_made_is_refused_before_any_work(tmp_path):
    Latents((np.zeros((2, 2)), np.zeros((2, 2))), ("p", "q"), "f").save(tmp_path / "two.npz")
    result = run_cli("decode", tmp_path / "two.npz", "-o", "/proc/facealgebra-out/", *NO_MODEL)
    assert_usage_error(result, "/proc/facealgebra-out/")


@pytest.mark.parametrize("gif", ["{tmp}/folder.gif", "{tmp}/new/"] + (["/proc/t.gif"] if HAS_PROC else []))
def test_traverse_checks_its_gif_before_writing_anything(tmp_path, gif):
    (tmp_path / "folder.gif").mkdir()
    result = run_cli("traverse", "--layer", "1", "-o", tmp_path / "t.png", "--gif", gif.format(tmp=tmp_path),
                     *NO_MODEL)
    assert_usage_error(result, f"cannot write {gif.format(tmp=tmp_path)}")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["folder.gif"]


# ---- 12: --size ------------------------------------------------------------------------------------------------
def test_a_size_that_would_make_an_unreadable_picture_is_refused(tiny_model, tmp_path):
    codes = codes_file(tiny_model, tmp_path / "z.npz")
    result = run_cli("decode", codes, "-o", tmp_path / "big.png", "--size", "8000", *model_args(tiny_model))
    assert_usage_error(result, "8000x8000", "--size")
    assert not (tmp_path / "big.png").exists()


# ---- 17, 18, 19, 24: names in and out --------------------------------------------------------------------------
def test_encode_keeps_spaces_in_paths_read_from_stdin(tiny_model, tmp_path):
    picture(tmp_path / " lead.png"), picture(tmp_path / "trail.png ")
    result = run_cli("encode", "-", "-o", "z.npz", *model_args(tiny_model), input=b" lead.png\n\ntrail.png \r\n",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert Latents.load(tmp_path / "z.npz").names == (" lead.png", "trail.png ")


def test_decode_into_a_new_folder_keeps_unicode_names_and_says_what_it_wrote(tiny_model, tmp_path):
    codes = codes_file(tiny_model, tmp_path / "z.npz", names=("photos/照片.jpg", "photos/a\x01b.png"))
    result = run_cli("decode", codes, "-o", f"{tmp_path}/new/", *model_args(tiny_model))
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in (tmp_path / "new").iterdir()) == ["0000-照片.png", "0001-a_b.png"]
    assert f"wrote {tmp_path}/new/0000-照片.png (16x16)" in result.stderr


def test_every_file_written_is_named_on_stderr_with_its_size(tiny_model, tmp_path):
    photo = picture(tmp_path / "a.png")
    encoded = run_cli("encode", photo, "-o", tmp_path / "z.npz", "--json", *model_args(tiny_model))
    assert encoded.returncode == 0, encoded.stderr
    assert f"wrote {tmp_path / 'z.npz'} (1 latent)" in encoded.stderr
    assert b"wrote" not in encoded.stdout  # stdout keeps to the JSON line
    traversed = run_cli("traverse", "--layer", "1", "--steps", "3", "--samples", "1", "-o", "-", "--gif",
                        tmp_path / "t.gif", *model_args(tiny_model))
    assert traversed.returncode == 0, traversed.stderr
    assert f"wrote {tmp_path / 't.gif'} (20x20, 3 frames)" in traversed.stderr
    assert "wrote -" not in traversed.stderr and traversed.stdout.startswith(b"\x89PNG")


# ---- 20, 21: notes on what a model makes of a photo -------------------------------------------------------------
def test_a_template_model_says_once_that_photos_are_not_aligned_without_the_detector(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    picture(folder / "a.png"), picture(folder / "b.png", 90)
    without_align = {"PYTHONPATH": str(REPO / "tests" / "without_align")}  # as after a plain pip install
    result = run_cli("encode", folder, "-o", tmp_path / "z.npz", "--model", "orl", "--device", "cpu", env=without_align)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and "not aligned" in notes[0] and "pip install 'facealgebra[align]'" in notes[0], notes


def test_a_model_trained_without_photos_says_so_once_when_given_photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    picture(folder / "a.png"), picture(folder / "b.png", 90)
    result = run_cli("encode", folder, "-o", tmp_path / "z.npz", "--model", "mnist", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and "handwritten digits" in notes[0], notes
    drawn = run_cli("traverse", "--layer", "1", "--steps", "2", "--samples", "1", "-o", tmp_path / "t.png",
                    "--model", "mnist", "--device", "cpu")
    assert drawn.returncode == 0 and "note:" not in drawn.stderr, drawn.stderr  # no photo, nothing to note


# ---- 25: a folder's unreadable or faceless photos --------------------------------------------------------------
@pytest.fixture()
def folder_with_junk(tmp_path) -> Path:
    folder = tmp_path / "faces"
    folder.mkdir()
    picture(folder / "a.png"), picture(folder / "c.png", 90)
    (folder / "b.png").write_text("not a picture")
    return folder


def test_encode_and_arith_skip_a_folders_unreadable_images_and_count_them(tiny_model, folder_with_junk, tmp_path):
    encoded = run_cli("encode", folder_with_junk, "-o", tmp_path / "z.npz", *model_args(tiny_model))
    assert encoded.returncode == 0, encoded.stderr
    assert "skipped 1 of 3 images" in encoded.stderr and "b.png" in encoded.stderr
    assert Latents.load(tmp_path / "z.npz").names == tuple(str(folder_with_junk / name) for name in ("a.png", "c.png"))
    mean = run_cli("arith", folder_with_junk, "-o", tmp_path / "mean.png", *model_args(tiny_model))
    assert mean.returncode == 0, mean.stderr
    assert "skipped 1 of 3 images" in mean.stderr and (tmp_path / "mean.png").exists()


def test_strict_stops_at_a_folders_unreadable_image(tiny_model, folder_with_junk, tmp_path):
    result = run_cli("encode", folder_with_junk, "--strict", "-o", tmp_path / "z.npz", *model_args(tiny_model))
    assert_usage_error(result, "b.png")
    assert not (tmp_path / "z.npz").exists()


def test_a_folder_with_nothing_readable_is_refused(tiny_model, tmp_path):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "b.png").write_text("not a picture")
    result = run_cli("encode", folder, "-o", tmp_path / "z.npz", *model_args(tiny_model))
    assert_usage_error(result, "no image left", "b.png")
    assert not (tmp_path / "z.npz").exists()


def test_a_faceless_photo_in_a_folder_is_skipped(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "face.png").write_bytes((REPO / "examples" / "c-woman.png").read_bytes())
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(folder / "noise.png")
    result = run_cli("encode", folder, "-o", tmp_path / "z.npz", "--model", "orl", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "skipped 1 of 2 images" in result.stderr and "no face found" in result.stderr
    assert Latents.load(tmp_path / "z.npz").names == (str(folder / "face.png"),)


# ---- 1: an output never replaces an input ------------------------------------------------------------------------
@pytest.mark.parametrize("args, fragment", [
    (["arith", "{a}", "-o", "{a}"], "is an input"),
    (["encode", "{a}", "-o", "{a}"], "is an input"),
    (["encode", "{a}", "-o", "{t}/a.png"], "latents are written as .npz"),
    (["traverse", "--layer", "1", "-o", "{t}/same.png", "--gif", "{t}/same.png"], "named twice"),
    (["arith", "{a}", "--save-latent", "{t}/x.npz", "-o", "{t}/x.npz"], "unknown image type"),
    (["arith", "{a}", "--save-latent", "{t}/x.png", "-o", "{t}/y.png"], "--save-latent"),
])
def test_no_output_replaces_an_input_or_the_other_output(tmp_path, args, fragment):
    folder = tmp_path / "in"
    folder.mkdir()
    photo = picture(folder / "a.png")
    before = photo.read_bytes()
    filled = [arg.format(a=photo, folder=folder, t=tmp_path) for arg in args]
    assert_usage_error(run_cli(*filled, *NO_MODEL), fragment)
    assert photo.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["in"]


# ---- 23: the suffix names the format, in every command -------------------------------------------------------
def test_every_picture_is_written_in_the_format_its_suffix_names(tiny_model, tmp_path):
    photo = picture(tmp_path / "a.png")
    codes = codes_file(tiny_model, tmp_path / "z.npz")
    for args, out in [(["arith", photo, "--decoded"], "arith.jpg"), (["arith", photo], "photo.jpeg"),
                      (["decode", codes], "one.jpg"), (["decode", codes, "--grid"], "grid.webp"),
                      (["traverse", "--layer", "1"], "walk.tif")]:
        result = run_cli(*args, "-o", tmp_path / out, *model_args(tiny_model))
        assert result.returncode == 0, result.stderr
        with Image.open(tmp_path / out) as written:
            assert written.format == {"jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "tif": "TIFF"}[out.split(".")[1]]
    refused = run_cli("decode", codes, "-o", tmp_path / "one.gif", *model_args(tiny_model))
    assert_usage_error(refused, "one.gif", "unknown image type")
