"""Measure the paper's claims: MMD-VLAE against a KL-VLAE and a flat MMD-VAE, on toyfaces and on MNIST.

For each data set, three models share the data, steps, seed and (apart from the flat one) the network:
- MMD-VLAE: the ladder with an MMD term per layer (ours, after Zhao, Song, Ermon 2017 + InfoVAE);
- KL-VLAE: the same ladder with the original KL term (`--reg kl`);
- flat MMD-VAE: one ladder layer holding the same total latent size (presets toyfaces32-flat, mnist-flat). With
  one layer the network is also one stage deep: the code has no deep encoder without per-stage latents.
Each is trained by the real `facealgebra train` and measured by `facealgebra eval --json`, in subprocesses;
the script then writes docs/results.md (tables of every figure, the commands) and docs/results-mi.png (the toyfaces
MI heatmaps of the three models side by side, drawn from the eval JSON).

    python benchmarks/compare.py                       # the budgeted run, about 25 minutes on 2 CPU cores
    python benchmarks/compare.py --toyfaces-steps 20 --mnist-steps 20 --work /tmp/compare-dev   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from facealgebra.evaluate import ACTIVE_VARIANCE, heatmap_image
from facealgebra.fileio import write_bytes_atomic
from facealgebra.images import save_image

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Model:
    name: str
    preset: str
    reg: str


@dataclass(frozen=True)
class Study:
    name: str
    train_spec: str
    eval_spec: str
    models: tuple[Model, ...]


STUDIES = (
    Study("toyfaces", "toyfaces:20000", "toyfaces:5000?start=20000", (
        Model("MMD-VLAE", "toyfaces32", "mmd"),
        Model("KL-VLAE", "toyfaces32", "kl"),
        Model("flat MMD-VAE", "toyfaces32-flat", "mmd"),
    )),
    Study("mnist", "mnist", "mnist?split=test", (
        Model("MMD-VLAE", "mnist", "mmd"),
        Model("KL-VLAE", "mnist", "kl"),
        Model("flat MMD-VAE", "mnist-flat", "mmd"),
    )),
)


# ---- running ---------------------------------------------------------------------------------------------------
def facealgebra(*args: str) -> list[str]:
    return [sys.executable, "-m", "facealgebra", *args]


def run(command: list[str], log: list[str]) -> float:
    """Run one command (its stderr streams through), record it for the results page, return its wall seconds."""
    shown = shlex.join(["facealgebra", *command[3:]]).replace(f"{REPO}/", "")
    print(f"$ {shown}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO)
    log.append(shown)
    return time.perf_counter() - start


def run_study(study: Study, steps: int, work: Path, seed: int, log: list[str]) -> dict[str, dict]:
    """Train and evaluate every model of one study; returns model name -> eval figures (+ timing)."""
    results = {}
    for model in study.models:
        out = work / study.name / model.name.replace(" ", "-").lower()
        train_seconds = run(facealgebra(
            "train", "--data", study.train_spec, "--preset", model.preset, "--reg", model.reg, "--steps", str(steps),
            "--seed", str(seed), "--out", str(out), "--device", "cpu"), log)
        eval_seconds = run(facealgebra(
            "eval", "--model", str(out), "--data", study.eval_spec, "--json", str(out / "eval.json"), "--device",
            "cpu", "--seed", str(seed)), log)
        figures = json.loads((out / "eval.json").read_text())
        results[model.name] = {**figures, "preset": model.preset, "steps": steps,
                               "train_seconds": train_seconds, "eval_seconds": eval_seconds}
    return results


# ---- the results page ------------------------------------------------------------------------------------------
def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows), ""]


def per_layer(values: list, fmt: str) -> str:
    return " / ".join(format(v, fmt) for v in values)


def mi_cell(factors: dict, k: int, factor: str) -> str:
    """Factor k's MI with each layer, and the layer holding it, e.g. '0.12 / 0.40 / 0.05 (z2)'."""
    return f"{per_layer([row[k] for row in factors['mi']], '.2f')} (z{factors['holding_layer'][factor]})"


def study_tables(results: dict[str, dict]) -> list[str]:
    names = list(results)
    figures = list(results.values())
    lines = ["Per-layer cells read z1 / z2 / ... (z1 shallowest).", ""]
    rows = [
        ["preset, latent dims", *(f"{f['preset']}, {'+'.join(map(str, f['latent_dims']))}" for f in figures)],
        ["train / eval seconds", *(f"{f['train_seconds']:.0f} / {f['eval_seconds']:.0f}" for f in figures)],
        ["reconstruction MSE", *(f"{f['reconstruction']['mse']:.5f}" for f in figures)],
        ["reconstruction PSNR dB", *(f"{f['reconstruction']['psnr']:.2f}" for f in figures)],
        ["MMD^2 to prior per layer", *(per_layer([l["mmd"] for l in f["layers"]], ".4f") for f in figures)],
        ["active dims per layer", *(per_layer([l["active_dims"] for l in f["layers"]], "d") for f in figures)],
    ]
    if "factors" in figures[0]:
        rows.append(["MIG", *(f"{f['factors']['mig']:.3f}" for f in figures)])
    lines += markdown_table(["figure", *names], rows)
    if "factors" in figures[0]:
        lines += ["Normalised MI (max over each layer's dims), per layer, and the layer holding most of it:", ""]
        lines += markdown_table(["factor", *names], [
            [factor, *(mi_cell(f["factors"], k, factor) for f in figures)]
            for k, factor in enumerate(figures[0]["factors"]["names"])])
    if figures[0]["probes"]:
        lines += ["Probe accuracy on held-out images (logistic regression on one layer's latents), with chance:", ""]
        lines += markdown_table(["label", "chance", *names], [
            [label, f"{figures[0]['probes'][label]['chance']:.3f}",
             *(per_layer(f["probes"][label]["layers"], ".3f") for f in figures)]
            for label in figures[0]["probes"]])
    if "arithmetic" in figures[0]:
        lines += ["Arithmetic PSNR in dB against the rendered truth d: all layers edited / only the holding layer "
                  "edited / unedited decode(z_c) / reconstruction decode(z_d):", ""]
        lines += markdown_table(["factor", *names], [
            [factor, *(" / ".join(f"{f['arithmetic'][factor][key]:.2f}" for key in
                                  ("psnr", "psnr_layer", "psnr_unedited", "psnr_reconstruction")) for f in figures)]
            for factor in figures[0]["arithmetic"]])
    return lines


def mean_over(arithmetic: dict, key: str) -> float:
    return float(np.mean([score[key] for score in arithmetic.values()]))


def findings(all_results: dict[str, dict[str, dict]]) -> list[str]:
    """Plain statements read off the numbers, one per claim; nothing here is tuned by hand."""
    lines = [f"- {study} {name}: no active dims (no posterior mean varies with variance over {ACTIVE_VARIANCE}), "
             "the usual sign of posterior collapse; read its other figures with that in mind."
             for study, results in all_results.items() for name, f in results.items()
             if not any(layer["active_dims"] for layer in f["layers"])]
    toy = all_results.get("toyfaces")
    if toy:
        migs = ", ".join(f"{name} {f['factors']['mig']:.3f}" for name, f in toy.items())
        lines.append(f"- Disentanglement on toyfaces (MIG, higher is better): {migs}.")
        for name, f in toy.items():
            holding = f["factors"]["holding_layer"]
            spread = sorted(set(holding.values()))
            lines.append(f"- {name}: factors held by layers {spread}; "
                         + ", ".join(f"{factor} z{layer}" for factor, layer in holding.items()) + ".")
            # lighting is toyfaces' one factor that is low-level by construction: it touches every pixel
            if "lighting" in holding and len(f["layers"]) > 1:
                lines.append(f"  Lighting, a low-level factor by construction, sits in z{holding['lighting']}; "
                             "the paper's hierarchy puts low-level features in z1.")
        for name, f in toy.items():
            arithmetic = f["arithmetic"]
            lines.append(
                f"- Arithmetic, {name}: mean PSNR {mean_over(arithmetic, 'psnr'):.2f} dB editing all layers, "
                f"{mean_over(arithmetic, 'psnr_layer'):.2f} dB editing only the holding layer, against "
                f"{mean_over(arithmetic, 'psnr_unedited'):.2f} dB for no edit and "
                f"{mean_over(arithmetic, 'psnr_reconstruction'):.2f} dB for reconstructing the truth directly.")
    mnist = all_results.get("mnist")
    if mnist:
        for name, f in mnist.items():
            accuracies = f["probes"]["digit"]["layers"]
            best = int(np.argmax(accuracies)) + 1
            verdict = ("its only layer" if len(accuracies) == 1 else "the top layer, as the paper says"
                       if best == len(accuracies) else "not the top layer, against the paper's claim")
            lines.append(f"- MNIST digit, {name}: best read from z{best} ({per_layer(accuracies, '.3f')}; "
                         f"chance {f['probes']['digit']['chance']:.3f}): {verdict}.")
    return lines


def compose_heatmaps(results: dict[str, dict], path: Path) -> None:
    """The toyfaces MI heatmaps of every model, side by side, in one PNG."""
    tiles = [heatmap_image(figures, name) for name, figures in results.items()]
    canvas = Image.new("RGB", (sum(t.width for t in tiles) + 10 * (len(tiles) - 1), max(t.height for t in tiles)),
                       "white")
    x = 0
    for tile in tiles:
        canvas.paste(tile, (x, 0))
        x += tile.width + 10
    save_image(canvas, str(path))


def write_results(path: Path, all_results: dict, commands: list[str], args: argparse.Namespace,
                  total_seconds: float) -> None:
    lines = [
        "# Results: MMD-VLAE against KL-VLAE and a flat MMD-VAE", "",
        "Written by `benchmarks/compare.py` from one run on this machine; rerun it to reproduce. Every figure is "
        "defined in the docstring of `facealgebra/evaluate.py`.", "",
        f"Budget: about 25 minutes on 2 shared CPU cores, hence small models and short training: "
        f"{args.toyfaces_steps} steps on toyfaces, {args.mnist_steps} on MNIST, seed {args.seed}. "
        f"This run took {total_seconds / 60:.1f} minutes. Short training means every model here is undertrained; "
        "the comparison is between models given the same small budget, not of converged models.", "",
        "Caveats: the flat MMD-VAE is one ladder stage deep (the config ties depth to the number of latent layers), "
        "so it differs in depth as well as in latent structure. Every figure is on images the models did not "
        "train on: toyfaces 20000 to 24999 (training used 0 to 19999), the MNIST test split, and for arithmetic "
        "freshly drawn factor combinations (2.4% of them occur among the training faces).", "",
        "## Findings", "", *findings(all_results), "",
    ]
    for study, results in all_results.items():
        lines += [f"## {study}", "", *study_tables(results)]
        if study == "toyfaces":
            lines += ["Layer x factor MI heatmaps (left to right: " + ", ".join(results) + "):", "",
                      f"![MI heatmaps]({os.path.relpath(args.heatmaps, path.parent)})", ""]
    lines += ["## Commands", "", "```", *commands, "```", ""]
    write_bytes_atomic(path, "\n".join(lines).encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toyfaces-steps", type=int, default=2000)
    parser.add_argument("--mnist-steps", type=int, default=900)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "compare", help="folder for the runs")
    parser.add_argument("--results", type=Path, default=REPO / "docs" / "results.md")
    parser.add_argument("--heatmaps", type=Path, default=REPO / "docs" / "results-mi.png")
    args = parser.parse_args()
    if args.work.exists():
        sys.exit(f"error: {args.work} exists; choose another --work or remove it")
    start = time.perf_counter()
    commands: list[str] = []
    all_results = {
        study.name: run_study(study, args.toyfaces_steps if study.name == "toyfaces" else args.mnist_steps,
                              args.work, args.seed, commands)
        for study in STUDIES
    }
    compose_heatmaps(all_results["toyfaces"], args.heatmaps)
    write_results(args.results, all_results, commands, args, time.perf_counter() - start)
    print(f"wrote {args.results} and {args.heatmaps}", file=sys.stderr)


if __name__ == "__main__":
    main()
