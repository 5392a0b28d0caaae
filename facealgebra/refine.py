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

from typing import TYPE_CHECKING, Callable, Sequence

from facealgebra.errors import FaceAlgebraError

if TYPE_CHECKING:  # the CLI checks --refine before torch loads
    import torch

LEARNING_RATE = 0.05  # in code units: the prior's codes have norm about sqrt(d)
MAX_STEPS = 1000


def check_steps(steps: int) -> None:
    if not 0 <= steps <= MAX_STEPS:
        raise FaceAlgebraError(f"--refine must be 0 (off) to {MAX_STEPS} steps, not {steps}")


def adam(parameters: Sequence[torch.Tensor], loss: Callable[[], torch.Tensor], steps: int, rate: float,
         betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
    """`steps` Adam steps (Kingma and Ba) on `parameters` down `loss()`. Written out because torch.optim's first
    optimizer imports torch._dynamo, which cost 2 s of every edit here (the steps themselves take 0.6 s)."""
    import torch

    first = [torch.zeros_like(p) for p in parameters]
    second = [torch.zeros_like(p) for p in parameters]
    for step in range(1, steps + 1):
        grads = torch.autograd.grad(loss(), parameters, allow_unused=True)
        with torch.no_grad():
            for p, g, m, v in zip(parameters, grads, first, second):
                if g is None:
                    continue
                m.mul_(betas[0]).add_(g, alpha=1 - betas[0])
                v.mul_(betas[1]).addcmul_(g, g, value=1 - betas[1])
                denominator = (v / (1 - betas[1] ** step)).sqrt_().add_(eps)
                p.addcdiv_(m, denominator, value=-rate / (1 - betas[0] ** step))


def refined(model: torch.nn.Module, x: torch.Tensor, codes: list[torch.Tensor], steps: int) -> list[torch.Tensor]:
    """Per-layer codes after `steps` Adam steps on the L1 error between decode(codes) and x (N, C, H, W) in
    [0, 1]; the codes as given when steps is 0. The model's weights get no gradient."""
    if steps <= 0:
        return codes
    import torch

    with torch.inference_mode(False), torch.enable_grad():
        target = x.detach().clone().float()
        moving = [code.detach().clone().float().requires_grad_(True) for code in codes]
        weights = [p.requires_grad for p in model.parameters()]
        model.requires_grad_(False)
        try:
            adam(moving, lambda: (model.decode(moving).float() - target).abs().mean(dim=(1, 2, 3)).sum(), steps,
                 LEARNING_RATE)
        finally:
            for parameter, wanted in zip(model.parameters(), weights):
                parameter.requires_grad_(wanted)
        return [code.detach() for code in moving]


# ---- tuning the decoder to one face (--tune STEPS) -------------------------------------------------------------
# Pivotal tuning (Roich et al., "Pivotal Tuning for Latent-based Editing of Real Images", 2022): a code, even
# refined, is one point of the model's face space, and a real face lies off that space. So the decoder itself is
# moved, for this face only, until the face's code (the pivot) decodes to the face; an edit is then the tuned
# decoder's decode(z') - decode(z), drawn on this person's own likeness instead of a generic one.
# On the held-out CelebA photos with the bundled faces model, a face recogniser called the reconstruction the same
# person 14 % of the time untuned; after 10 steps 71 %, after 25 93 %, after 50 99 % (weights/README.md).
TUNE_DEFAULT = 25
TUNE_LEARNING_RATE = 1e-3  # Adam on the weights; 3e-3 overshoots in the first steps
MAX_TUNE_STEPS = 1000


def check_tune_steps(steps: int) -> None:
    if not 0 <= steps <= MAX_TUNE_STEPS:
        raise FaceAlgebraError(f"--tune must be 0 (off) to {MAX_TUNE_STEPS} steps, not {steps}")


def tuned(model: torch.nn.Module, x: torch.Tensor, codes: list[torch.Tensor], steps: int) -> torch.nn.Module:
    """A copy of `model` whose weights took `steps` Adam steps on the L1 error between decode(codes) and x, one
    face (1, C, H, W) in [0, 1] and its codes (1, d_l); the model itself when steps is 0. The model is unchanged."""
    if steps <= 0:
        return model
    import copy

    import torch

    with torch.inference_mode(False), torch.enable_grad():  # a copy made in inference mode could not learn
        copied = copy.deepcopy(model)
        target = x.detach().clone().float()
        pivot = [code.detach().clone().float() for code in codes]
        copied.requires_grad_(True)
        adam(list(copied.parameters()), lambda: (copied.decode(pivot).float() - target).abs().mean(), steps,
             TUNE_LEARNING_RATE)
    copied.requires_grad_(False)
    return copied.eval()


def reconstructions(model: torch.nn.Module, x: torch.Tensor, codes: list[torch.Tensor],
                    tune_steps: int) -> torch.Tensor:
    """decode(codes) of a batch, each face through the model tuned to it by `tune_steps` steps (tuned) when
    tune_steps > 0."""
    import torch

    if tune_steps <= 0:
        return model.decode(codes)
    return torch.cat([tuned(model, x[row:row + 1], [code[row:row + 1] for code in codes], tune_steps).decode(
        [code[row:row + 1] for code in codes]) for row in range(len(x))])
