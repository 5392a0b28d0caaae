"""The output rule (issue 26, outputs.py): every output of every command is planned against all of the command's
inputs and its other outputs before any work, so no input is ever replaced, no link is written through, and a
batch is refused whole rather than half written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import assert_usage_error, run_cli
from facealgebra.latents import Latents


def picture(path: Path, shade: int = 180) -> Path:
    """A bright square on a dark ground, like the tiny model's training shapes."""
    pixels = np.zeros((20, 20, 3), np.uint8)
    pixels[5:15, 6:14] = shade
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def codes_file(model: Path, path: Path, value: float = 0.5) -> Path:
    """A one-row .npz of the tiny model's shape (2 layers x 2 dims) and fingerprint."""
    from safetensors import safe_open

    with safe_open(str(model), "np") as handle:
        fingerprint = handle.metadata()["fingerprint"]
    rows = np.full((1, 2), value, np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    Latents((rows, rows), ("x",), fingerprint).save(path)
    return path


def model_args(model: Path) -> list[str]:
    return ["--model", str(model), "--device", "cpu"]


def assert_refused_and_kept(result, path: Path, before: bytes, *fragments: str) -> None:
    assert_usage_error(result, *fragments)
    assert path.read_bytes() == before


# ---- 1: a batch output onto a photo read from stdin ------------------------------------------------------------
def test_a_batch_never_writes_over_a_photo_it_reads_from_stdin(tiny_model, tmp_path):
    photo = picture(tmp_path / "D" / "a.png")
    before = photo.read_bytes()
    vector = codes_file(tiny_model, tmp_path / "v.npz")
    result = run_cli("arith", "-", "+", vector, "-o", tmp_path / "D", *model_args(tiny_model),
                     input=f"{photo}\n".encode())
    assert_refused_and_kept(result, photo, before, "a.png", "input")


# ---- 2: traverse's outputs onto --from and --between photos ----------------------------------------------------
@pytest.mark.parametrize("name, args", [
    ("me.png", ["--layer", "1", "--from", "{me}", "-o", "{me}"]),
    ("me.gif", ["--layer", "1", "--from", "{me}", "-o", "{tmp}/grid.png", "--gif", "{me}"]),
    ("me.png", ["--between", "{me}", "{other}", "-o", "{me}"]),
])
def test_traverse_never_writes_over_its_from_or_between_photo(tiny_model, tmp_path, name, args):
    me = picture(tmp_path / name)
    other = picture(tmp_path / "other.png", 90)
    before = me.read_bytes()
    result = run_cli("traverse", *[arg.format(me=me, other=other, tmp=tmp_path) for arg in args],
                     "--steps", "2", "--samples", "1", *model_args(tiny_model))
    assert_refused_and_kept(result, me, before, name, "input")
    assert not (tmp_path / "grid.png").exists()


# ---- 3: eval's --json and --plot onto the model ----------------------------------------------------------------
@pytest.mark.parametrize("option, data", [("--json", "synthetic:20"), ("--plot", "toyfaces:40")])  # factors to plot
def test_eval_never_writes_its_report_over_the_model(tiny_model, tmp_path, option, data):
    model = Path(shutil.copy(tiny_model, tmp_path / "m.safetensors"))
    before = model.read_bytes()
    result = run_cli("eval", "--model", model, "--data", data, option, model, "--device", "cpu")
    assert_refused_and_kept(result, model, before, "m.safetensors", "input")


# ---- 4: photos inside a folder term ----------------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ["arith", "{g}", "-", "{fold}", "+", "{g}", "-o", "{fold}/p1.png"],
    ["traverse", "--layer", "1", "--from", "{fold}", "-o", "{fold}/p1.png", "--steps", "2", "--samples", "1"],
])
def test_no_output_replaces_a_photo_inside_a_folder_term(tiny_model, tmp_path, args):
    g = picture(tmp_path / "g.png")
    fold = tmp_path / "fold"
    inside = picture(fold / "p1.png", 120)
    picture(fold / "p2.png", 60)
    before = inside.read_bytes()
    result = run_cli(*[arg.format(g=g, fold=fold) for arg in args], *model_args(tiny_model))
    assert_refused_and_kept(result, inside, before, "p1.png", "input")


# ---- 5: align's crops onto its own inputs ----------------------------------------------------------------------
def test_align_never_writes_a_crop_over_one_of_its_photos(tmp_path):
    from facealgebra import align

    if not align.retinaface.installed():
        pytest.skip("needs pip install 'facealgebra[align]'")
    from face_photos import astronaut

    folder = tmp_path / "al"
    folder.mkdir()
    astronaut().save(folder / "a.png")
    astronaut().resize((300, 300)).save(folder / "a-face1.png")
    before = (folder / "a-face1.png").read_bytes()
    result = run_cli("align", folder, "-o", folder)
    assert_refused_and_kept(result, folder / "a-face1.png", before, "a-face1.png", "input")


# ---- 6: train's links at --out/.lock and --out/metrics.jsonl ---------------------------------------------------
@pytest.mark.parametrize("name", [".lock", "metrics.jsonl"])
def test_train_never_writes_through_a_link_in_its_out_folder(tmp_path, name):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "run"
    out.mkdir()
    (out / name).symlink_to(victim)
    result = run_cli("train", "--data", "synthetic:32", "--preset", "tiny", "--steps", "2", "--out", out,
                     "--device", "cpu")
    assert_usage_error(result, name, "link")
    assert victim.read_text() == "precious\n" and (out / name).is_symlink()


# ---- 15: a batch output that is a folder, found before the first photo is written ------------------------------
def test_a_batch_with_an_output_that_is_a_folder_writes_nothing(tiny_model, tmp_path):
    photos = [picture(tmp_path / "in" / "a.png"), picture(tmp_path / "in" / "b.png", 90)]
    out = tmp_path / "out"
    (out / "b.png").mkdir(parents=True)
    vector = codes_file(tiny_model, tmp_path / "v.npz")
    result = run_cli("arith", "-", "+", vector, "-o", out, *model_args(tiny_model),
                     input="".join(f"{photo}\n" for photo in photos).encode())
    assert_usage_error(result, "b.png", "folder")
    assert sorted(path.name for path in out.iterdir()) == ["b.png"]


# ---- 17: a replaced output keeps its mode; a link at an output is refused --------------------------------------
def test_a_replaced_output_keeps_its_permissions(tiny_model, tmp_path):
    photo = picture(tmp_path / "a.png")
    out = picture(tmp_path / "out.png", 40)
    out.chmod(0o600)
    result = run_cli("arith", photo, "+", codes_file(tiny_model, tmp_path / "v.npz"), "-o", out,
                     *model_args(tiny_model))
    assert result.returncode == 0, result.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    assert out.read_bytes() != picture(tmp_path / "again.png", 40).read_bytes()  # it was replaced


def test_a_link_at_an_output_is_refused_and_left_a_link(tiny_model, tmp_path):
    photo = picture(tmp_path / "a.png")
    victim = picture(tmp_path / "victim.png", 40)
    before = victim.read_bytes()
    link = tmp_path / "out.png"
    link.symlink_to(victim)
    result = run_cli("arith", photo, "+", codes_file(tiny_model, tmp_path / "v.npz"), "-o", link,
                     *model_args(tiny_model))
    assert_refused_and_kept(result, victim, before, "out.png", "link")
    assert link.is_symlink()


def test_a_hard_link_to_an_input_is_that_input(tiny_model, tmp_path):
    photo = picture(tmp_path / "a.png")
    before = photo.read_bytes()
    os.link(photo, tmp_path / "same.png")
    result = run_cli("arith", photo, "+", codes_file(tiny_model, tmp_path / "v.npz"), "-o", tmp_path / "same.png",
                     *model_args(tiny_model))
    assert_refused_and_kept(result, photo, before, "same.png", "input")


# ---- 26: a negative weight is a term, whatever letters its path holds -----------------------------------------
@pytest.mark.parametrize("term", ["-1.5*{tmp}/vectors/smile.npz", "-0.5*{tmp}/0-f1-su-ph.png"])
def test_a_negative_weight_term_reaches_the_expression_whole(tiny_model, tmp_path, term):
    photo = picture(tmp_path / "face.png")
    codes_file(tiny_model, tmp_path / "vectors" / "smile.npz")
    picture(tmp_path / "0-f1-su-ph.png", 90)
    result = run_cli("arith", photo, "+", term.format(tmp=tmp_path), "-o", tmp_path / "out.png",
                     *model_args(tiny_model))
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "out.png").size == (20, 20)


# ---- 20: a batch treats a missing photo as an unreadable one, and --strict stops before writing -----------------
def test_a_missing_photo_on_stdin_is_skipped_and_counted_like_an_unreadable_one(tiny_model, tmp_path):
    good = picture(tmp_path / "in" / "a.png")
    (tmp_path / "in" / "junk.png").write_bytes(b"not a picture")
    paths = [good, tmp_path / "in" / "gone.png", tmp_path / "in" / "junk.png"]
    result = run_cli("arith", "-", "+", codes_file(tiny_model, tmp_path / "v.npz"), "-o", tmp_path / "out",
                     *model_args(tiny_model), input="".join(f"{path}\n" for path in paths).encode())
    assert result.returncode == 0, result.stderr
    assert "skipped 2 of 3 photos" in result.stderr and "gone.png" in result.stderr
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["a.png"]


def test_strict_refuses_a_batch_before_writing_any_of_it(tiny_model, tmp_path):
    good = picture(tmp_path / "in" / "a.png")
    (tmp_path / "in" / "junk.png").write_bytes(b"not a picture")
    result = run_cli("arith", "-", "+", codes_file(tiny_model, tmp_path / "v.npz"), "-o", tmp_path / "out",
                     "--strict", *model_args(tiny_model), input=f"{good}\n{tmp_path / 'in' / 'junk.png'}\n".encode())
    assert_usage_error(result, "junk.png")
    assert not (tmp_path / "out" / "a.png").exists()


# ---- 21: rough edges ---------------------------------------------------------------------------------------------
def test_a_batch_writes_into_an_existing_folder_named_like_a_photo(tiny_model, tmp_path):
    photo = picture(tmp_path / "in" / "a.png")
    (tmp_path / "edited.jpg").mkdir()
    result = run_cli("arith", "-", "+", codes_file(tiny_model, tmp_path / "v.npz"), "-o", f"{tmp_path}/edited.jpg/",
                     *model_args(tiny_model), input=f"{photo}\n".encode())
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "edited.jpg" / "a.png").is_file()


def test_gif_is_written_as_its_suffix_says_or_refused(tiny_model, tmp_path):
    result = run_cli("traverse", "--layer", "1", "--steps", "2", "--samples", "1", "-o", tmp_path / "grid.png",
                     "--gif", tmp_path / "anim.png", *model_args(tiny_model))
    assert_usage_error(result, "anim.png", "gif")
    assert not (tmp_path / "grid.png").exists() and not (tmp_path / "anim.png").exists()


@pytest.mark.parametrize("args, fragment", [
    (["traverse", "--layer", "1", "-o", "{tmp}/grid.xyz"], ".xyz"),
    (["arith", "{tmp}/a.png", "-o", "{tmp}/out.png", "--device", "gpu"], "--device"),
])
def test_a_bad_suffix_or_device_is_refused_before_torch_loads(tiny_model, tmp_path, args, fragment):
    import subprocess
    import sys

    picture(tmp_path / "a.png")
    argv = [arg.format(tmp=tmp_path) for arg in args] + ["--model", str(tiny_model)]
    probe = ("import sys\nfrom facealgebra.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as exit:\n"
             "    print('torch' in sys.modules, exit.code)\n")
    result = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["False", "2"], result.stderr
    assert fragment in result.stderr


def test_an_unknown_data_option_is_refused(tiny_model, tmp_path):
    result = run_cli("eval", "--model", tiny_model, "--data", "synthetic:20?x=1", "--device", "cpu")
    assert_usage_error(result, "x", "unknown option")


# ---- 16, 19, 22, 23: photos kept whole -----------------------------------------------------------------------
def edit_args(tiny_model: Path, tmp_path: Path, photo: Path, out: Path) -> list[str]:
    return ["arith", photo, "+", codes_file(tiny_model, tmp_path / "v.npz"), "-o", out, *model_args(tiny_model)]


def square(shade: int = 180) -> np.ndarray:
    pixels = np.zeros((20, 20, 3), np.uint8)
    pixels[5:15, 6:14] = shade
    return pixels


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_an_edited_photo_keeps_its_colour_profile_and_exif(tiny_model, tmp_path, suffix):
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # anything but sRGB's default
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    photo = tmp_path / "photo.jpg"
    Image.fromarray(square()).save(photo, quality=80, icc_profile=profile, exif=exif.tobytes())
    out = tmp_path / f"out{suffix}"
    result = run_cli(*edit_args(tiny_model, tmp_path, photo, out))
    assert result.returncode == 0, result.stderr
    with Image.open(out) as edited:
        assert edited.info.get("icc_profile") == profile
        assert edited.getexif().get(0x010F) == "Canon"


def test_a_jpeg_edited_to_jpeg_keeps_its_quantisation(tiny_model, tmp_path):
    photo = tmp_path / "photo.jpg"
    Image.fromarray(square()).save(photo, quality=60)
    out = tmp_path / "out.jpg"
    result = run_cli(*edit_args(tiny_model, tmp_path, photo, out))
    assert result.returncode == 0, result.stderr
    with Image.open(photo) as original, Image.open(out) as edited:
        assert edited.quantization == original.quantization


def test_a_16_bit_photo_is_refused_rather_than_flattened(tiny_model, tmp_path):
    photo = tmp_path / "deep.png"
    Image.fromarray(np.full((20, 20), 3000, np.uint16)).save(photo)
    result = run_cli(*edit_args(tiny_model, tmp_path, photo, tmp_path / "out.png"))
    assert_usage_error(result, "deep.png", "8 bits")
    assert not (tmp_path / "out.png").exists()


def test_an_animation_is_edited_with_one_line_of_warning(tiny_model, tmp_path):
    photo = tmp_path / "anim.gif"
    frames = [Image.fromarray(square()), Image.fromarray(square(90))]
    frames[0].save(photo, save_all=True, append_images=frames[1:])
    result = run_cli(*edit_args(tiny_model, tmp_path, photo, tmp_path / "out.png"))
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if "frame" in line] == \
        [f"warning: {photo}: an animation of 2 frames; only its first frame is edited"]


def test_a_palette_photo_with_transparency_brings_no_pillow_warning(tiny_model, tmp_path):
    photo = tmp_path / "palette.png"
    palette = Image.fromarray((np.arange(400).reshape(20, 20) % 4).astype(np.uint8), "P")
    palette.putpalette([0, 0, 0, 180, 180, 180, 0, 255, 0, 0, 0, 255] * 64)
    palette.save(photo, transparency=b"\x00\x80\xff\xff")
    result = run_cli(*edit_args(tiny_model, tmp_path, photo, tmp_path / "out.png"))
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr and "site-packages" not in result.stderr


def test_traverse_from_a_photo_keeps_a_transparent_background_light(tiny_model, tmp_path):
    pixels = np.zeros((40, 40, 4), np.uint8)
    pixels[10:30, 12:28] = (180, 180, 180, 255)  # an opaque square on a clear (black, alpha 0) ground
    photo = tmp_path / "clear.png"
    Image.fromarray(pixels, "RGBA").save(photo)
    result = run_cli("traverse", "--layer", "1", "--from", photo, "--steps", "2", "--samples", "1", "-o",
                     tmp_path / "grid.png", "--align", "off", *model_args(tiny_model))
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "grid.png") as grid:
        corner = np.asarray(grid.convert("L"))[3:6, 3:6]  # inside the first tile, on its clear ground
    assert corner.min() > 200


def test_traverse_from_a_photo_over_all_layers_stays_viewable(tiny_model, tmp_path):
    photo = tmp_path / "big.png"
    Image.fromarray(np.repeat(np.repeat(square(), 15, axis=0), 15, axis=1)).save(photo)  # 300 x 300
    result = run_cli("traverse", "--layer", "all", "--from", photo, "--samples", "1", "-o", tmp_path / "grid.png",
                     "--align", "off", *model_args(tiny_model))
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "grid.png") as grid:
        assert grid.width <= 4096  # 18 tiles of 256 pixels would be 4,600 and more
