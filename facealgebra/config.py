"""Model and training configuration, and the named presets.

A preset fixes the network's shape (image size, channels, ladder layers, widths) and sensible training defaults.
Channels and image size are plain config fields: the same code builds a 28x28 grey MNIST model and a 64x64
colour face model.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from facealgebra.errors import FaceAlgebraError

REGULARISERS = ("mmd", "kl")
# How the decoder spends its FLOPs (facealgebra/model.py): "ladder-1" changes channels after upsampling and draws
# the image with two convolutions at full resolution; "ladder-2" changes channels before upsampling and draws the
# image at stage 1's resolution, then pixel-shuffles it up (28% fewer FLOPs on faces64). Files without the field
# were made by ladder-1, so that is the field's default; every preset uses ladder-2.
ARCHITECTURES = ("ladder-1", "ladder-2")
MAX_LAYERS = 6


@dataclass(frozen=True)
class ModelConfig:
    image_size: int = 64
    channels: int = 3
    latent_dims: tuple[int, ...] = (10, 10, 10, 10)  # one entry per ladder layer, z_1 (shallow) ... z_L (deep)
    base_width: int = 32  # conv channels of ladder stage 1; each deeper stage doubles, up to max_width
    max_width: int = 128
    reg: str = "mmd"  # "mmd" (MMD-VLAE) or "kl" (the original KL-VLAE)
    beta: float = 1.0  # weight of each layer's regulariser against the reconstruction term
    arch: str = "ladder-1"

    def __post_init__(self) -> None:
        object.__setattr__(self, "latent_dims", tuple(int(d) for d in self.latent_dims))
        if not 1 <= len(self.latent_dims) <= MAX_LAYERS:
            raise FaceAlgebraError(f"a model has 1 to {MAX_LAYERS} ladder layers, not {len(self.latent_dims)}")
        if any(d < 1 for d in self.latent_dims):
            raise FaceAlgebraError(f"latent sizes must be positive, got {list(self.latent_dims)}")
        if self.channels not in (1, 3):
            raise FaceAlgebraError(f"channels must be 1 (grey) or 3 (colour), not {self.channels}")
        if self.image_size < 8:
            raise FaceAlgebraError(f"image size must be at least 8 pixels, not {self.image_size}")
        if self.reg not in REGULARISERS:
            raise FaceAlgebraError(f"unknown regulariser {self.reg!r}: choose one of {', '.join(REGULARISERS)}")
        if self.arch not in ARCHITECTURES:
            raise FaceAlgebraError(f"unknown architecture {self.arch!r}: this facealgebra builds "
                                   f"{', '.join(ARCHITECTURES)} (a newer version may have made the model)")

    @property
    def num_layers(self) -> int:
        return len(self.latent_dims)

    def stage_width(self, layer: int) -> int:
        """Conv channels of ladder stage `layer` (1-based)."""
        return min(self.base_width * 2 ** (layer - 1), self.max_width)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        fields = json.loads(text)
        unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise FaceAlgebraError(f"the model's config has fields this facealgebra does not know "
                                   f"({', '.join(unknown)}): a newer version made it")
        fields["latent_dims"] = tuple(fields["latent_dims"])
        return cls(**fields)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000
    batch_size: int = 100
    lr: float = 2e-4  # Adam, as in the original VLAE code
    seed: int = 0
    sample_every: int = 500
    save_every: int = 1000
    log_every: int = 10
    augment: bool = False  # random horizontal flips and small shifts, for small data sets such as ORL


@dataclass(frozen=True)
class Preset:
    model: ModelConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    about: str = ""


PRESETS: dict[str, Preset] = {
    "mnist": Preset(
        ModelConfig(image_size=28, channels=1, latent_dims=(2, 2, 2), base_width=24, max_width=96, arch="ladder-2"),
        TrainConfig(steps=5000, batch_size=100),
        "28x28 grey, 3 layers x 2 dims, as in the paper's MNIST figure",
    ),
    "faces64": Preset(
        ModelConfig(image_size=64, channels=3, latent_dims=(10, 10, 10, 10), base_width=64, max_width=512,
                    arch="ladder-2"),
        TrainConfig(steps=100_000, batch_size=100),
        "64x64 colour, 4 layers x 10 dims, CelebA-scale widths; meant for a GPU",
    ),
    "faces64-small": Preset(
        ModelConfig(image_size=64, channels=3, latent_dims=(10, 10, 10, 10), base_width=24, max_width=96,
                    arch="ladder-2"),
        TrainConfig(steps=3000, batch_size=32, lr=1e-3),  # 2.8x sooner to quality than 64 at 2e-4 (README)
        "64x64, 4 layers x 10 dims, narrow enough to train on a 2-core CPU",
    ),
    "toyfaces32": Preset(
        ModelConfig(image_size=32, channels=3, latent_dims=(4, 4, 4), base_width=16, max_width=64, arch="ladder-2"),
        TrainConfig(steps=3000, batch_size=64),
        "32x32 colour, 3 layers x 4 dims, for toyfaces on a 2-core CPU",
    ),
    "tiny": Preset(
        ModelConfig(image_size=16, channels=1, latent_dims=(2, 2), base_width=4, max_width=8, arch="ladder-2"),
        TrainConfig(steps=200, batch_size=16, lr=2e-3, sample_every=100, save_every=100),
        "16x16, 2 layers x 2 dims, for tests (a higher learning rate, so a few hundred steps show learning)",
    ),
}


def flat_twin(name: str) -> Preset:
    """The flat MMD-VAE baseline of a ladder preset: one layer holding the same total latent size."""
    ladder = PRESETS[name]
    flat = dataclasses.replace(ladder.model, latent_dims=(sum(ladder.model.latent_dims),))
    return Preset(flat, ladder.train, f"{name}'s flat twin: one layer of {flat.latent_dims[0]} dims "
                  "(the flat MMD-VAE baseline of benchmarks/compare.py)")


PRESETS.update({f"{name}-flat": flat_twin(name) for name in ("mnist", "toyfaces32")})


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise FaceAlgebraError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}") from None
