"""folder:PATH: every image under a folder, odd formats converted, bad files skipped with one warning."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facealgebra.data import load_data
from facealgebra.errors import FaceAlgebraError


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEALGEBRA_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def mixed_folder(tmp_path):
    """A corrupt JPEG, a PNG with alpha, a 16-bit grey PNG and a JPEG rotated by EXIF, one in a subfolder."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    Image.new("RGB", (40, 40), (200, 30, 30)).save(root / "good.jpg")
    (root / "corrupt.jpg").write_bytes((root / "good.jpg").read_bytes()[:200])
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 2] = 255
    rgba[:, :20, 3] = 255  # left half opaque blue, right half transparent (flattened onto white)
    Image.fromarray(rgba, "RGBA").save(root / "sub" / "alpha.png")
    Image.fromarray(np.full((40, 40), 65535 // 2, np.uint16)).save(root / "grey16.png")
    # stored 60 wide x 30 tall, top half black; EXIF orientation 6 (rotate 90 clockwise) makes it 30 x 60
    stored = np.full((30, 60, 3), 255, np.uint8)
    stored[:15] = 0
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(root / "rotated.jpg", exif=exif, quality=95)
    return root


def test_reads_every_image_and_skips_the_corrupt_one_with_one_warning(mixed_folder, capsys):
    data = load_data(f"folder:{mixed_folder}", image_size=16)
    assert sorted(data.names) == ["good.jpg", "grey16.png", "rotated.jpg", "sub/alpha.png"]
    assert data.images.shape == (4, 3, 16, 16)
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]
    assert len(warnings) == 1 and "1 unreadable" in warnings[0] and "corrupt.jpg" in warnings[0]


def test_formats_are_converted(mixed_folder):
    data = load_data(f"folder:{mixed_folder}", image_size=16)
    image = dict(zip(data.names, data.images))
    assert np.abs(image["grey16.png"].astype(int) - 128).max() <= 2
    assert tuple(image["sub/alpha.png"][:, 8, 2]) == (0, 0, 255)  # opaque blue
    assert tuple(image["sub/alpha.png"][:, 8, 13]) == (255, 255, 255)  # transparent onto white
    # after EXIF rotation the black half is on the right; the centred square crop keeps both halves
    rotated = image["rotated.jpg"][0].astype(int)
    assert rotated[8, 2] > 200 and rotated[8, 13] < 50


def test_bare_path_and_grey_channels(mixed_folder):
    data = load_data(str(mixed_folder), image_size=8, channels=1)
    assert data.images.shape == (4, 1, 8, 8) and data.preprocess["channels"] == 1


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FaceAlgebraError, match="no images under"):
        load_data(f"folder:{tmp_path / 'empty'}", image_size=8)


def test_folder_of_only_unreadable_files_is_an_error(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(FaceAlgebraError, match="could be read"):
        load_data(f"folder:{tmp_path}", image_size=8)


def test_crop_option_must_be_a_fraction(mixed_folder):
    with pytest.raises(FaceAlgebraError, match="crop must be a fraction"):
        load_data(f"folder:{mixed_folder}?crop=148", image_size=8)


def test_aligned_frames_are_read_whole_and_carry_the_face_template(tmp_path):
    """folder:PATH?aligned=yes: pictures already on the face template are only resized (a frame at model size is
    read pixel for pixel), and the data records the template, as stylegan's does, so a model trained on them
    aligns photos like one trained on stylegan."""
    from facealgebra.data.stylegan import frame_recipe

    root = tmp_path / "frames"
    root.mkdir()
    frames = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(root / f"face-{i}.png")
    data = load_data(f"folder:{root}?aligned=yes", image_size=16)
    np.testing.assert_array_equal(data.images, frames.transpose(0, 3, 1, 2))
    assert data.preprocess == frame_recipe(16, 3)
    assert "template" not in load_data(f"folder:{root}", image_size=16).preprocess
    with pytest.raises(FaceAlgebraError, match="drop crop"):
        load_data(f"folder:{root}?aligned=yes&crop=0.5", image_size=16)
    with pytest.raises(FaceAlgebraError, match="aligned must be one of yes, no"):
        load_data(f"folder:{root}?aligned=maybe", image_size=16)
