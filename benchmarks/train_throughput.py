"""Images per second for every preset on one device: a full training step (forward, loss, backward, Adam) and
encoding alone. Figures from one run on a shared machine; compare them with each other, not across runs.

    python benchmarks/train_throughput.py [--device auto|cpu|cuda] [--seconds 5] [--presets mnist,tiny]
"""

from __future__ import annotations

import argparse
import time

import torch

from facealgebra.config import PRESETS
from facealgebra.devices import select_device
from facealgebra.losses import layer_regularisers, reconstruction
from facealgebra.model import VLAE


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--presets", default=",".join(PRESETS))
    args = parser.parse_args()
    device = select_device(args.device)
    print(f"device: {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print(f"{'preset':<14} {'batch':>5} {'train img/s':>12} {'encode img/s':>13}")
    for name in args.presets.split(","):
        train, encode, batch_size = measure(name, device, args.seconds)
        print(f"{name:<14} {batch_size:>5} {train:>12.1f} {encode:>13.1f}")


if __name__ == "__main__":
    main()
