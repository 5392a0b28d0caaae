"""What each layer of a face model holds, measured without labels: how much of the variance of the held-out photos'
mean skin colour, background colour and brightness a linear regression from one layer's code explains.

    python examples/faces_layers.py --model faces [--json docs/eval/faces-layers.json]

Photos are the real CelebA photos of `celeba-sample`, aligned onto the model's face template as `encode` aligns
them: the regressions are fitted on the 897 training photos and scored (R^2) on the held-out 000900-000999. The
three measures are read from the aligned model input: skin, the mean RGB of two cheek patches below the eyes;
background, the mean RGB of the left and right edges of the upper half (the places least often face or hair);
brightness, the mean grey level of the whole picture. R^2 of a colour sums the squared errors of its three
channels over their summed variance. `all` regresses on the four layers together.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from facealgebra.checkpoint import load_model
from facealgebra.data import load_data
from facealgebra.evaluate import encode_images
from facealgebra.fileio import write_bytes_atomic
from facealgebra.progress import CountProgress

RIDGE = 1e-3  # a whisper of ridge, so a layer with an unused dimension still fits


def measures(images: np.ndarray) -> dict[str, np.ndarray]:
    """(N, 3) skin and background colours and (N, 1) brightness, in [0, 1], from uint8 (N, 3, S, S) aligned faces,
    where the template puts the eyes at (S 0.34, S 0.42) and (S 0.66, S 0.42)."""
    pixels = images.astype(np.float64) / 255.0
    side = images.shape[-1]

    def patch(x: float, y: float, half: float) -> np.ndarray:
        x0, x1, y0, y1 = (round(v * side) for v in (x - half, x + half, y - half, y + half))
        return pixels[:, :, y0:y1, x0:x1].mean(axis=(2, 3))

    skin = (patch(0.34, 0.60, 0.05) + patch(0.66, 0.60, 0.05)) / 2
    edge = max(1, round(0.06 * side))
    upper = side // 2
    background = (pixels[:, :, :upper, :edge].mean(axis=(2, 3)) + pixels[:, :, :upper, -edge:].mean(axis=(2, 3))) / 2
    brightness = (pixels * np.array([0.299, 0.587, 0.114])[None, :, None, None]).sum(axis=1).mean(axis=(1, 2))
    return {"skin colour": skin, "background colour": background, "brightness": brightness[:, None]}


def held_out_r2(train_codes: np.ndarray, train_target: np.ndarray, test_codes: np.ndarray,
                test_target: np.ndarray) -> float:
    def design(codes: np.ndarray) -> np.ndarray:
        return np.hstack([codes, np.ones((len(codes), 1))])

    x = design(train_codes)
    weights = np.linalg.solve(x.T @ x + RIDGE * np.eye(x.shape[1]), x.T @ train_target)
    residual = test_target - design(test_codes) @ weights
    return float(1.0 - (residual ** 2).sum() / ((test_target - test_target.mean(axis=0)) ** 2).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="faces")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    loaded = load_model(args.model, "cpu")
    cfg = loaded.model.cfg
    sets = {split: load_data(f"celeba-sample?split={split}", cfg.image_size, cfg.channels).images
            for split in ("train", "test")}
    codes = {split: encode_images(loaded, images, "cpu", CountProgress(split, 0))[0] for split, images in sets.items()}
    targets = {split: measures(images) for split, images in sets.items()}
    layers = [f"z{k + 1}" for k in range(len(cfg.latent_dims))]
    table: dict[str, dict[str, float]] = {}
    for name in targets["test"]:
        row = {}
        for k, layer in enumerate(layers):
            row[layer] = held_out_r2(codes["train"][k], targets["train"][name], codes["test"][k], targets["test"][name])
        row["all"] = held_out_r2(np.hstack(codes["train"]), targets["train"][name], np.hstack(codes["test"]),
                                 targets["test"][name])
        table[name] = row
    print("| held-out R^2 | " + " | ".join(layers) + " | all |")
    print("| --- |" + " --- |" * (len(layers) + 1))
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(f"{value:.2f}" for value in row.values()) + " |")
    if args.json:
        write_bytes_atomic(args.json, (json.dumps({"model": args.model, "r2": table}, indent=2) + "\n").encode())


if __name__ == "__main__":
    main()
