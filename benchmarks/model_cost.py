"""What the default model costs: the wall time of the real CLI, `facealgebra arith PHOTO EDIT -o OUT`, with the
bundled `faces` and `faces-large`, for edits drawn by the decoder tuned to the face (`- smile`, `+ black-hair`) and
by the model's own (`+ glasses`), and for a batch of photos through one process (`find | arith - ...`).

    python benchmarks/model_cost.py [--repeats 3] [--device cpu]

Each command runs `--repeats` times, the two models alternating; prints the median seconds of each and the ratio
faces-large / faces. Needs the `align` extra (the photos are faces found in examples/photos). Read the times as
ratios of one run on a quiet machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHOTOS = Path(__file__).resolve().parent.parent / "examples" / "photos"
MODELS = ("faces", "faces-large")
EDITS = (("- smile", "generated-12.jpg"), ("+ black-hair", "generated-14.jpg"), ("+ glasses", "generated-14.jpg"))
BATCH = ("generated-12.jpg", "generated-14.jpg", "generated-23.jpg", "generated-32.jpg", "astronaut.jpg")


def seconds(command: list[str], stdin: str | None = None) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, input=stdin, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "facealgebra", "arith"]
    with tempfile.TemporaryDirectory() as work:
        jobs = {f"arith {photo} {edit}": (lambda model, edit=edit, photo=photo: seconds(
                    [*cli, str(PHOTOS / photo), *edit.split(), "-o", f"{work}/{model}.jpg", "--model", model,
                     "--device", args.device])) for edit, photo in EDITS}
        jobs[f"arith - + smile, {len(BATCH)} photos"] = lambda model: seconds(
            [*cli, "-", "+", "smile", "-o", f"{work}/{model}/", "--model", model, "--device", args.device],
            "".join(f"{PHOTOS / photo}\n" for photo in BATCH))
        print(f"{'command':42s} {'faces':>8s} {'faces-large':>12s} {'ratio':>6s}")
        for label, job in jobs.items():
            times: dict[str, list[float]] = {model: [] for model in MODELS}
            for _ in range(args.repeats):
                for model in MODELS:
                    times[model].append(job(model))
            small, large = (statistics.median(times[model]) for model in MODELS)
            print(f"{label:42s} {small:7.2f}s {large:11.2f}s {large / small:6.2f}")


if __name__ == "__main__":
    main()
