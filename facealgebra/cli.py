"""The `facealgebra` command line: parses and validates, calls the core, prints.

stdout carries data only; messages go to stderr. Exit codes: 0 success, 1 failure while running, 2 bad usage or
bad input, 130 interrupted. torch is imported inside the commands, so `--help` and usage errors stay fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from typer.main import get_command

from facealgebra.errors import FaceAlgebraError, Interrupted, TrainingError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Edit faces with arithmetic on the hierarchical latents of an MMD Variational Ladder Autoencoder.",
)

DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps (auto picks cuda, then mps, then cpu)"


def say(message: str) -> None:
    """A message for the person at the terminal: always stderr, never stdout."""
    print(message, file=sys.stderr, flush=True)


@app.callback()
def root(debug: bool = typer.Option(False, "--debug", help="Show a traceback when something fails.")) -> None:
    """Edit faces with arithmetic on the hierarchical latents of an MMD Variational Ladder Autoencoder."""


# ---- train -----------------------------------------------------------------------------------------------------
@app.command()
def train(
    data: str = typer.Option(..., "--data", help="Data SPEC, e.g. mnist, synthetic:256 (see README)."),
    preset: str = typer.Option("faces64-small", "--preset", help="mnist, faces64, faces64-small or tiny."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Total training steps (default: the preset's)."),
    out: Path = typer.Option(..., "--out", help="Folder for model, trainer state, metrics and samples."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    lr: Optional[float] = typer.Option(None, "--lr", help="Adam learning rate (default 2e-4)."),
    seed: Optional[int] = typer.Option(None, "--seed"),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    resume: bool = typer.Option(False, "--resume", help="Continue the run saved in --out."),
    reg: Optional[str] = typer.Option(None, "--reg", help="mmd (MMD-VLAE, default) or kl (the original VLAE)."),
    sample_every: Optional[int] = typer.Option(None, "--sample-every"),
    save_every: Optional[int] = typer.Option(None, "--save-every"),
    augment: Optional[bool] = typer.Option(None, "--augment/--no-augment", help="Random flips and small shifts."),
) -> None:
    """Train an MMD-VLAE on --data and save it in --out."""
    from facealgebra.config import REGULARISERS, get_preset

    get_preset(preset)  # an unknown preset fails before torch loads
    if reg is not None and reg not in REGULARISERS:
        raise FaceAlgebraError(f"--reg {reg!r}: choose one of {', '.join(REGULARISERS)}")

    from facealgebra.devices import select_device
    from facealgebra.progress import TrainProgress, stderr_is_terminal
    from facealgebra.train import TrainJob, run_training

    job = TrainJob(data=data, preset=preset, out=out, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                   reg=reg, sample_every=sample_every, save_every=save_every, augment=augment, device=device,
                   resume=resume)
    run_training(job, select_device(device), say, TrainProgress if stderr_is_terminal() else None)


# ---- eval ------------------------------------------------------------------------------------------------------
@app.command("eval")
def evaluate(
    model: str = typer.Option(..., "--model", help="Model file, run folder or bundled name."),
    data: str = typer.Option(..., "--data", help="Data SPEC to measure on, e.g. mnist?split=test, toyfaces:5000."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write every figure to this JSON file."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the layer x factor MI heatmap here (PNG)."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    seed: int = typer.Option(0, "--seed", help="Seed for every random choice; a seed repeats exactly."),
) -> None:
    """Measure reconstruction, per-layer information, label probes and (on toyfaces) arithmetic accuracy."""
    import json

    from facealgebra.fileio import check_writable_dir, write_bytes_atomic

    for target in (json_out, plot):
        if target is not None:
            check_writable_dir(target.parent)

    from facealgebra.checkpoint import load_model
    from facealgebra.data import load_data
    from facealgebra.devices import select_device
    from facealgebra.evaluate import evaluate_model, report_lines, save_heatmap

    chosen = select_device(device)
    loaded = load_model(model, chosen)
    images = load_data(data, loaded.model.cfg.image_size, loaded.model.cfg.channels)
    if plot is not None and not images.factor_names:
        raise FaceAlgebraError(f"--plot {plot}: data {data!r} has no ground-truth factors to plot (use toyfaces)")
    result = evaluate_model(loaded, images, seed, chosen)
    for line in report_lines(result):
        say(line)
    if json_out is not None:
        write_bytes_atomic(json_out, (json.dumps(result, indent=2) + "\n").encode())
    if plot is not None:
        save_heatmap(result, str(plot), f"{model} on {data}")


# ---- entry point -----------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        result = get_command(app).main(args=argv, prog_name="facealgebra", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except FaceAlgebraError as exc:
        code = fail(str(exc), 2, debug)
    except TrainingError as exc:
        code = fail(str(exc), 1, debug)
    except Interrupted as exc:
        code = fail(f"interrupted; checkpoint saved at step {exc.step}", 130, debug)
    except typer.TyperException as exc:  # click's usage errors
        code = fail(exc.format_message(), getattr(exc, "exit_code", 2), debug)
    except typer.Exit as exc:
        code = exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        code = fail("interrupted", 130, debug)
    except BrokenPipeError:  # `facealgebra ... -o - | head -c 10`: the reader left, nothing more to say
        sys.stderr.close()
        code = 0
    except Exception as exc:  # noqa: BLE001  (our bug or the machine's: still one line, unless --debug)
        code = fail(f"{type(exc).__name__}: {exc} (rerun with --debug for the traceback)", 1, debug)
    sys.exit(code)


def fail(message: str, code: int, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exc()
    say(f"error: {message}")
    return code
