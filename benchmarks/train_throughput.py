"""Images per second for every preset on one device: a full training step (forward, loss, backward, Adam) and
encoding alone. Figures from one run on a shared machine; compare them with each other, not across runs.

    python benchmarks/train_throughput.py [--device auto|cpu|cuda] [--seconds 5] [--presets mnist,tiny]
    python benchmarks/train_throughput.py --processes 1,2 [--device cpu|cuda] [--presets tiny] [--steps 200]

With --processes, `facealgebra train` itself runs under torchrun once per process count, with the preset's batch
in every process (so the global batch grows with the count), and the images/s of the global batch is read from
its metrics.jsonl between the first and the last logged step (start-up and the final checkpoint left out).
Each process takes one GPU on CUDA and one core (OMP_NUM_THREADS=1, torchrun's own default) on a CPU; scaling
is images/s over that of one process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from torchrun_launch import torchrun_command  # noqa: E402  (the tests' launcher: one copy of the command line)

from facealgebra.checkpoint import load_model  # noqa: E402
from facealgebra.config import PRESETS  # noqa: E402
from facealgebra.devices import select_device  # noqa: E402
from facealgebra.losses import layer_regularisers, reconstruction  # noqa: E402
from facealgebra.model import VLAE  # noqa: E402


def images_per_second(step, batch_size: int, seconds: float, device: torch.device) -> float:
    step()  # warm-up: allocations, cuDNN autotuning
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        count += 1
    sync()
    return count * batch_size / (time.perf_counter() - started)


def measure(name: str, device: torch.device, seconds: float) -> tuple[float, float, int]:
    preset = PRESETS[name]
    cfg, batch_size = preset.model, preset.train.batch_size
    model = VLAE(cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=preset.train.lr)
    x = torch.rand(batch_size, cfg.channels, cfg.image_size, cfg.image_size, device=device)
    amp = device.type == "cuda"
    values = cfg.channels * cfg.image_size ** 2

    def train_step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            x_hat, params, samples = model(x)
        loss = reconstruction(x_hat, x) + torch.stack(layer_regularisers(cfg.reg, params, samples, values)).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def encode_step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            model.encode(x)

    train = images_per_second(train_step, batch_size, seconds, device)
    model.eval()
    encode = images_per_second(encode_step, batch_size, seconds, device)
    return train, encode, batch_size


def distributed_images_per_second(name: str, processes: int, device: torch.device, steps: int) -> tuple[float, int]:
    """(images/s, global batch) of `facealgebra train` on `processes` torchrun processes."""
    threads = {"OMP_NUM_THREADS": "1"} if device.type == "cpu" else {}
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "run"
        command = torchrun_command(processes, "train", "--data", "synthetic:1024", "--preset", name, "--steps", steps,
                                   "--save-every", steps, "--sample-every", steps, "--out", out,
                                   "--device", device.type)
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, **threads})
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        global_batch = load_model(out).training["batch_size"]
    first, last = records[0], records[-1]
    return (last["step"] - first["step"]) * global_batch / (last["wall_s"] - first["wall_s"]), global_batch


def scaling(names: list[str], counts: list[int], device: torch.device, steps: int) -> None:
    print(f"device: {device.type}, torch {torch.__version__}, {len(os.sched_getaffinity(0))} CPU cores, "
          f"{torch.cuda.device_count() if device.type == 'cuda' else 0} GPUs; {steps} steps per run")
    print(f"{'preset':<14} {'processes':>9} {'global batch':>12} {'train img/s':>12} {'scaling':>8}")
    for name in names:
        baseline = None
        for count in counts:
            rate, global_batch = distributed_images_per_second(name, count, device, steps)
            baseline = baseline or rate
            print(f"{name:<14} {count:>9} {global_batch:>12} {rate:>12.1f} {rate / baseline:>7.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--processes", help="e.g. 1,2: train under torchrun with each count of processes")
    parser.add_argument("--steps", type=int, default=200, help="training steps per run, with --processes")
    args = parser.parse_args()
    device = select_device(args.device)
    if args.processes:
        scaling(args.presets.split(","), [int(count) for count in args.processes.split(",")], device, args.steps)
        return
    print(f"device: {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print(f"{'preset':<14} {'batch':>5} {'train img/s':>12} {'encode img/s':>13}")
    for name in args.presets.split(","):
        train, encode, batch_size = measure(name, device, args.seconds)
        print(f"{name:<14} {batch_size:>5} {train:>12.1f} {encode:>13.1f}")


if __name__ == "__main__":
    main()
