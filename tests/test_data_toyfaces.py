"""toyfaces: deterministic procedural faces whose every factor shows in the picture."""

from __future__ import annotations

import numpy as np
import pytest

from facealgebra.data import load_data
from facealgebra.data.toyfaces import FACTORS, factors_for_index, render


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEALGEBRA_CACHE", str(tmp_path / "cache"))


def test_factors_are_deterministic_and_in_range():
    assert factors_for_index(7) == factors_for_index(7)
    assert factors_for_index(7) != factors_for_index(8)
    for index in range(50):
        factors = factors_for_index(index)
        assert list(factors) == list(FACTORS)
        assert all(0 <= factors[name] < count for name, count in FACTORS.items())


def test_factors_cover_every_value():
    table = [factors_for_index(i) for i in range(400)]
    for name, count in FACTORS.items():
        assert {f[name] for f in table} == set(range(count)), name


def test_render_is_deterministic_uint8():
    face = render(factors_for_index(3), size=32)
    assert face.dtype == np.uint8 and face.shape == (3, 32, 32)
    np.testing.assert_array_equal(face, render(factors_for_index(3), size=32))


@pytest.mark.parametrize("name", list(FACTORS))
def test_every_value_of_every_factor_changes_the_face(name):
    base = factors_for_index(0)
    pictures = [render({**base, name: value}, size=32).astype(np.int16) for value in range(FACTORS[name])]
    for i in range(len(pictures)):
        for j in range(i):
            # a visible change: many pixels differ, not a rounding ripple
            assert (np.abs(pictures[i] - pictures[j]).max(axis=0) > 20).sum() >= 4, (name, i, j)


def test_loader_returns_images_with_factor_labels():
    data = load_data("toyfaces:12", image_size=32)
    assert data.images.shape == (12, 3, 32, 32) and data.images.dtype == np.uint8
    assert data.factor_names == tuple(FACTORS)
    for index in (0, 11):
        assert {name: int(data.labels[name][index]) for name in FACTORS} == factors_for_index(index)
        np.testing.assert_array_equal(data.images[index], render(factors_for_index(index), 32))


def test_loader_renders_grey_when_asked():
    assert load_data("toyfaces:4", image_size=16, channels=1).images.shape == (4, 1, 16, 16)
