import dataclasses

import pytest
import torch

from facealgebra.checkpoint import load_model, save_model
from facealgebra.config import PRESETS, ModelConfig
from facealgebra.errors import FaceAlgebraError
from facealgebra.model import VLAE


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_encode_and_decode_shapes(name):
    cfg = PRESETS[name].model
    model = VLAE(cfg).eval()
    x = torch.rand(2, cfg.channels, cfg.image_size, cfg.image_size)
    with torch.no_grad():
        latents = model.encode(x)
        assert [tuple(z.shape) for z in latents] == [(2, d) for d in cfg.latent_dims]
        assert tuple(model.decode(latents).shape) == tuple(x.shape)
        assert tuple(model.sample(3, seed=0).shape) == (3, cfg.channels, cfg.image_size, cfg.image_size)


@pytest.mark.parametrize("layers", [1, 6])
def test_layer_count_and_channels_are_config(layers):
    cfg = ModelConfig(image_size=20, channels=3, latent_dims=(3,) * layers, base_width=4, max_width=8)
    model = VLAE(cfg).eval()
    with torch.no_grad():
        out = model.decode(model.encode(torch.rand(2, 3, 20, 20)))
    assert out.shape == (2, 3, 20, 20) and 0.0 <= out.min() and out.max() <= 1.0


def test_encode_gives_means_unless_a_kl_model_is_asked_to_sample():
    model = VLAE(dataclasses.replace(PRESETS["tiny"].model, reg="kl")).eval()
    x = torch.rand(4, 1, 16, 16)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(model.encode(x), model.encode(x)))
        assert not all(torch.equal(a, b) for a, b in zip(model.encode(x, sample=True), model.encode(x, sample=True)))


def test_the_mmd_encoder_is_deterministic():
    model = VLAE(PRESETS["tiny"].model).eval()
    x = torch.rand(4, 1, 16, 16)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(model.encode(x, sample=True), model.encode(x)))
        x_hat, _, samples = model(x)
        assert all(torch.equal(a, b) for a, b in zip(samples, model.encode(x)))


def test_sample_is_reproducible_for_a_seed():
    model = VLAE(PRESETS["tiny"].model).eval()
    with torch.no_grad():
        assert torch.equal(model.sample(4, seed=3), model.sample(4, seed=3))
        assert not torch.equal(model.sample(4, seed=3), model.sample(4, seed=4))


def test_save_then_load_gives_bit_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = VLAE(PRESETS["mnist"].model).eval()
    recipe = {"crop_fraction": 1.0, "size": 28, "channels": 1, "range": [0, 1]}
    print_ = save_model(tmp_path / "m.safetensors", model, recipe, {"steps": 0})
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.fingerprint == print_ and loaded.preprocess == recipe
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model.decode(model.encode(x)), loaded.model.decode(loaded.model.encode(x)))


def test_a_damaged_model_file_is_refused(tmp_path):
    model = VLAE(PRESETS["tiny"].model)
    path = tmp_path / "m.safetensors"
    save_model(path, model, {"crop_fraction": 1.0, "size": 16, "channels": 1, "range": [0, 1]}, {})
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # flip bits inside the last tensor
    path.write_bytes(bytes(data))
    with pytest.raises(FaceAlgebraError, match="fingerprint"):
        load_model(path)


def test_config_rejects_bad_shapes():
    with pytest.raises(FaceAlgebraError):
        ModelConfig(latent_dims=(2,) * 7)
    with pytest.raises(FaceAlgebraError):
        ModelConfig(channels=2)
    with pytest.raises(FaceAlgebraError):
        ModelConfig(reg="wasserstein")
    with pytest.raises(FaceAlgebraError, match="architecture"):
        ModelConfig(arch="ladder-9")


@pytest.mark.parametrize("size", [15, 16, 28])
def test_both_decoder_layouts_draw_images_of_the_input_size(size):
    for arch in ("ladder-1", "ladder-2"):
        cfg = ModelConfig(image_size=size, channels=1, latent_dims=(2, 2, 2), base_width=4, max_width=8, arch=arch)
        with torch.no_grad():
            out = VLAE(cfg).eval().decode([torch.zeros(3, 2)] * 3)
        assert out.shape == (3, 1, size, size)


def test_ladder_2_spends_fewer_flops_than_ladder_1():
    from torch.utils.flop_counter import FlopCounterMode

    flops = {}
    for arch in ("ladder-1", "ladder-2"):
        model = VLAE(dataclasses.replace(PRESETS["faces64-small"].model, arch=arch))
        with FlopCounterMode(display=False) as counter:
            model(torch.rand(1, 3, 64, 64))
        flops[arch] = counter.get_total_flops()
    assert flops["ladder-2"] < 0.75 * flops["ladder-1"]


def test_a_model_file_from_before_the_arch_field_loads_as_ladder_1(tmp_path):
    """Files written before ModelConfig.arch existed carry no such key: they were ladder-1 models."""
    import json

    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    cfg = dataclasses.replace(PRESETS["tiny"].model, arch="ladder-1")
    path = tmp_path / "old.safetensors"
    save_model(path, VLAE(cfg), {"crop_fraction": 1.0, "size": 16, "channels": 1, "range": [0, 1]}, {})
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    config = json.loads(metadata["config"])
    del config["arch"]
    save_file(load_file(str(path)), str(path), metadata={**metadata, "config": json.dumps(config)})
    assert load_model(path).model.cfg.arch == "ladder-1"

    config["width_multiplier"] = 2  # a field from a newer version
    save_file(load_file(str(path)), str(path), metadata={**metadata, "config": json.dumps(config)})
    with pytest.raises(FaceAlgebraError, match="newer version"):
        load_model(path)


@pytest.mark.parametrize("name", ["mnist", "faces64-small"])
def test_the_flat_baseline_is_as_deep_and_as_large_as_its_ladder(name):
    """compare.py's flat MMD-VAE differs from the ladder in latent structure only: one layer of the ladder's total
    size on the deepest of as many stages, and the same parameter count to within 1%."""
    ladder, flat = PRESETS[name].model, PRESETS[f"{name}-flat"].model
    count = lambda cfg: sum(p.numel() for p in VLAE(cfg).parameters())  # noqa: E731
    assert flat.latent_dims == (sum(ladder.latent_dims),) and flat.num_stages == ladder.num_stages
    assert abs(count(flat) / count(ladder) - 1) < 0.01
    model = VLAE(flat)
    assert model.latent_stages == [ladder.num_layers - 1] and len(model.stages) == ladder.num_layers


def test_latent_layers_sit_on_the_deepest_stages_and_the_rest_only_pass_features_on():
    cfg = ModelConfig(image_size=16, channels=1, latent_dims=(2, 3), stages=4, base_width=4, max_width=8)
    model = VLAE(cfg).eval()
    with torch.no_grad():
        latents = model.encode(torch.rand(2, 1, 16, 16))
        assert [z.shape[1] for z in latents] == [2, 3]
        assert model.decode(latents).shape == (2, 1, 16, 16)
    assert model.latent_stages == [2, 3]
    with pytest.raises(FaceAlgebraError, match="stages"):
        ModelConfig(latent_dims=(2, 2, 2), stages=2)


def test_direct_heads_read_their_stage_without_convolutions_of_their_own():
    """With conv heads z1 sits one convolution from z2 in depth; direct heads leave each layer at its stage's."""
    convs = {}
    for heads in ("conv", "direct"):
        model = VLAE(dataclasses.replace(PRESETS["faces64-small"].model, heads=heads))
        convs[heads] = [sum(isinstance(m, torch.nn.Conv2d) for m in head.modules()) for head in model.heads]
    assert convs["conv"][0] > 0 and convs["direct"] == [0, 0, 0, 0]
    with pytest.raises(FaceAlgebraError, match="heads"):
        ModelConfig(heads="attention")


def test_progressive_gates_fade_the_layers_in_top_down():
    from facealgebra.train import layer_gates

    assert layer_gates(0, 3, 0) is None
    assert layer_gates(0, 3, 10) == [0.0, 0.0, 1.0]
    assert layer_gates(15, 3, 10) == [0.0, 0.5, 1.0]
    assert layer_gates(25, 3, 10) == [0.5, 1.0, 1.0]
    assert layer_gates(30, 3, 10) is None
    model = VLAE(PRESETS["tiny"].model).eval()
    x = torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        gated, _, samples = model(x, gates=[0.0, 1.0])
        assert torch.allclose(gated, model.decode([torch.zeros_like(samples[0]), samples[1]]))
        assert not torch.allclose(gated, model.decode(samples))
