"""How many tuning steps (`--tune STEPS`, refine.tuned) a face needs before a face recogniser knows its
reconstruction, and what they cost: the real CLI, `facealgebra eval --model M --data DIR --tune N --json ...`, for
each N, on a folder of raw photos (the CelebA held-out photos 000900-000999 in issue 23).

    python benchmarks/tune_curve.py --photos DIR [--model faces] [--steps 0 10 25 50]

Prints one row per N: PSNR, the same-person rate (dlib descriptor L2 < 0.6 between each photo and its
reconstruction), the median L2, rank-1 identification within the set, KID of the reconstructions, and eval's wall
time relative to N = 0 (eval tunes each face twice: once for PSNR, once for the judges). Run it on a quiet machine
and read the times as ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(model: str, photos: Path, steps: int, work: Path) -> dict:
    report = work / f"tune-{steps}.json"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "facealgebra", "eval", "--model", model, "--data", str(photos),
                           "--judges", "on", "--tune", str(steps), "--device", "cpu", "--json", str(report)],
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"eval --tune {steps} failed: {done.stderr.strip()}")
    figures = json.loads(report.read_text())
    identity = figures["identity"]["reconstruction"]
    return {"steps": steps, "psnr": figures["reconstruction"]["psnr"], "same_person": identity["same_person"],
            "median_l2": identity["median_l2"], "rank1": identity["rank1"], "faces": identity["faces"],
            "kid": figures["realism"]["reconstructions"], "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--model", default="faces")
    parser.add_argument("--steps", type=int, nargs="+", default=[0, 10, 25, 50])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        rows = [measure(args.model, args.photos, steps, Path(work)) for steps in args.steps]
    base = rows[0]["seconds"]
    print(f"{'tune steps':>10} {'PSNR dB':>8} {'same':>5} {'med L2':>6} {'rank-1':>6} {'KID':>6} {'time':>6}")
    for row in rows:
        print(f"{row['steps']:>10} {row['psnr']:>8.2f} {row['same_person']:>5.0%} {row['median_l2']:>6.3f} "
              f"{row['rank1']:>6.0%} {row['kid']:>6.3f} {row['seconds'] / base:>5.2f}x")
    print(f"({rows[0]['faces']} faces; time relative to --tune {rows[0]['steps']}, {base:.0f} s)")


if __name__ == "__main__":
    main()
