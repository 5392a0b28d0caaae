"""Model and training configuration, and the named presets.

A preset fixes the network's shape (image size, channels, ladder layers, widths) and sensible training defaults.
Channels and image size are plain config fields: the same code builds a 28x28 grey MNIST model and a 64x64
colour face model.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from facealgebra.errors import FaceAlgebraError

REGULARISERS = ("mmd", "kl")
# How the decoder spends its FLOPs (facealgebra/model.py): "ladder-1" changes channels after upsampling and draws
# the image with two convolutions at full resolution; "ladder-2" changes channels before upsampling and draws the
# image at stage 1's resolution, then pixel-shuffles it up (28% fewer FLOPs on faces64). Files without the field
# were made by ladder-1, so that is the field's default; every preset uses ladder-2.
ARCHITECTURES = ("ladder-1", "ladder-2")
# How a latent head reads its stage (facealgebra/model.py): "conv" adds stride-2 convolutions of its own before the
# linear layer, so z_1 and z_2 end up only one convolution apart in depth; "direct" average-pools the stage's
# feature map and applies the linear layer, so layer l's depth is exactly its stage's. Files without the field
# were made with "conv".
HEADS = ("conv", "direct")
MAX_LAYERS = 6
# Bounds a model file's config must keep before anything is built from it: a crafted file must not make us
# allocate gigabytes (a base_width of 3000 built 8.5 GB of weights). The largest preset is far inside them.
MAX_IMAGE_SIZE = 1024
MAX_WIDTH = 4096
MAX_LATENT_DIM = 4096
INT_FIELDS = ("image_size", "channels", "base_width", "max_width", "stages")
STR_FIELDS = ("reg", "arch", "heads")


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
    heads: str = "conv"
    # Encoder (and decoder) stages. 0: one per latent layer, the ladder. More stages than latent layers put the
    # latent layers on the deepest stages only: latent_dims=(40,) with stages=4 is a flat VAE as deep as a 4-layer
    # ladder (the fair flat baseline of benchmarks/compare.py).
    stages: int = 0

    def __post_init__(self) -> None:
        check_types(self)
        object.__setattr__(self, "latent_dims", tuple(int(d) for d in self.latent_dims))
        if not 1 <= len(self.latent_dims) <= MAX_LAYERS:
            raise FaceAlgebraError(f"a model has 1 to {MAX_LAYERS} ladder layers, not {len(self.latent_dims)}")
        if any(d < 1 for d in self.latent_dims):
            raise FaceAlgebraError(f"latent sizes must be positive, got {list(self.latent_dims)}")
        if self.channels not in (1, 3):
            raise FaceAlgebraError(f"channels must be 1 (grey) or 3 (colour), not {self.channels}")
        if not 8 <= self.image_size <= MAX_IMAGE_SIZE:
            raise FaceAlgebraError(f"image size must be 8 to {MAX_IMAGE_SIZE} pixels, not {self.image_size}")
        if any(d > MAX_LATENT_DIM for d in self.latent_dims):
            raise FaceAlgebraError(f"latent sizes must be at most {MAX_LATENT_DIM}, got {list(self.latent_dims)}")
        for name in ("base_width", "max_width"):
            if not 1 <= getattr(self, name) <= MAX_WIDTH:
                raise FaceAlgebraError(f"{name} must be 1 to {MAX_WIDTH}, not {getattr(self, name)}")
        if not math.isfinite(self.beta) or self.beta < 0:
            raise FaceAlgebraError(f"beta must be a finite number >= 0, not {self.beta}")
        if self.stages < 0:
            raise FaceAlgebraError(f"stages must be 0 or more, not {self.stages}")
        if self.reg not in REGULARISERS:
            raise FaceAlgebraError(f"unknown regulariser {self.reg!r}: choose one of {', '.join(REGULARISERS)}")
        if self.heads not in HEADS:
            raise FaceAlgebraError(f"unknown latent heads {self.heads!r}: choose one of {', '.join(HEADS)}")
        if self.stages and not len(self.latent_dims) <= self.stages <= MAX_LAYERS:
            raise FaceAlgebraError(f"a model with {len(self.latent_dims)} latent layers has "
                                   f"{len(self.latent_dims)} to {MAX_LAYERS} stages, not {self.stages}")
        if self.arch not in ARCHITECTURES:
            raise FaceAlgebraError(f"unknown architecture {self.arch!r}: this facealgebra builds "
                                   f"{', '.join(ARCHITECTURES)} (a newer version may have made the model)")

    @property
    def num_layers(self) -> int:
        return len(self.latent_dims)

    @property
    def num_stages(self) -> int:
        return self.stages or self.num_layers

    def stage_width(self, stage: int) -> int:
        """Conv channels of ladder stage `stage` (1-based)."""
        return min(self.base_width * 2 ** (stage - 1), self.max_width)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        try:
            fields = json.loads(text)
        except (TypeError, ValueError):
            raise FaceAlgebraError("the model's config is not JSON") from None
        if not isinstance(fields, dict):
            raise FaceAlgebraError("the model's config is not a JSON object")
        unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise FaceAlgebraError(f"the model's config has fields this facealgebra does not know "
                                   f"({', '.join(unknown)}): a newer version made it")
        if not isinstance(fields.get("latent_dims", []), list):
            raise FaceAlgebraError("the model's config: latent_dims must be a list of whole numbers")
        if "latent_dims" in fields:
            fields["latent_dims"] = tuple(fields["latent_dims"])
        return cls(**fields)


def check_types(cfg: ModelConfig) -> None:
    """Whole numbers where the network needs them, names where it names things: a config read from a file may
    hold anything JSON can (bool is an int to Python, and not a width)."""
    def whole(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    for name in INT_FIELDS:
        if not whole(getattr(cfg, name)):
            raise FaceAlgebraError(f"{name} must be a whole number, not {getattr(cfg, name)!r}")
    for name in STR_FIELDS:
        if not isinstance(getattr(cfg, name), str):
            raise FaceAlgebraError(f"{name} must be a name, not {getattr(cfg, name)!r}")
    if not isinstance(cfg.beta, (int, float)) or isinstance(cfg.beta, bool):
        raise FaceAlgebraError(f"beta must be a number, not {cfg.beta!r}")
    if not isinstance(cfg.latent_dims, (tuple, list)) or not all(whole(d) for d in cfg.latent_dims):
        raise FaceAlgebraError(f"latent_dims must be a list of whole numbers, not {cfg.latent_dims!r}")


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
    progressive: int = 0  # proVLAE's schedule: steps the top layer trains alone, then steps each lower layer fades in
    perceptual: float = 0.0  # weight of the perceptual loss on a face network's features (perceptual.py); 0 is off


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
    "faces64-wide": Preset(
        ModelConfig(image_size=64, channels=3, latent_dims=(32, 32, 32, 32), base_width=32, max_width=128,
                    arch="ladder-2"),
        TrainConfig(steps=20_000, batch_size=32, lr=1e-3),
        "64x64, 4 layers x 32 dims: 40 numbers cannot hold a person (weights/README.md); still CPU-sized",
    ),
    "faces64-large": Preset(
        ModelConfig(image_size=64, channels=3, latent_dims=(32, 32, 32, 32), base_width=64, max_width=256,
                    arch="ladder-2"),
        TrainConfig(steps=20_000, batch_size=128, lr=1e-3),
        "64x64, 4 layers x 32 dims, convolutions twice as wide as faces64-wide (3x the parameters): for a GPU",
    ),
    "tiny": Preset(
        ModelConfig(image_size=16, channels=1, latent_dims=(2, 2), base_width=4, max_width=8, arch="ladder-2"),
        TrainConfig(steps=200, batch_size=16, lr=2e-3, sample_every=100, save_every=100),
        "16x16, 2 layers x 2 dims, for tests (a higher learning rate, so a few hundred steps show learning)",
    ),
}


def flat_twin(name: str, base_width: int, max_width: int) -> Preset:
    """The fair flat MMD-VAE baseline of a ladder preset: one latent layer holding the ladder's total latent size,
    read off (and injected at) the deepest of as many stages as the ladder has, so it is as deep; the widths are
    chosen so that it has the ladder's parameter count to within 1% (tests/test_model.py checks it)."""
    ladder = PRESETS[name]
    flat = dataclasses.replace(ladder.model, latent_dims=(sum(ladder.model.latent_dims),),
                               stages=ladder.model.num_layers, base_width=base_width, max_width=max_width)
    return Preset(flat, ladder.train, f"{name}'s flat twin: one layer of {flat.latent_dims[0]} dims on the deepest "
                  f"of {flat.stages} stages, as many parameters (the baseline of benchmarks/compare.py)")


PRESETS.update({"mnist-flat": flat_twin("mnist", 25, 100), "faces64-small-flat": flat_twin("faces64-small", 28, 112)})


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise FaceAlgebraError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}") from None
