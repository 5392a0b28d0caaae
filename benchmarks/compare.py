"""Test the paper's layer claim: the MMD-VLAE against a KL-VLAE and a flat MMD-VAE, with a beta sweep and seeds.

Two studies at the paper's shapes: toyfaces at 64x64 with 4 layers of 10 dims (preset faces64-small), and MNIST
with 3 layers of 2 dims (preset mnist). Every model is trained by the real `facealgebra train` and measured by
`facealgebra eval --json`, in subprocesses, `--jobs` at a time. Three phases:

1. beta sweep (seed 0, scored on a validation split): the MMD-VLAE and the KL-VLAE at every beta in BETAS. Each
   regulariser keeps the beta with the best validation mean layer share among its eligible runs: every layer
   active, and reconstruction PSNR within PSNR_SLACK dB of the best run of its sweep (so that a collapsed or
   blurred model cannot win on share alone).
2. ladder recipes (seed 0, validation): the MMD-VLAE at its beta with direct heads, with progressive training, and
   with both; the best eligible validation mean share among these and the plain recipe is kept.
3. test (SEEDS seeds, the test split): MMD-VLAE, KL-VLAE and the flat MMD-VAE (one layer of the ladder's total size,
   as deep and as many parameters: presets mnist-flat, faces64-small-flat, at the MMD-VLAE's beta), and the kept
   recipe when it is not the plain one. Figures are mean +- sd over the seeds; a difference counts only when the
   two mean +- sd intervals do not overlap.

The script then writes docs/results.md and one layer-information heatmap per study (docs/results-*.png).

    python benchmarks/compare.py                    # the CPU budget: about 100 minutes on 2 cores
    python benchmarks/compare.py --device cuda      # the GPU budget: 8x the steps, 6 runs at once
    python benchmarks/compare.py --mnist-steps 20 --toyfaces-steps 20 --work /tmp/c --results /tmp/c/results.md

Rerunning with the same --work continues: finished runs and evaluations are kept, a cut-off run is resumed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from facealgebra.evaluate import heatmap_image, layer_summary
from facealgebra.fileio import write_bytes_atomic
from facealgebra.images import save_image

REPO = Path(__file__).resolve().parent.parent
BETAS = (0.1, 1.0, 10.0)
PSNR_SLACK = 1.0  # dB
SEEDS = 3
BUDGETS = {  # steps per study and runs at once
    "cpu": {"mnist": 1500, "toyfaces": 1000, "jobs": 2},
    "cuda": {"mnist": 12000, "toyfaces": 8000, "jobs": 6},
}


@dataclass(frozen=True)
class Study:
    name: str
    preset: str
    layers: int
    train: str
    validation: str
    test: str


STUDIES = (
    Study("mnist", "mnist", 3, "mnist", "mnist?split=valid", "mnist?split=test"),
    Study("toyfaces", "faces64-small", 4, "toyfaces:20000", "toyfaces:2000?start=20000", "toyfaces:2000?start=22000"),
)


@dataclass(frozen=True)
class Run:
    study: Study
    reg: str
    beta: float
    seed: int = 0
    flat: bool = False
    heads: str = "conv"
    progressive: bool = False

    @property
    def label(self) -> str:
        if self.flat:
            return "flat MMD-VAE"
        recipe = [part for part, on in (("direct heads", self.heads == "direct"), ("progressive", self.progressive))
                  if on]
        return f"{self.reg.upper()}-VLAE" + (f" ({', '.join(recipe)})" if recipe else "")

    @property
    def folder(self) -> str:
        name = "flat" if self.flat else self.reg + ("-direct" if self.heads == "direct" else "") + (
            "-progressive" if self.progressive else "")
        return f"{self.study.name}/{name}-beta{self.beta:g}-seed{self.seed}"


# ---- running ---------------------------------------------------------------------------------------------------
class Runner:
    """Runs the commands of many runs, `jobs` at a time, each in its own subprocess with its share of the CPU;
    a run whose outputs are there already is not run again."""

    def __init__(self, args: argparse.Namespace):
        self.args, self.commands = args, {}  # run folder -> its commands, run now or in an earlier call
        self.env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // args.jobs))}

    def steps(self, run: Run) -> int:
        return self.args.mnist_steps if run.study.name == "mnist" else self.args.toyfaces_steps

    def train_command(self, run: Run, out: Path) -> list[str]:
        steps = self.steps(run)
        command = ["train", "--data", run.study.train, "--preset", run.study.preset + ("-flat" if run.flat else ""),
                   "--reg", run.reg, "--beta", f"{run.beta:g}", "--steps", str(steps), "--seed", str(run.seed),
                   "--out", str(out), "--device", self.args.device]
        if run.heads != "conv":
            command += ["--heads", run.heads]
        if run.progressive:  # every layer on by half-way
            command += ["--progressive", str(max(1, steps // (2 * run.study.layers)))]
        return command

    def shown(self, command: list[str]) -> str:
        return shlex.join(["facealgebra", *command]).replace(f"{self.args.work}/", "runs/compare/")

    def execute(self, command: list[str], log: Path) -> None:
        shown = self.shown(command)
        print(f"$ {shown}", file=sys.stderr, flush=True)
        with open(log, "ab") as sink:
            done = subprocess.run([sys.executable, "-m", "facealgebra", *command], cwd=REPO, env=self.env,
                                  stdout=sink, stderr=sink)
        if done.returncode:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise SystemExit(f"error: `{shown}` failed with exit code {done.returncode}:\n" + "\n".join(tail))

    def commands_of(self, run: Run, split: str) -> tuple[list[str], list[str]]:
        """The commands that train `run` and evaluate it on `split` ("validation" or "test")."""
        out = self.args.work / run.folder
        evaluate = ["eval", "--model", str(out), "--data", getattr(run.study, split), "--json",
                    str(out / f"eval-{split}.json"), "--device", self.args.device, "--seed", "0"]
        return self.train_command(run, out), evaluate

    def figures(self, run: Run, split: str) -> dict:
        """Train `run` (or resume it, or keep it) and return its eval figures on `split`."""
        out = self.args.work / run.folder
        out.parent.mkdir(parents=True, exist_ok=True)
        log = out.parent / f"{out.name}.log"
        model, result = out / "model.safetensors", out / f"eval-{split}.json"
        train, evaluate = self.commands_of(run, split)
        training = load_training(model) if model.exists() else {}
        if training.get("steps", 0) < self.steps(run):
            self.execute(train + (["--resume"] if model.exists() else []), log)
            training = load_training(model)
        if not result.exists():
            self.execute(evaluate, log)
        figures = json.loads(result.read_text())
        # the summary read afresh from the per-layer information, so an evaluation made before the
        # information floor (facealgebra.evaluate.INFORMATION_FLOOR) is summed up as a new one is
        figures["layer_information"].update(layer_summary(figures["layer_information"]["information"]))
        return {**figures, "label": run.label, "beta": run.beta, "seed": run.seed, "folder": run.folder,
                "train_seconds": training.get("wall_seconds", 0.0)}

    def all_figures(self, runs: list[Run], split: str) -> list[dict]:
        for run in runs:  # for the results page, in the runs' order whatever order they finish in
            train, evaluate = self.commands_of(run, split)
            self.commands.setdefault(run.folder, [self.shown(train)]).append(self.shown(evaluate))
        with ThreadPoolExecutor(max_workers=self.args.jobs) as pool:
            return list(pool.map(lambda run: self.figures(run, split), runs))


def load_training(model: Path) -> dict:
    """The training record of a run's model (steps, wall_seconds, ...)."""
    from facealgebra.checkpoint import load_model

    return load_model(model).training


# ---- choosing --------------------------------------------------------------------------------------------------
def mean_share(figures: dict) -> float:
    return figures["layer_information"]["mean_share"]


def psnr(figures: dict) -> float:
    return figures["reconstruction"]["psnr"]


def all_active(figures: dict) -> bool:
    return all(layer["active_dims"] for layer in figures["layers"])


def eligible(figures: dict, best_psnr: float) -> bool:
    return all_active(figures) and psnr(figures) >= best_psnr - PSNR_SLACK


def choose(candidates: list[dict]) -> dict:
    """The eligible candidate with the best mean layer share (the best PSNR when none is eligible)."""
    best_psnr = max(psnr(f) for f in candidates)
    pool = [f for f in candidates if eligible(f, best_psnr)] or [max(candidates, key=psnr)]
    return max(pool, key=mean_share)


# ---- summarising -----------------------------------------------------------------------------------------------
def summary(figures: dict) -> dict[str, float]:
    """The headline figures of one evaluation."""
    held = figures["layer_information"]
    values = {"reconstruction PSNR dB": psnr(figures), "labels read": held["labels_read"],
              "mean layer share": held["mean_share"],
              "layer gap": held["layer_gap"], "redundancy": held["mean_redundancy"]}
    if "factors" in figures:
        values["MIG (dim-level, secondary)"] = figures["factors"]["mig"]
    if "arithmetic" in figures:
        scores = figures["arithmetic"].values()
        values["arithmetic accuracy"] = float(np.mean([s["accuracy"] for s in scores]))
        values["arithmetic accuracy, holding layer only"] = float(np.mean([s["accuracy_layer"] for s in scores]))
        values["arithmetic PSNR dB"] = float(np.mean([s["psnr"] for s in scores]))
    return values


def stats(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def cell(values: list[float]) -> str:
    mean, sd = stats(values)
    return f"{mean:.3f} ± {sd:.3f}"


def separated(a: list[float], b: list[float]) -> int:
    """+1 when a's mean +- sd interval lies wholly above b's, -1 wholly below, 0 when they overlap."""
    (ma, sa), (mb, sb) = stats(a), stats(b)
    return 1 if ma - sa > mb + sb else -1 if ma + sa < mb - sb else 0


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows), ""]


def per_layer_cells(runs: list[dict], key: str, label: str) -> str:
    """A label's per-layer value over seeds, e.g. '0.41 ± 0.02 / 0.88 ± 0.01 / ...' (z1 first)."""
    layers = np.array([f["layer_information"][key][label] if key == "information" else
                       f["layer_information"]["accuracy"][label]["layers"] for f in runs])
    return " / ".join(f"{m:.2f} ± {s:.2f}" for m, s in (stats(list(column)) for column in layers.T))


def holding_cell(runs: list[dict], label: str) -> str:
    """The label's holding layers over the seeds where some layer reads it, and its share there."""
    read = [f["layer_information"] for f in runs if label in f["layer_information"]["share"]]
    if not read:
        return "not read"
    layers = sorted({held["holding_layer"][label] for held in read})
    seeds = "" if len(read) == len(runs) else f" (read in {len(read)} of {len(runs)} seeds)"
    return f"z{'/'.join(map(str, layers))}, share {cell([held['share'][label] for held in read])}{seeds}"


def sweep_table(figures: list[dict], chosen: list[dict], by_label: bool) -> list[str]:
    """Phase 1 or 2's validation figures; eligibility is judged within each model's sweep (by_label) or over all."""
    group = (lambda f: f["label"]) if by_label else (lambda f: "")  # noqa: E731
    best = {key: max(psnr(f) for f in figures if group(f) == key) for key in {group(f) for f in figures}}
    return markdown_table(["model", "beta", "PSNR dB", "labels read", "mean share", "every layer active", "eligible",
                           "kept"], [
        [f["label"], f"{f['beta']:g}", f"{psnr(f):.2f}", str(f["layer_information"]["labels_read"]),
         f"{mean_share(f):.3f}",
         "yes" if all_active(f) else "no",
         "yes" if eligible(f, best[group(f)]) else "no", "**kept**" if f in chosen else ""]
        for f in figures])


def verdict(name_a: str, a: list[float], name_b: str, b: list[float], what: str) -> str:
    side = separated(a, b)
    result = (f"{name_a} wins" if side > 0 else f"{name_b} wins" if side < 0 else
              "no separable difference (the seed intervals overlap)")
    return f"{what[0].upper()}{what[1:]}: {name_a} {cell(a)} against {name_b} {cell(b)}: {result}."


def findings(study: Study, tests: dict[str, list[dict]], recipe_label: str) -> list[str]:
    lines = []
    mmd, kl = tests["MMD-VLAE"], tests["KL-VLAE"]
    figures = {label: [summary(f) for f in runs] for label, runs in tests.items()}
    for key in ("mean layer share", "arithmetic accuracy", "reconstruction PSNR dB"):
        if key in figures["MMD-VLAE"][0]:
            lines.append("- " + verdict("MMD-VLAE", [f[key] for f in figures["MMD-VLAE"]], "KL-VLAE",
                                        [f[key] for f in figures["KL-VLAE"]], key))
    flat = figures["flat MMD-VAE"]
    for key in ("reconstruction PSNR dB", "arithmetic accuracy"):
        if key in flat[0]:
            lines.append("- " + verdict("MMD-VLAE", [f[key] for f in figures["MMD-VLAE"]], "flat MMD-VAE",
                                        [f[key] for f in flat], key))
    if recipe_label != "MMD-VLAE":
        for key in ("mean layer share", "reconstruction PSNR dB"):
            lines.append("- " + verdict(recipe_label, [f[key] for f in figures[recipe_label]], "MMD-VLAE",
                                        [f[key] for f in figures["MMD-VLAE"]], key))
        for key in ("mean layer share", "arithmetic accuracy"):
            if key in figures[recipe_label][0]:
                lines.append("- " + verdict(recipe_label, [f[key] for f in figures[recipe_label]], "KL-VLAE",
                                            [f[key] for f in figures["KL-VLAE"]], key))
    else:
        lines.append("- No ladder recipe beat the plain MMD-VLAE on validation share; none is carried to the test.")
    ladders = {label: runs for label, runs in tests.items() if label != "flat MMD-VAE"}
    for label, runs in ladders.items():
        held = [f["layer_information"] for f in runs]
        labels = list(held[0]["information"])
        unread = [name for name in labels if not any(name in h["share"] for h in held)]
        concentrated = [name for name in labels if name not in unread
                        and np.mean([h["share"].get(name, 0.0) for h in held]) >= 0.7]
        lines.append(f"- {label}: {len(concentrated)} of {len(labels)} labels keep ≥ 70% of their information in "
                     f"one layer (mean over seeds){': ' + ', '.join(concentrated) if concentrated else ''}"
                     + (f"; no layer reads {', '.join(unread)} in any seed." if unread else "."))
        if study.name == "toyfaces":
            layer = {name: np.mean([h["holding_layer"][name] for h in held]) for name in labels}
            low, high = ("lighting", "background"), ("hair_colour", "hair_style", "head_position")
            below = max(layer[n] for n in low) < min(layer[n] for n in high)
            lines.append(f"  Mean holding layer: " + ", ".join(f"{n} z{layer[n]:.1f}" for n in (*low, *high))
                         + (": lighting and background sit below hair and head position, as the paper's hierarchy "
                            "says." if below else ": lighting and background do not sit below hair and head "
                            "position, against the paper's hierarchy."))
        else:
            digit = np.array([h["accuracy"]["digit"]["layers"] for h in held])
            width = [h["holding_layer"]["stroke_width"] for h in held]
            lines.append(f"  5-NN digit accuracy, top layer {cell(list(digit[:, -1]))} (goal ≥ 0.85), bottom layer "
                         f"{cell(list(digit[:, 0]))} (goal ≤ 0.40); stroke width held by "
                         f"z{'/'.join(str(z) for z in sorted(set(width)))} across seeds.")
    return lines


def compose_heatmaps(runs: list[dict], path: Path) -> None:
    """The layer-information heatmaps of seed 0 of every model, side by side, in one PNG."""
    tiles = [heatmap_image(f, f["label"], kind="information") for f in runs]
    canvas = Image.new("RGB", (sum(t.width for t in tiles) + 10 * (len(tiles) - 1), max(t.height for t in tiles)),
                       "white")
    x = 0
    for tile in tiles:
        canvas.paste(tile, (x, 0))
        x += tile.width + 10
    save_image(canvas, str(path))


def study_section(study: Study, sweep: list[dict], chosen: list[dict], recipes: list[dict], kept: dict,
                  tests: dict[str, list[dict]], heatmap: Path, results: Path) -> list[str]:
    lines = [f"## {study.name}", "", f"Preset `{study.preset}`; training on `{study.train}`, choosing on "
             f"`{study.validation}`, testing on `{study.test}`.", "",
             "### Findings (test split, mean ± sd over seeds)", "", *findings(study, tests, kept["label"]), "",
             "### Phase 1: beta sweep (seed 0, validation split)", "", *sweep_table(sweep, chosen, True),
             "### Phase 2: ladder recipes (seed 0, validation split)", "", *sweep_table(recipes, [kept], False),
             f"### Phase 3: test split, seeds {', '.join(str(f['seed']) for f in tests['MMD-VLAE'])}", ""]
    labels = list(tests)
    one_layer = ("mean layer share", "layer gap", "redundancy")  # 1, 1 and 0 by construction for the flat model
    rows = [[key, *("n/a (one layer)" if label == "flat MMD-VAE" and key in one_layer else
                    cell([summary(f)[key] for f in tests[label]]) for label in labels)]
            for key in summary(tests["MMD-VLAE"][0])]
    rows.append(["beta", *(f"{tests[label][0]['beta']:g}" for label in labels)])
    lines += markdown_table(["figure", *labels], rows)
    lines += ["Where each label is held (the layer with the most 5-NN information, over seeds) and its share in "
              "that layer:", ""]
    names = list(tests["MMD-VLAE"][0]["layer_information"]["information"])
    lines += markdown_table(["label", *labels], [[name, *(holding_cell(tests[label], name) for label in labels)]
                                                 for name in names])
    lines += ["Layer-level information per layer (z1 / z2 / ...; 0 chance, 1 every image right), mean ± sd:", ""]
    lines += markdown_table(["label", *labels], [
        [name, *(per_layer_cells(tests[label], "information", name) for label in labels)] for name in names])
    if study.name == "mnist":
        lines += ["Raw 5-NN accuracy per layer on the 10,000 test digits (z1 / z2 / z3):", ""]
        lines += markdown_table(["label", *labels], [
            [name, *(per_layer_cells(tests[label], "accuracy", name) for label in labels)] for name in names])
    lines += [f"Seed 0's layer-level information, left to right: {', '.join(labels)}:", "",
              f"![layer information]({os.path.relpath(heatmap, results.parent)})", ""]
    return lines


def training_minutes(figures: list[dict]) -> float:
    """Training wall time over the distinct runs (a run evaluated twice counts once)."""
    return sum({f["folder"]: f["train_seconds"] for f in figures}.values()) / 60


# ---- the run ---------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when there is one)")
    parser.add_argument("--mnist-steps", type=int, help="default: the device's budget (BUDGETS)")
    parser.add_argument("--toyfaces-steps", type=int, help="default: the device's budget (BUDGETS)")
    parser.add_argument("--jobs", type=int, help="runs at once (default: the device's budget)")
    parser.add_argument("--seeds", type=int, default=SEEDS)
    parser.add_argument("--studies", default="mnist,toyfaces")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "compare", help="folder for the runs")
    parser.add_argument("--results", type=Path, default=REPO / "docs" / "results.md")
    args = parser.parse_args()
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    budget = BUDGETS["cuda" if args.device.startswith("cuda") else "cpu"]
    args.mnist_steps = args.mnist_steps or budget["mnist"]
    args.toyfaces_steps = args.toyfaces_steps or budget["toyfaces"]
    args.jobs = args.jobs or budget["jobs"]
    args.work = args.work.resolve()
    studies = [s for s in STUDIES if s.name in args.studies.split(",")]
    runner = Runner(args)

    sweep_runs = [Run(study, reg, beta) for study in studies for reg in ("mmd", "kl") for beta in BETAS]
    sweep = runner.all_figures(sweep_runs, "validation")
    chosen = {}
    for study in studies:
        for reg in ("mmd", "kl"):
            pool = [f for r, f in zip(sweep_runs, sweep) if r.study == study and r.reg == reg]
            chosen[study.name, reg] = next(r for r, f in zip(sweep_runs, sweep) if f is choose(pool))

    recipe_runs = [replace(chosen[study.name, "mmd"], heads=heads, progressive=progressive)
                   for study in studies for heads, progressive in (("direct", False), ("conv", True), ("direct", True))]
    recipes = runner.all_figures(recipe_runs, "validation")
    kept = {}
    for study in studies:
        plain = chosen[study.name, "mmd"]
        pool = [sweep[sweep_runs.index(plain)]] + [f for r, f in zip(recipe_runs, recipes) if r.study == study]
        best = choose(pool)
        kept[study.name] = plain if best is pool[0] else recipe_runs[recipes.index(best)]

    test_runs = []
    for study in studies:
        models = [chosen[study.name, "mmd"], chosen[study.name, "kl"], replace(chosen[study.name, "mmd"], flat=True)]
        if kept[study.name] != chosen[study.name, "mmd"]:
            models.append(kept[study.name])
        test_runs += [replace(model, seed=seed) for model in models for seed in range(args.seeds)]
    tests = runner.all_figures(test_runs, "test")

    lines = ["# Results: does the ladder put each feature in one layer?", "",
             "Written by `benchmarks/compare.py` from one run; rerun it to reproduce. Every figure is defined in the "
             "docstring of `facealgebra/evaluate.py`; the method (sweep, choice, seeds, what counts as a win) is in "
             "the script's docstring.", "",
             f"This run: device {args.device}, {args.jobs} runs at once, {args.mnist_steps} steps on MNIST and "
             f"{args.toyfaces_steps} on toyfaces, betas {', '.join(f'{b:g}' for b in BETAS)}, {args.seeds} seeds; "
             f"{len(runner.commands)} trainings, {training_minutes(sweep + recipes + tests):.0f} minutes of training "
             "wall time in all (from the models' training records). Short training: every model is undertrained, "
             "and the comparison is of models given the same budget, not of converged ones.", "",
             "The main figure is the **layer-level share**: for each label, a 5-nearest-neighbour vote on each "
             "layer's whole code gives that layer's information about it (0 chance, 1 every image right); the share "
             "is the best layer's information over the sum over layers. Unlike the dim-level MIG it does not change "
             "when a layer's code is rotated, which the MMD prior and the decoder cannot tell apart. The flat "
             "MMD-VAE has one layer, so its share is 1 by construction and is not compared.", ""]
    for study in studies:
        own = lambda runs, figs: [f for r, f in zip(runs, figs) if r.study == study]  # noqa: E731
        study_tests: dict[str, list[dict]] = {}
        for run, figures in zip(test_runs, tests):
            if run.study == study:
                study_tests.setdefault(run.label, []).append(figures)
        kept_figures = next(f for r, f in zip(recipe_runs + sweep_runs, recipes + sweep) if r == kept[study.name])
        heatmap = args.results.parent / f"results-{study.name}.png"
        compose_heatmaps([runs[0] for runs in study_tests.values()], heatmap)
        lines += study_section(study, own(sweep_runs, sweep), [sweep[sweep_runs.index(chosen[study.name, r])]
                                                               for r in ("mmd", "kl")],
                               own(recipe_runs, recipes) + [sweep[sweep_runs.index(chosen[study.name, "mmd"])]],
                               kept_figures, study_tests, heatmap, args.results)
    lines += ["## Commands", "", "Each run's training and evaluations (`runs/compare` is `--work`):", "", "```",
              *(command for commands in runner.commands.values() for command in commands), "```", ""]
    write_bytes_atomic(args.results, "\n".join(lines).encode())
    print(f"wrote {args.results}", file=sys.stderr)


if __name__ == "__main__":
    main()
