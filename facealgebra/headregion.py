"""The head and the hair in a face aligned onto the shared face template: which pixels of the model's frame are
face, hair, ears, hat or neck rather than background or clothes, and which of them are hair. A photo edit lands in
the head (photoedit.blend_mask), so an edit reaches the hair without spilling into the background; an edit of the
hair's colour lands in the hair alone, so the face keeps its skin and its light.

A small U-Net (HeadNet, 0.2 M weights) reads the aligned face at 64x64 and gives each pixel the probability that it
belongs to the head, and that it is hair (CHANNELS). It was distilled from the BiSeNet face parser of the judges
extra (examples/train_head_region.py: the parser labels generated faces and CelebA training photos; this net learns
its head/not-head split and its hair class), so editing needs neither the parser nor the judges extra: the weights
ship in weights/parts/head.safetensors (float16).
It applies to models whose photos are aligned onto the shared template (data/stylegan.FACE_TEMPLATE) in colour;
for any other model `head_and_hair` returns None and the edit keeps the fixed face-oval mask.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facealgebra.errors import FaceAlgebraError
from facealgebra.modelfiles import BUNDLED_DIRS

HEAD_FORMAT = "facealgebra-head/2"
CHANNELS = ("head", "hair")  # HeadNet's maps, in order
SIDE = 64  # the net reads and writes the template's frame at this size
WIDTHS = (16, 32, 64, 64)
HOLE = 0.9  # below this, a pixel enclosed by the head is a hole in it (see filled)


def double_conv(channels_in: int, channels_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(channels_out, channels_out, 3, padding=1), nn.ReLU(inplace=True))


class HeadNet(nn.Module):
    """U-Net (Ronneberger et al. 2015) at four scales: 64, 32, 16 and 8 pixels; a logit a pixel for each of
    CHANNELS."""

    def __init__(self, widths: tuple[int, ...] = WIDTHS):
        super().__init__()
        self.down = nn.ModuleList(double_conv(a, b) for a, b in zip((3, *widths[:-1]), widths))
        self.up = nn.ModuleList(double_conv(widths[i] + widths[i + 1], widths[i]) for i in range(len(widths) - 1))
        self.out = nn.Conv2d(widths[0], len(CHANNELS), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 64, 64) in [0, 1] -> (N, len(CHANNELS), 64, 64) logits."""
        skips = []
        for index, block in enumerate(self.down):
            x = block(x if index == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for block in reversed(self.up):
            x = block(torch.cat([skips.pop(), F.interpolate(x, scale_factor=2.0, mode="nearest")], dim=1))
        return self.out(x)


def head_file() -> Path | None:
    """The bundled weights (inside the wheel, or in the checkout's weights/parts), or None."""
    for folder in BUNDLED_DIRS:
        path = folder / "parts" / "head.safetensors"
        if path.is_file():
            return path
    return None


@lru_cache(maxsize=1)
def load_head_net() -> HeadNet | None:
    """The bundled HeadNet in float32 on the CPU, or None when its file is absent."""
    from safetensors import safe_open

    path = head_file()
    if path is None:
        return None
    try:
        with safe_open(str(path), framework="pt") as file:
            if (file.metadata() or {}).get("format") != HEAD_FORMAT:
                raise FaceAlgebraError(f"{path}: not a head-region net ({HEAD_FORMAT})")
            state = {name: file.get_tensor(name).float() for name in file.keys()}
        net = HeadNet()
        net.load_state_dict(state)
    except (OSError, RuntimeError, ValueError) as exc:
        raise FaceAlgebraError(f"{path}: cannot read the head-region net ({exc}); reinstall facealgebra") from None
    return net.eval()


def applies(recipe: dict) -> bool:
    """Whether a model's photos are aligned onto the shared template in colour (what HeadNet was trained on)."""
    from facealgebra.data.stylegan import template_record

    return recipe.get("channels") == 3 and recipe.get("template") == template_record() and \
        recipe.get("crop_fraction", 1.0) == 1.0


@torch.inference_mode()
def head_and_hair(recipe: dict, model_input: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Two float32 (S, S) maps in [0, 1]: the head's probability at each pixel of the model input (C, S, S; floats
    in [0, 1] or uint8), holes filled, and the hair's; or None where HeadNet does not apply (see the module
    docstring) or is not installed."""
    if not applies(recipe):
        return None
    net = load_head_net()
    if net is None:
        return None
    x = torch.from_numpy(np.ascontiguousarray(model_input)).float()[None]
    if model_input.dtype == np.uint8:
        x = x / 255.0
    size = x.shape[-1]
    if size != SIDE:
        x = F.interpolate(x, size=(SIDE, SIDE), mode="bilinear", antialias=True, align_corners=False)
    probability = torch.sigmoid(net(x))
    if size != SIDE:
        probability = F.interpolate(probability, size=(size, size), mode="bilinear", align_corners=False)
    head, hair = probability[0].numpy().astype(np.float32)
    return filled(head), hair


def filled(probability: np.ndarray) -> np.ndarray:
    """The head's probability with its holes filled: a pixel under HOLE that no path of such pixels links to the
    frame's border lies within the head (a nose or a hand that the parser, and so the net, sometimes calls
    background) and becomes 1."""
    outside = probability < HOLE
    reached = np.zeros_like(outside)
    reached[[0, -1], :], reached[:, [0, -1]] = outside[[0, -1], :], outside[:, [0, -1]]
    while True:
        grown = reached.copy()
        grown[1:] |= reached[:-1]
        grown[:-1] |= reached[1:]
        grown[:, 1:] |= reached[:, :-1]
        grown[:, :-1] |= reached[:, 1:]
        grown &= outside
        if (grown == reached).all():
            break
        reached = grown
    return np.where(outside & ~reached, np.float32(1.0), probability)
