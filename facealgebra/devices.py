"""`--device auto|cpu|cuda|cuda:N|mps`: auto picks cuda, then mps, then cpu."""

from __future__ import annotations

import torch

from facealgebra.errors import FaceAlgebraError


def select_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise FaceAlgebraError(f"--device {name!r}: expected auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FaceAlgebraError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise FaceAlgebraError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise FaceAlgebraError(f"--device {name}: MPS is not available on this machine; use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise FaceAlgebraError(f"--device {name!r}: expected auto, cpu, cuda, cuda:N or mps")
    return device
