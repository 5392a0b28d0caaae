"""`facealgebra export`: float16 storage halves a model file and is refused when it would change the pixels."""

import pytest
import torch

from conftest import assert_usage_error, run_cli
from facealgebra.checkpoint import STORAGE_TOLERANCE, load_model, save_model, storage_error
from facealgebra.config import PRESETS
from facealgebra.errors import FaceAlgebraError
from facealgebra.model import VLAE

RECIPE = {"crop_fraction": 1.0, "size": 16, "channels": 1, "range": [0, 1]}


def float32_model(path):
    """An untrained `mnist`-preset model (half a million weights) saved in float32, as training saves it."""
    torch.manual_seed(0)
    save_model(path, VLAE(PRESETS["mnist"].model).eval(), {**RECIPE, "size": 28}, {"steps": 0})
    return path


def test_export_halves_the_file_and_keeps_the_outputs(tmp_path):
    source, out = float32_model(tmp_path / "m.safetensors"), tmp_path / "half.safetensors"
    result = run_cli("export", source, "-o", out)
    assert result.returncode == 0, result.stderr
    original, half = load_model(source), load_model(out)
    assert out.stat().st_size < 0.55 * source.stat().st_size
    assert half.fingerprint != original.fingerprint
    assert half.training["exported_from"] == original.fingerprint and half.preprocess == original.preprocess
    x = torch.rand(16, 1, 28, 28)
    with torch.no_grad():
        change = (original.model.decode(original.model.encode(x)) - half.model.decode(half.model.encode(x))).abs()
    assert 0.0 < float(change.max()) <= STORAGE_TOLERANCE


def test_an_export_of_an_export_names_the_trained_weights(tmp_path):
    source = float32_model(tmp_path / "m.safetensors")
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    assert run_cli("export", source, "-o", first).returncode == 0
    assert run_cli("export", first, "-o", second, "--dtype", "float32").returncode == 0
    assert load_model(second).training["exported_from"] == load_model(source).fingerprint


def test_storage_error_is_zero_in_float32_and_small_in_float16():
    model = VLAE(PRESETS["tiny"].model).eval()
    assert storage_error(model, torch.float32) == 0.0
    assert 0.0 < storage_error(model, torch.float16) <= STORAGE_TOLERANCE


def test_weights_beyond_float16s_range_are_refused_and_nothing_is_written(tmp_path):
    model = VLAE(PRESETS["tiny"].model).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(1e5)  # beyond float16's largest value, 65504
    save_model(tmp_path / "big.safetensors", model, RECIPE, {})
    out = tmp_path / "half.safetensors"
    result = run_cli("export", tmp_path / "big.safetensors", "-o", out)
    assert_usage_error(result, "float16 cannot hold", "keep it in float32")
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "big.safetensors"]


def test_export_refuses_bad_arguments_without_writing(tmp_path):
    assert_usage_error(run_cli("export", "mnist", "-o", tmp_path / "m.bin"), "m.bin", ".safetensors")
    assert_usage_error(run_cli("export", "mnist", "-o", tmp_path / "m.safetensors", "--dtype", "int8"),
                       "--dtype 'int8'")
    assert_usage_error(run_cli("export", "nosuch", "-o", tmp_path / "m.safetensors"), "nosuch")
    mnist = load_model("mnist").path
    before = mnist.read_bytes()
    assert_usage_error(run_cli("export", mnist, "-o", mnist), "is an input")
    assert mnist.read_bytes() == before and list(tmp_path.iterdir()) == []


def test_a_change_above_the_tolerance_is_refused(tmp_path, monkeypatch):
    import facealgebra.checkpoint as checkpoint

    save_model(tmp_path / "m.safetensors", VLAE(PRESETS["tiny"].model), RECIPE, {})
    monkeypatch.setattr(checkpoint, "STORAGE_TOLERANCE", 0.0)  # any rounding at all is now too much
    with pytest.raises(FaceAlgebraError, match=r"float16 would change this model's pixels by up to .*keep it"):
        checkpoint.export_model(load_model(tmp_path / "m.safetensors"), tmp_path / "half.safetensors", "float16")
    assert not (tmp_path / "half.safetensors").exists()
