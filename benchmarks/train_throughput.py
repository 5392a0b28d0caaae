"""Images per second for every preset on one device: a full training step (forward, loss, backward, Adam) and
encoding alone, with the FLOPs of a training step per image (torch.utils.flop_counter) and the share of the
machine's peak they reach: on a CPU, the float32 matrix-multiply rate measured here at the start of the run; on a
GPU, the bf16 dense peak of its data sheet where known (H100/H200: 989 TFLOP/s), else a measured bf16 matmul
rate (MFU). Figures from one run on a shared machine; compare them with each other, not across runs.

    python benchmarks/train_throughput.py [--device auto|cpu|cuda] [--seconds 5] [--presets mnist,tiny]
        [--variants nchw,channels-last,compiled] [--arch ladder-1]

Each variant is measured for every preset: `nchw` the default memory layout, `channels-last` the layout that
`facealgebra train` uses, `compiled` channels-last under torch.compile (inductor; compiling takes a while and
is not counted). `--arch` builds every preset with that decoder layout instead of its own (see model.py).
    python benchmarks/train_throughput.py --processes 1,2 [--device cpu|cuda] [--presets tiny] [--steps 200]

With --processes, `facealgebra train` itself runs under torchrun once per process count, with the preset's batch
in every process (so the global batch grows with the count), and the images/s of the global batch is read from
its metrics.jsonl between the first and the last logged step (start-up and the final checkpoint left out).
Each process takes one GPU on CUDA and one core (OMP_NUM_THREADS=1, torchrun's own default) on a CPU; scaling
is images/s over that of one process.
"""

from __future__ import annotations

import argparse
import dataclasses
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
from facealgebra.config import ARCHITECTURES, PRESETS  # noqa: E402
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


DATASHEET_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense, without sparsity


def matmul_rate(device: torch.device, dtype: torch.dtype, seconds: float = 2.0) -> float:
    """FLOP/s of a large square matrix multiply, the most a convolution lowered to one can reach."""
    side = 2048 if device.type == "cpu" else 8192
    a, b = (torch.randn(side, side, device=device, dtype=dtype) for _ in range(2))
    rate = images_per_second(lambda: a @ b, 1, seconds, device)  # multiplies per second
    return rate * 2 * side ** 3


def peak_flops(device: torch.device) -> tuple[float, str]:
    """(FLOP/s, what it is): the data sheet's bf16 dense peak on a known GPU, else a measured matmul rate."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for model, tflops in DATASHEET_BF16_TFLOPS.items():
            if model in name:
                return tflops * 1e12, f"{name}: data-sheet bf16 dense peak"
        return matmul_rate(device, torch.bfloat16), f"{name}: measured bf16 matmul rate"
    return matmul_rate(device, torch.float32), "measured float32 matmul (sgemm) rate"


def step_flops(step) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


VARIANTS = ("nchw", "channels-last", "compiled")


def measure(name: str, device: torch.device, seconds: float, variant: str = "channels-last",
            arch: str | None = None) -> tuple[float, float, int, float]:
    preset = PRESETS[name]
    cfg, batch_size = preset.model, preset.train.batch_size
    if arch:
        cfg = dataclasses.replace(cfg, arch=arch)
    layout = torch.contiguous_format if variant == "nchw" else torch.channels_last
    model = VLAE(cfg).to(device, memory_format=layout)
    forward = torch.compile(model) if variant == "compiled" else model
    optimizer = torch.optim.Adam(model.parameters(), lr=preset.train.lr)
    x = torch.rand(batch_size, cfg.channels, cfg.image_size, cfg.image_size, device=device)
    x = x.contiguous(memory_format=layout)
    amp = device.type == "cuda"
    values = cfg.channels * cfg.image_size ** 2

    def train_step(network: torch.nn.Module = forward) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            x_hat, params, samples = network(x)
        loss = reconstruction(x_hat, x) + torch.stack(layer_regularisers(cfg.reg, params, samples, values)).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def encode_step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            model.encode(x)

    flops_per_image = step_flops(lambda: train_step(model)) / batch_size  # counted eagerly: compiled kernels hide
    if variant == "compiled":
        train_step()  # compiles: not counted
    train = images_per_second(train_step, batch_size, seconds, device)
    model.eval()
    encode = images_per_second(encode_step, batch_size, seconds, device)
    return train, encode, batch_size, flops_per_image


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
    parser.add_argument("--variants", default="channels-last", help=f"any of {','.join(VARIANTS)}")
    parser.add_argument("--arch", choices=ARCHITECTURES, help="build every preset with this decoder layout")
    args = parser.parse_args()
    device = select_device(args.device)
    if args.processes:
        scaling(args.presets.split(","), [int(count) for count in args.processes.split(",")], device, args.steps)
        return
    peak, peak_kind = peak_flops(device)
    print(f"device: {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads; peak "
          f"{peak / 1e9:,.1f} GFLOP/s ({peak_kind})")
    print(f"{'preset':<14} {'variant':<14} {'batch':>5} {'train img/s':>12} {'encode img/s':>13} {'GFLOP/img':>10} "
          f"{'of peak':>8}")
    for name in args.presets.split(","):
        for variant in args.variants.split(","):
            train, encode, batch_size, flops = measure(name, device, args.seconds, variant, args.arch)
            print(f"{name:<14} {variant:<14} {batch_size:>5} {train:>12.1f} {encode:>13.1f} {flops / 1e9:>10.3f} "
                  f"{flops * train / peak:>8.1%}", flush=True)


if __name__ == "__main__":
    main()
