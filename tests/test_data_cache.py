"""The uint8 cache: read back when nothing changed, rebuilt when the files or the recipe change or a build died."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import facealgebra.data.cache as cache
from facealgebra.data import load_data


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEALGEBRA_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def decodes(monkeypatch):
    """Counts the photos actually decoded (small sets decode in this process)."""
    calls = []
    real = cache.load_for_model
    monkeypatch.setattr(cache, "load_for_model", lambda path, recipe: calls.append(path) or real(path, recipe))
    return calls


@pytest.fixture
def photos(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    for index in range(5):
        Image.new("RGB", (24, 30), (index * 50, 100, 200)).save(root / f"{index}.png")
    return root


def test_second_load_reads_the_cache(photos, decodes):
    first = load_data(f"folder:{photos}", image_size=8)
    assert len(decodes) == 5
    second = load_data(f"folder:{photos}", image_size=8)
    assert len(decodes) == 5 and isinstance(second.images, np.memmap)
    np.testing.assert_array_equal(first.images, second.images)


def test_adding_a_file_rebuilds(photos, decodes):
    load_data(f"folder:{photos}", image_size=8)
    Image.new("RGB", (24, 30), (0, 0, 0)).save(photos / "new.png")
    data = load_data(f"folder:{photos}", image_size=8)
    assert len(decodes) == 11 and len(data) == 6 and "new.png" in data.names


def test_changing_a_file_rebuilds(photos, decodes):
    load_data(f"folder:{photos}", image_size=8)
    Image.new("RGB", (24, 30), (255, 255, 255)).save(photos / "0.png")
    data = load_data(f"folder:{photos}", image_size=8)
    assert len(decodes) == 10 and data.images[data.names.index("0.png")].min() == 255


def test_changing_the_recipe_rebuilds(photos, decodes):
    load_data(f"folder:{photos}", image_size=8)
    assert load_data(f"folder:{photos}?crop=0.5", image_size=8).preprocess["crop_fraction"] == 0.5
    assert load_data(f"folder:{photos}", image_size=12).images.shape[-1] == 12
    assert len(decodes) == 15


def test_half_written_cache_is_rebuilt_not_read(photos, decodes, tmp_path):
    good = np.array(load_data(f"folder:{photos}", image_size=8).images)
    # what a build killed before its end leaves: the array (here cut short) without its index
    (array_path,) = (tmp_path / "cache").glob("*.u8")
    array_path.with_suffix(".json").unlink()
    array_path.write_bytes(array_path.read_bytes()[:100])
    data = load_data(f"folder:{photos}", image_size=8)
    assert len(decodes) == 10
    np.testing.assert_array_equal(data.images, good)


def test_index_without_matching_array_is_rebuilt(photos, decodes, tmp_path):
    load_data(f"folder:{photos}", image_size=8)
    (array_path,) = (tmp_path / "cache").glob("*.u8")
    array_path.write_bytes(bytes(2 * 3 * 8 * 8))  # another array's pixels
    assert len(load_data(f"folder:{photos}", image_size=8)) == 5 and len(decodes) == 10


def test_parallel_build_matches_serial(photos, monkeypatch):
    serial = np.array(load_data(f"folder:{photos}", image_size=8).images)
    monkeypatch.setattr(cache, "SERIAL_BELOW", 0)
    monkeypatch.setenv("FACEALGEBRA_CACHE", str(photos.parent / "cache2"))
    np.testing.assert_array_equal(load_data(f"folder:{photos}", image_size=8).images, serial)
