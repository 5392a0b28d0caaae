"""Latents .npz files: round trip, refusal of pickles and foreign files, the model check."""

from __future__ import annotations

import numpy as np
import pytest

from facealgebra.errors import FaceAlgebraError
from facealgebra.latents import LATENTS_FORMAT, Latents


def sample(count: int = 3) -> Latents:
    rng = np.random.default_rng(0)
    return Latents((rng.normal(size=(count, 2)), rng.normal(size=(count, 5))),
                   tuple(f"photo{i}.jpg" for i in range(count)), "abc123")


def test_save_then_load_round_trips_layers_names_and_fingerprint(tmp_path):
    latents = sample()
    latents.save(tmp_path / "z.npz")
    loaded = Latents.load(tmp_path / "z.npz")
    assert loaded.names == latents.names and loaded.fingerprint == "abc123" and loaded.dims == (2, 5)
    for mine, theirs in zip(latents.layers, loaded.layers):
        assert theirs.dtype == np.float32 and theirs.tobytes() == mine.tobytes()
    assert sorted(np.load(tmp_path / "z.npz").files) == ["fingerprint", "format", "names", "z1", "z2"]


def test_save_leaves_no_temporary_files(tmp_path):
    sample().save(tmp_path / "z.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["z.npz"]


def test_pickled_objects_are_refused(tmp_path):
    np.savez(tmp_path / "evil.npz", z1=np.array([object()], dtype=object), format=np.array(LATENTS_FORMAT))
    with pytest.raises(FaceAlgebraError, match="evil.npz: holds pickled objects"):
        Latents.load(tmp_path / "evil.npz")


@pytest.mark.parametrize("content", [b"not a zip", b""])
def test_a_file_that_is_not_an_npz_is_named(tmp_path, content):
    (tmp_path / "bad.npz").write_bytes(content)
    with pytest.raises(FaceAlgebraError, match="bad.npz: not a latents .npz"):
        Latents.load(tmp_path / "bad.npz")


def test_an_npz_of_something_else_is_refused(tmp_path):
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(FaceAlgebraError, match="other.npz: not a facealgebra latents file"):
        Latents.load(tmp_path / "other.npz")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FaceAlgebraError, match="nope.npz: no such file"):
        Latents.load(tmp_path / "nope.npz")


def test_check_model_refuses_other_shapes_and_fingerprints():
    latents = sample()
    latents.check_model("abc123", (2, 5), "z.npz")
    with pytest.raises(FaceAlgebraError, match=r"z.npz: latents have layer sizes \[2, 5\] but the model has \[2, 2\]"):
        latents.check_model("abc123", (2, 2), "z.npz")
    with pytest.raises(FaceAlgebraError, match="z.npz: latents come from another model"):
        latents.check_model("ffff", (2, 5), "z.npz")


def test_mean_and_select():
    latents = sample(4)
    mean = latents.mean("proto")
    assert mean.names == ("proto",)
    np.testing.assert_allclose(mean.layers[1][0], latents.layers[1].mean(axis=0), rtol=1e-6)
    picked = latents.select(np.array([True, False, True, False]))
    assert picked.names == ("photo0.jpg", "photo2.jpg") and len(picked.layers[0]) == 2
