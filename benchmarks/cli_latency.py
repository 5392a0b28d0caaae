"""Cold wall time of the editing CLI, as ratios to a bare `python -c "import torch"` measured in the same run.

    python benchmarks/cli_latency.py [--model PATH] [--repeats 5] [--images 256]

Without --model it saves an untrained faces64-small model with a landmark template (the speed does not depend
on training). Prints the median times, `arith a - b + c` on 3 photos / import torch (the goal is <= 1.3), the
same with face alignment on 3 portraits (when the 'align' extra is installed and the model has a template), the
time of `--help` (goal under 0.5 s) and the images/s that `encode` of a folder reports. The portraits are
scikit-image's astronaut (NASA, public domain) at three sizes.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facealgebra.align import template_record
from facealgebra.data import packaged_file
from facealgebra.retinaface import installed as align_installed

# where ORL's photos have their landmarks (92x112 frame), to give the untrained model a template
ORL_LANDMARKS = np.array([[29.0, 52.7], [62.7, 52.8], [45.9, 71.0], [31.6, 85.0], [59.7, 85.1]])


def wall_time(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr}")
    return elapsed, result.stderr


def make_photos(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        path = folder / f"{index:04d}.jpg"
        Image.fromarray(rng.integers(0, 256, (250, 200, 3), dtype=np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def make_portraits(folder: Path) -> list[Path]:
    """The astronaut portrait as three photos of different sizes: as shipped, cropped, and enlarged."""
    folder.mkdir(parents=True, exist_ok=True)
    portrait = Image.open(packaged_file("skimage", "data/astronaut.png", "scikit-image")).convert("RGB")
    versions = [portrait, portrait.crop((60, 0, 420, 400)), portrait.resize((1200, 1200))]
    paths = [folder / f"portrait-{index}.jpg" for index in range(len(versions))]
    for version, path in zip(versions, paths):
        version.save(path, quality=90)
    return paths


def has_template(model: str) -> bool:
    from facealgebra.checkpoint import load_model

    return "template" in load_model(model).preprocess


def make_model(path: Path) -> Path:
    from facealgebra.checkpoint import save_model
    from facealgebra.config import get_preset
    from facealgebra.model import VLAE

    cfg = get_preset("faces64-small").model
    recipe = {"crop_fraction": 1.0, "size": cfg.image_size, "channels": cfg.channels, "range": [0, 1],
              "template": template_record(ORL_LANDMARKS, (92, 112), 1, "benchmark")}
    save_model(path, VLAE(cfg), recipe, {"note": "untrained, for timing"})
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model file or bundled name (default: an untrained faces64-small)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--images", type=int, default=256, help="photos in the folder that encode reads")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        model = args.model or str(make_model(work / "model.safetensors"))
        a, b, c = make_photos(work / "three", 3)
        make_photos(work / "folder", args.images)
        cli = [sys.executable, "-m", "facealgebra"]
        commands = {
            "import torch": [sys.executable, "-c", "import torch"],
            "--help": [*cli, "--help"],
            # the photos are noise: no faces to align
            "arith a - b + c": [*cli, "arith", str(a), "-", str(b), "+", str(c), "-o", str(work / "out.png"),
                                "--model", model, "--device", "cpu", "--align", "off"],
            f"encode {args.images} photos": [*cli, "encode", str(work / "folder"), "-o", str(work / "all.npz"),
                                             "--model", model, "--device", "cpu", "--align", "off"],
        }
        if align_installed() and has_template(model):
            p, q, r = make_portraits(work / "portraits")
            commands["arith, aligned"] = [*cli, "arith", str(p), "-", str(q), "+", str(r), "-o",
                                          str(work / "aligned.png"), "--align", "on", "--model", model,
                                          "--device", "cpu"]
        else:
            print("arith with alignment: skipped (needs the 'align' extra and a model with a landmark template)")
        wall_time(commands["import torch"])  # warm the file cache once, so every command starts equally cold
        times: dict[str, list[float]] = {name: [] for name in commands}
        rates: list[float] = []
        for _ in range(args.repeats):  # interleaved, so a busy moment on the machine hits every command alike
            for name, command in commands.items():
                elapsed, stderr = wall_time(command)
                times[name].append(elapsed)
                if name.startswith("encode"):
                    rates.append(float(re.search(r"at ([\d.]+) images/s", stderr).group(1)))

    base = statistics.median(times["import torch"])
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:>20}: median {median:.2f} s over {len(samples)} runs, {median / base:.2f}x import torch")
    print(f"--help: median {statistics.median(times['--help']):.2f} s (goal < 0.5 s; torch is not imported)")
    print(f"arith latency ratio: {statistics.median(times['arith a - b + c']) / base:.2f} (goal <= 1.30)")
    if "arith, aligned" in times:
        print(f"arith with alignment on 3 portraits, latency ratio: "
              f"{statistics.median(times['arith, aligned']) / base:.2f}")
    print(f"encode throughput: median {statistics.median(rates):.1f} images/s (as encode reports it)")


if __name__ == "__main__":
    main()
