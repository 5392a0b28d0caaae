"""Data throughput: CelebA-layout JPEGs through the uint8 cache, against faces64-small training speed.

Prints images/s for (1) the first pass, which decodes, crops and resizes every JPEG into the cache, (2) a later
load, which finds the cache, and (3) cached batch loading: random batches of 64 as uint8, converted to float as
training does. Then (4) the training throughput of `faces64-small` on this machine, for the issue's goal
(cached loading at least 5x training). Run: python benchmarks/data_throughput.py [--images 3000] [--train-steps 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from celeba_fixture import write_celeba  # noqa: E402  (the tests' CelebA builder: one copy of the real formats)

from facealgebra.data import load_data  # noqa: E402
from facealgebra.train import TrainJob, batch_indices, run_training, to_float  # noqa: E402

BATCH = 64


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} images/s ({count:,} in {seconds:.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--batches", type=int, default=500)
    parser.add_argument("--train-steps", type=int, default=10, help="0 skips the training measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["FACEALGEBRA_CACHE"] = str(Path(scratch) / "cache")
        spec = f"celeba:{write_celeba(Path(scratch) / 'celeba', 'official', args.images)}?split=all"

        started = time.perf_counter()
        load_data(spec, image_size=64)
        print(f"first pass (decode + build cache): {rate(args.images, time.perf_counter() - started)}")
        started = time.perf_counter()
        images = torch.from_numpy(load_data(spec, image_size=64).images)
        print(f"cached load (open the cache):       {rate(args.images, time.perf_counter() - started)}")

        device = torch.device("cpu")
        started = time.perf_counter()
        for step in range(args.batches):
            to_float(images[batch_indices(len(images), BATCH, 0, step)], device)
        print(f"cached batches of {BATCH} (uint8 -> float): {rate(args.batches * BATCH, time.perf_counter() - started)}")

        if args.train_steps:
            job = TrainJob(data=spec, preset="faces64-small", out=Path(scratch) / "run", steps=args.train_steps,
                           sample_every=10**9, save_every=10**9, device="cpu")
            record = run_training(job, device, log=lambda message: None)
            print(f"faces64-small training on cpu: {record['images_per_s']:,.0f} images/s "
                  f"(last {min(args.train_steps, 10)} of {args.train_steps} steps, batch {BATCH})")


if __name__ == "__main__":
    main()
