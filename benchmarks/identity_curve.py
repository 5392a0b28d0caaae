"""Time to a model that keeps the person: the held-out curve of training runs, in PSNR *and* identity.

    python benchmarks/identity_curve.py watch RUN_DIR [RUN_DIR ...] --photos DIR --log curve.jsonl [--every 1200]
    python benchmarks/identity_curve.py report --log curve.jsonl

`watch` runs beside the trainings. Every --every seconds it copies each run's newest checkpoint (a copy, so a
save never races the read) and measures it through the real CLI, `facealgebra eval --model COPY --data DIR
--judges on --json ...`, on a folder of raw photos (the CelebA held-out photos 000900-000999 in the issue): PSNR,
the same-person rate (dlib descriptor L2 < 0.6 between each photo and its reconstruction), the median L2, rank-1
identification and KID. Each measurement is one JSON line with the run's training wall time and step, so runs of
different recipes compare at equal training time. A checkpoint already measured is skipped; a killed watcher
continues where it stopped. `report` prints the table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from safetensors import safe_open


def training_record(model_file: Path) -> dict:
    with safe_open(str(model_file), "pt") as f:
        return json.loads(f.metadata()["training"])


def measure(run: Path, photos: Path, work: Path) -> dict | None:
    model_file = run / "model.safetensors"
    if not model_file.is_file():
        return None
    copy = work / f"{run.name}.safetensors"
    shutil.copyfile(model_file, copy)
    record = training_record(copy)
    report = work / f"{run.name}.json"
    done = subprocess.run([sys.executable, "-m", "facealgebra", "eval", "--model", str(copy), "--data", str(photos),
                           "--judges", "on", "--device", "cpu", "--json", str(report)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(f"{run.name}: eval failed: {done.stderr.strip()}", file=sys.stderr)
        return None
    figures = json.loads(report.read_text())
    identity = figures["identity"]["reconstruction"]
    return {"run": run.name, "step": record["steps"], "wall_s": record["wall_seconds"],
            "perceptual": record.get("perceptual", 0.0), "psnr": round(figures["reconstruction"]["psnr"], 3),
            "same_person": identity["same_person"], "median_l2": round(identity["median_l2"], 4),
            "rank1": identity["rank1"], "kid": figures["realism"]["reconstructions"],
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")}


def watch(runs: list[Path], photos: Path, log: Path, every: float) -> None:
    seen = {(row["run"], row["step"]) for row in read_log(log)}
    with tempfile.TemporaryDirectory() as work:
        while True:
            for run in runs:
                if (run / "model.safetensors").is_file() and \
                        (run.name, training_record(run / "model.safetensors")["steps"]) in seen:
                    continue
                row = measure(run, photos, Path(work))
                if row and (row["run"], row["step"]) not in seen:
                    seen.add((row["run"], row["step"]))
                    with log.open("a") as out:
                        out.write(json.dumps(row) + "\n")
                    print(json.dumps(row), flush=True)
            time.sleep(every)


def read_log(log: Path) -> list[dict]:
    if not log.is_file():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def report(log: Path) -> None:
    rows = sorted(read_log(log), key=lambda row: (row["run"], row["step"]))
    print(f"{'run':<12} {'perc.':>5} {'step':>6} {'train min':>9} {'PSNR dB':>8} {'same':>5} {'rank-1':>6} "
          f"{'med L2':>6} {'KID':>6}")
    for row in rows:
        kid = row.get("kid")
        print(f"{row['run']:<12} {row['perceptual']:>5g} {row['step']:>6} {row['wall_s'] / 60:>9.1f} "
              f"{row['psnr']:>8.2f} {row['same_person']:>5.0%} {row['rank1']:>6.0%} {row['median_l2']:>6.3f} "
              f"{kid if kid is None else round(kid, 3)!s:>6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    watching = commands.add_parser("watch")
    watching.add_argument("runs", nargs="+", type=Path)
    watching.add_argument("--photos", type=Path, required=True)
    watching.add_argument("--log", type=Path, required=True)
    watching.add_argument("--every", type=float, default=1200.0)
    reporting = commands.add_parser("report")
    reporting.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "watch":
        watch(args.runs, args.photos, args.log, args.every)
    else:
        report(args.log)


if __name__ == "__main__":
    main()
