"""celeba:ROOT in both layouts, with real header formats, splits, attributes and the errors for wrong folders."""

from __future__ import annotations

import pytest
import numpy as np
from celeba_fixture import ATTRIBUTES, attribute_values, landmark_values, partition_of, write_celeba

from facealgebra.data import load_data
from facealgebra.errors import FaceAlgebraError


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEALGEBRA_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("layout", ["official", "kaggle"])
def test_both_layouts_give_images_and_attributes(tmp_path, layout):
    root = write_celeba(tmp_path / layout, layout, 20)
    data = load_data(f"celeba:{root}?split=all", image_size=16)
    assert data.images.shape == (20, 3, 16, 16)
    assert list(data.labels) == ATTRIBUTES
    for index in (0, 13):
        assert data.names[index] == f"{index + 1:06d}.jpg"
        assert [int(data.labels[a][index]) for a in ATTRIBUTES] == [int(v > 0) for v in attribute_values(index)]


@pytest.mark.parametrize(("split", "part"), [("train", 0), ("valid", 1), ("test", 2)])
def test_split_follows_the_partition_file(tmp_path, split, part):
    root = write_celeba(tmp_path, "official", 20)
    data = load_data(f"celeba:{root}?split={split}", image_size=8)
    assert data.names == [f"{i + 1:06d}.jpg" for i in range(20) if partition_of(i) == part]


def test_crop_is_the_centred_square_recorded_in_the_recipe(tmp_path):
    root = write_celeba(tmp_path, "official", 10)
    data = load_data(f"celeba:{root}?split=all&crop=148", image_size=8)
    assert data.preprocess["crop_fraction"] == pytest.approx(148 / 178)
    # the fixture's grey square is 60 px wide: a 148 px crop shows the border colour at its corners
    assert abs(int(data.images[3, 0, 0, 0]) - (37 * 3) % 256) < 12
    assert abs(int(data.images[3, 0, 4, 4]) - 128) < 12


def test_partial_copy_uses_the_images_present(tmp_path):
    root = write_celeba(tmp_path, "kaggle", 10)
    (root / "img_align_celeba" / "img_align_celeba" / "000002.jpg").unlink()
    assert "000002.jpg" not in load_data(f"celeba:{root}?split=all", image_size=8).names


def test_missing_root_is_an_error(tmp_path):
    with pytest.raises(FaceAlgebraError, match="is not a folder"):
        load_data(f"celeba:{tmp_path / 'nowhere'}", image_size=8)


def test_folder_in_neither_layout_names_the_files_looked_for(tmp_path):
    (tmp_path / "img_align_celeba").mkdir()
    with pytest.raises(FaceAlgebraError, match="list_attr_celeba.txt.*list_attr_celeba.csv|list_attr_celeba.csv.*list_attr_celeba.txt"):
        load_data(f"celeba:{tmp_path}", image_size=8)


def test_bad_split_is_an_error(tmp_path):
    root = write_celeba(tmp_path, "official", 3)
    with pytest.raises(FaceAlgebraError, match="split must be one of"):
        load_data(f"celeba:{root}?split=everything", image_size=8)


@pytest.mark.parametrize("layout", ["official", "kaggle"])
def test_the_landmark_table_gives_the_template_for_alignment(tmp_path, layout):
    root = write_celeba(tmp_path / layout, layout, 20, landmarks=True)
    data = load_data(f"celeba:{root}?split=train", image_size=8)
    template = data.preprocess["template"]
    used = [int(name[:6]) - 1 for name in data.names]
    expected = np.mean([landmark_values(i) for i in used], axis=0).reshape(5, 2) + 0.5  # pixel centres
    assert template["frame"] == [178, 218] and template["faces"] == len(used) == 16
    assert np.allclose(template["landmarks"], expected, atol=1e-3)


def test_without_a_landmark_table_there_is_no_template(tmp_path):
    root = write_celeba(tmp_path, "official", 10)
    assert "template" not in load_data(f"celeba:{root}?split=all", image_size=8).preprocess
