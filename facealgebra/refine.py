"""Refined codes (`--refine STEPS`): start from the encoder's code of a face and move it, by gradient steps through
the frozen decoder, until the decoding matches the face more closely.

The encoder is amortised: one pass guesses the code of any face, and misses what is particular to this one. A few
dozen Adam steps on the L1 error of the decoding (the training loss) close part of that gap. On the held-out
CelebA photos with the bundled faces model, 50 steps took a face recogniser's same-person rate of the
reconstructions from 14 % to 31 % (weights/README.md); 150 steps gained nothing more. Each image's
code moves on its own error alone (the errors are summed, not averaged, so a face's result does not depend on the
batch it came in). Nothing else changes: the weights stay as they are, and a refined code is an ordinary code
(edits, .npz files and catalogue directions all apply to it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from facealgebra.errors import FaceAlgebraError

if TYPE_CHECKING:  # the CLI checks --refine before torch loads
    import torch

LEARNING_RATE = 0.05  # in code units: the prior's codes have norm about sqrt(d)
MAX_STEPS = 1000


def check_steps(steps: int) -> None:
    if not 0 <= steps <= MAX_STEPS:
        raise FaceAlgebraError(f"--refine must be 0 (off) to {MAX_STEPS} steps, not {steps}")


def refined(model: torch.nn.Module, x: torch.Tensor, codes: list[torch.Tensor], steps: int) -> list[torch.Tensor]:
    """Per-layer codes after `steps` Adam steps on the L1 error between decode(codes) and x (N, C, H, W) in
    [0, 1]; the codes as given when steps is 0. The model's weights get no gradient."""
    if steps <= 0:
        return codes
    import torch

    with torch.inference_mode(False), torch.enable_grad():
        target = x.detach().clone().float()
        moving = [code.detach().clone().float().requires_grad_(True) for code in codes]
        optimizer = torch.optim.Adam(moving, lr=LEARNING_RATE)
        weights = [p.requires_grad for p in model.parameters()]
        model.requires_grad_(False)
        try:
            for _ in range(steps):
                error = (model.decode(moving).float() - target).abs().mean(dim=(1, 2, 3)).sum()
                optimizer.zero_grad(set_to_none=True)
                error.backward()
                optimizer.step()
        finally:
            for parameter, wanted in zip(model.parameters(), weights):
                parameter.requires_grad_(wanted)
        return [code.detach() for code in moving]
