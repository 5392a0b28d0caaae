"""The `facealgebra` command line: parses and validates, calls the core, prints.

stdout carries data only; messages go to stderr. Exit codes: 0 success, 1 failure while running, 2 bad usage or
bad input, 130 interrupted. torch is imported inside the commands, so `--help` and usage errors stay fast.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import typer
from typer._click.exceptions import NoArgsIsHelpError  # typer's own copy of click
from typer.main import get_command

from facealgebra.errors import FaceAlgebraError, Interrupted, TrainingError
from facealgebra.outputs import guard
from facealgebra.refine import TUNE_DEFAULT

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from facealgebra.align import PhotoInput
    from facealgebra.checkpoint import LoadedModel
    from facealgebra.latents import Latents

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: flags without a <bool> placeholder, and no rich to import
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Edit faces with arithmetic on the hierarchical latents of an MMD Variational Ladder Autoencoder.",
)

MAX_SEED = 2 ** 63 - 1  # torch's generators take 64-bit seeds: a larger one overflowed deep inside a run
DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps (auto picks cuda, then mps, then cpu)"
DEVICE_NAME = re.compile(r"auto|cpu|cuda(:\d+)?|mps")


def device_name(value: str) -> str:
    """--device checked as it is parsed, before any model (or torch) loads; select_device checks what exists."""
    if not DEVICE_NAME.fullmatch(value):
        raise FaceAlgebraError(f"--device {value!r}: expected auto, cpu, cuda, cuda:N or mps")
    return value


def refine_steps(value: int) -> int:
    """--refine checked as it is parsed, before any model (or torch) loads."""
    from facealgebra.refine import check_steps

    check_steps(value)
    return value


def tune_steps(value: Optional[int]) -> Optional[int]:
    """--tune checked as it is parsed, before any model (or torch) loads."""
    from facealgebra.refine import check_tune_steps

    if value is not None:
        check_tune_steps(value)
    return value


ALIGN_HELP = ("auto, on or off: find the face in each photo and warp it onto the model's landmark template "
              "(auto: on when the 'align' extra is installed and the model has a template).")


def say(message: str) -> None:
    """A message for the person at the terminal: always stderr, never stdout."""
    print(message, file=sys.stderr, flush=True)


def warn(message: Optional[str]) -> None:
    if message:
        say(f"warning: {message}")


def print_version(value: bool) -> None:
    if value:
        from facealgebra import __version__

        print(f"facealgebra {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug", help="Show a traceback when something fails (anywhere on the "
                               "command line)."),  # main() takes it from wherever it stands; declared for --help
    version: bool = typer.Option(False, "--version", callback=print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Edit faces with arithmetic on the hierarchical latents of an MMD Variational Ladder Autoencoder."""


# ---- train -----------------------------------------------------------------------------------------------------
@app.command()
def train(
    data: str = typer.Option(..., "--data", help="Data SPEC, e.g. mnist, synthetic:256 (see README)."),
    preset: str = typer.Option("faces64-small", "--preset", help="mnist, faces64, faces64-small, faces64-wide, "
                               "faces64-large, tiny, or a flat baseline (mnist-flat, faces64-small-flat)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Total training steps (default: the preset's)."),
    out: Path = typer.Option(..., "--out", help="Folder for model, trainer state, metrics and samples."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Images per step and process: under "
                                             "torchrun the global batch is this x the number of processes."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Adam learning rate (default 2e-4)."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, max=MAX_SEED, help="Seed of the weight initialisation and the "
                                       "batch order (default 0)."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP, callback=device_name),
    resume: bool = typer.Option(False, "--resume", help="Continue the run saved in --out."),
    init: Optional[str] = typer.Option(None, "--init", help="Start a new run from this model's weights (a path, "
                                       "run folder or bundled name) with a fresh optimizer, e.g. to fine-tune a "
                                       "bundled model on your own photos."),
    reg: Optional[str] = typer.Option(None, "--reg", help="mmd (MMD-VLAE, default) or kl (the original VLAE)."),
    beta: Optional[float] = typer.Option(None, "--beta", help="Weight of each layer's regulariser against the "
                                         "per-pixel reconstruction (default 1, weighted equally)."),
    sample_every: Optional[int] = typer.Option(None, "--sample-every", help="Write a grid of samples to "
                                               "--out/samples every this many steps (default: the preset's)."),
    save_every: Optional[int] = typer.Option(None, "--save-every", help="Save the model and trainer state every "
                                             "this many steps (default: the preset's)."),
    augment: Optional[bool] = typer.Option(None, "--augment/--no-augment", help="Random flips and small shifts."),
    heads: Optional[str] = typer.Option(None, "--heads", help="How each latent layer reads its stage: conv (stride-2 "
                                        "convs of its own; the default) or direct (average pooling, so layer l "
                                        "sits exactly at stage l's depth). A new run only."),
    progressive: Optional[int] = typer.Option(None, "--progressive", metavar="STEPS", help="Progressive training "
                                              "(proVLAE): the top layer trains alone for STEPS steps, then each lower "
                                              "layer fades in over STEPS steps, top down. 0: off (default)."),
    perceptual: Optional[float] = typer.Option(None, "--perceptual", metavar="WEIGHT", help="Add a perceptual loss "
                                               "on a frozen face network's features (the face parser's ResNet-18; "
                                               "needs the judges extra), WEIGHT times. 0: off (default)."),
) -> None:
    """Train an MMD-VLAE on --data and save it in --out (one process, or several under torchrun)."""
    stop_on_termination_signals()  # first: a SIGTERM while torch loads must not end the process unannounced
    from facealgebra.config import HEADS, REGULARISERS, get_preset

    get_preset(preset)  # an unknown preset fails before torch loads
    if init is not None and resume:
        raise FaceAlgebraError("--init starts a new run and --resume continues one: pass only one of them")
    if reg is not None and reg not in REGULARISERS:
        raise FaceAlgebraError(f"--reg {reg!r}: choose one of {', '.join(REGULARISERS)}")
    if heads is not None and heads not in HEADS:
        raise FaceAlgebraError(f"--heads {heads!r}: choose one of {', '.join(HEADS)}")
    if perceptual:  # its network ships with the judges extra: say so before any data loads
        from facealgebra.judges import PARSER_FILE, judge_file

        judge_file(*PARSER_FILE)

    from facealgebra.distributed import launched_ranks, process_group, rank_device
    from facealgebra.progress import TrainProgress, stderr_is_terminal
    from facealgebra.train import TrainJob, run_training

    job = TrainJob(data=data, preset=preset, out=out, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                   reg=reg, sample_every=sample_every, save_every=save_every, augment=augment, device=device,
                   resume=resume, init=init, beta=beta, heads=heads, progressive=progressive,
                   perceptual=perceptual)
    ranks = launched_ranks()  # under torchrun, one of several processes; rank 0 alone talks and writes
    chosen = rank_device(device, ranks)
    with process_group(ranks, chosen):
        run_training(job, chosen, say if ranks.is_main else (lambda message: None),
                     TrainProgress if ranks.is_main and stderr_is_terminal() else None, ranks)


# ---- eval ------------------------------------------------------------------------------------------------------
@app.command("eval")
def evaluate(
    model: str = typer.Option(..., "--model", help="Model file, run folder or bundled name."),
    data: str = typer.Option(..., "--data", help="Data SPEC to measure on, e.g. mnist?split=test, toyfaces:5000."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write every figure to this JSON file."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the layer x factor MI heatmap here (PNG)."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP, callback=device_name),
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="Seed for every random choice; a seed repeats exactly."),
    align: str = typer.Option("auto", "--align", help=f"For a folder of photos (folder:PATH): {ALIGN_HELP}"),
    judges: str = typer.Option("auto", "--judges", help="auto, on or off: also judge the reconstructions' identity "
                               "(dlib) and the realism of reconstructions and prior draws (KID); auto: on a folder of "
                               "photos when the 'judges' extra is installed."),
    edits: Optional[str] = typer.Option(None, "--edits", help="On a folder of photos: also make each named catalogue "
                                        "edit (comma-separated, or all) with + and -, and judge it: success on the "
                                        "eligible faces, identity kept, median identity distance (judges extra)."),
    refine: int = typer.Option(0, "--refine", metavar="STEPS", help="Reconstruct from codes refined by STEPS "
                               "gradient steps through the decoder, as encode --refine finds them (0: the "
                               "encoder's codes).", callback=refine_steps),
    tune: Optional[int] = typer.Option(None, "--tune", metavar="STEPS", help="Reconstruct each photo with the "
                                       f"decoder tuned to it by STEPS steps, as arith draws its edits (default: "
                                       f"{TUNE_DEFAULT} on a folder of photos for a model trained on photos, else "
                                       "0).",
                                       callback=tune_steps),
) -> None:
    """Measure reconstruction, per-layer information, label probes and (on toyfaces) arithmetic accuracy. A
    folder of photos is read as encode reads them: aligned onto the model's face template when it has one."""
    import json

    from facealgebra.fileio import write_bytes_atomic

    from facealgebra.align import check_align_options

    check_align_options(align, None)
    judging = judges_wanted(judges, data)
    if edits is not None:
        from facealgebra.data import photo_folder
        from facealgebra.judges import check_installed

        if photo_folder(data) is None:
            raise FaceAlgebraError(f"--edits edits photos: give a folder of photos as --data, not {data!r}")
        check_installed()
    plan_outputs([target for target in (json_out, plot) if target is not None], models=[model])

    from facealgebra import editing
    from facealgebra.align import Template, photo_input
    from facealgebra.checkpoint import load_model
    from facealgebra.data import load_data, photo_folder
    from facealgebra.devices import select_device
    from facealgebra.evaluate import evaluate_model, report_lines, save_heatmap
    from facealgebra.images import list_images

    chosen = select_device(device)
    loaded = load_model(model, chosen)
    folder = photo_folder(data)
    loaded.refine_steps = refine
    loaded.tune_steps = tune if tune is not None else editing.default_tune(loaded) if folder is not None else 0
    if edits is not None:  # a name not in the catalogue fails before any work
        from facealgebra.catalogue import model_catalogue
        from facealgebra.edit_evaluation import edit_names

        edit_names(edits, model_catalogue(loaded.path, loaded.fingerprint, model).names)
    paths = list_images(folder) if folder is not None else []
    aligning = align == "on" or (align == "auto" and Template.of(loaded.preprocess) is not None)
    if paths and aligning:
        photos = photo_input(loaded.preprocess, align, None, model, loaded.training.get("data", ""), False, say)
        images = editing.photo_set(data, paths, photos)
    else:
        images = load_data(data, loaded.model.cfg.image_size, loaded.model.cfg.channels)
    if plot is not None and not images.factor_names:
        raise FaceAlgebraError(f"--plot {plot}: data {data!r} has no ground-truth factors to plot (use toyfaces)")
    result = evaluate_model(loaded, images, seed, chosen)
    if judging:
        from facealgebra.judges import evaluation

        result |= evaluation.judge_model(loaded, images, seed, chosen)
    if edits is not None:
        from facealgebra import edit_evaluation

        edit_photos = photo_input(loaded.preprocess, align, None, model, loaded.training.get("data", ""), False, say)
        result["edit_evaluation"] = edit_evaluation.evaluate_edits(loaded, paths, edit_photos, edits, say)
    for line in report_lines(result) + (evaluation.report_lines(result) if judging else []):
        say(line)
    if edits is not None:
        for line in edit_evaluation.report_lines(result["edit_evaluation"]):
            say(line)
    if json_out is not None:
        write_bytes_atomic(json_out, (json.dumps(result, indent=2) + "\n").encode())
        say(f"wrote {json_out}")
    if plot is not None:
        save_heatmap(result, str(plot), f"{model} on {data}")
        say(f"wrote {plot}")


def judges_wanted(mode: str, data: str) -> bool:
    """eval --judges: on (the extra must be installed), off, or auto (on a folder of photos when installed)."""
    from facealgebra.data import photo_folder
    from facealgebra.judges import check_installed, installed

    if mode not in ("auto", "on", "off"):
        raise FaceAlgebraError(f"--judges {mode!r}: choose auto, on or off")
    if mode == "on":
        check_installed()
    return mode == "on" or (mode == "auto" and photo_folder(data) is not None and installed())


# ---- export ----------------------------------------------------------------------------------------------------
@app.command()
def export(
    model: str = typer.Argument(..., help="Model file, run folder or bundled name."),
    out: Path = typer.Option(..., "-o", "--out", help="The .safetensors model file to write."),
    dtype: str = typer.Option("float16", "--dtype", help="float16 (half the file) or float32."),
) -> None:
    """Write a model with its weights stored as float16, half the file, if no output pixel moves by over 1/255."""
    if out.suffix != ".safetensors":
        raise FaceAlgebraError(f"-o {out}: a model file ends in .safetensors")
    plan_outputs([out], models=[model])

    from facealgebra.checkpoint import CHECK_DRAWS, export_model, load_model

    loaded = load_model(model)
    weights_print, error = export_model(loaded, out, dtype)
    size = out.stat().st_size / 1e6
    say(f"wrote {out} ({size:.1f} MB, {dtype}, fingerprint {weights_print}); outputs within {error * 255:.2f}/255 "
        f"of the original on {CHECK_DRAWS} prior draws and their reconstructions")


# ---- editing: encode, decode, traverse, arith ------------------------------------------------------------------
# Each command reads and checks its inputs first (numpy and Pillow only), then loads torch and the model.
# the editing commands' model: faces-large lands the catalogue's edits (glasses among them) that faces cannot draw,
# for about a second more per photo through the CLI on a CPU (README, "Which model")
DEFAULT_MODEL = "faces-large"
MODEL_HELP = "A model file or run folder, or the name of a bundled model in weights/."
SIZE_HELP = "Draw each face this many pixels wide (a multiple of the model's size), for viewing."
JSON_HELP = "Print one JSON line per output file: its path and the mean L2 norm of each layer's latents."
OUT_IMAGE_HELP = "Output PNG; - writes the PNG bytes to stdout."
FACE_HELP = "Which face of a photo to use, numbered from 1, left to right (default: the largest)."
MAX_FOLDER_IMAGES = 100_000  # decode -o DIR: a file per row; more is a mistake (a 0.3 MB file held 2 million)
DECODE_CHUNK = 256
MAX_RANGE = 20.0  # traverse --range: far beyond the prior's mass, where a decoder shows nothing new
TILE_SIDE, MAX_TILE_SIDE = 256, 1024  # traverse --from PHOTO: the longer side of each photo tile
MAX_GRID_WIDTH = 4096  # traverse --from PHOTO: tiles shrink below TILE_SIDE (by default) to keep the grid this wide
model_option = typer.Option(DEFAULT_MODEL, "--model", help=MODEL_HELP)
device_option = typer.Option("auto", "--device", help=DEVICE_HELP, callback=device_name)
size_option = typer.Option(None, "--size", help=SIZE_HELP)
json_option = typer.Option(False, "--json", help=JSON_HELP)
align_option = typer.Option("auto", "--align", help=ALIGN_HELP)
face_option = typer.Option(None, "--face", help=FACE_HELP)
refine_option = typer.Option(0, "--refine", metavar="STEPS", help="Refine each photo's code by STEPS gradient "
                             "steps through the decoder so that it decodes closer to the photo (50 is plenty; 0, "
                             "the default: the encoder's code). About 0.5 s a photo on a CPU.",
                             callback=refine_steps)
tune_option = typer.Option(None, "--tune", metavar="STEPS", help="Draw each photo's edit with the decoder tuned "
                           "to that face by STEPS gradient steps first, so that it draws this person rather than the "
                           f"nearest face it knows (0: the model as trained; default {TUNE_DEFAULT} for a model "
                           "trained on photos, 0 for drawn faces or digits). About 0.6 s a face on a CPU.",
                           show_default=False, callback=tune_steps)
strict_option = typer.Option(False, "--strict", help="Stop at the first image that cannot be read or shows no "
                             "face; by default one found in a folder (or on stdin) is skipped, and counted.")


def plan_outputs(files: Sequence[str | Path], as_json: bool = False, folders: Sequence[str | Path] = (),
                 inputs: Sequence[str | Path] = (), models: Sequence[str] = ()) -> None:
    """The output rule (see outputs.py) for a command's outputs, and stdout claimed once: by `-o -` or --json."""
    if as_json and any(str(target) == "-" for target in files):
        raise FaceAlgebraError("-o - and --json would both write to stdout; choose one")
    guard(files, folders, inputs, models)


def check_latents_name(path: str, option: str) -> None:
    """Latents go to a .npz: the suffix keeps a slip such as `-o photo.jpg` from replacing a photo with them."""
    if Path(path).suffix.lower() != ".npz":
        raise FaceAlgebraError(f"{option} {path}: latents are written as .npz; name the file so")


def load_for_photos(model: str, device: str, align: str, face: Optional[int], strict: bool = False,
                    refine: int = 0, tune: Optional[int] = None) -> tuple["LoadedModel", "PhotoInput"]:
    """The model of an editing command, and how photos become its input (--align, --face, --refine and --tune
    already checked)."""
    from facealgebra import editing
    from facealgebra.align import photo_input

    loaded = editing.load_for_editing(model, device, refine, tune)
    return loaded, photo_input(loaded.preprocess, align, face, model, loaded.training.get("data", ""), strict, say)


def upscale_factor(size: Optional[int], image_size: int) -> int:
    if size is None:
        return 1
    if size < image_size or size % image_size:
        raise FaceAlgebraError(f"--size {size}: must be a multiple of the model's {image_size} pixels")
    return size // image_size


def report(path: str | Path, latents: "Latents", as_json: bool, held: Optional[str] = None) -> None:
    """Say on stderr where an output went and what it holds (`held`: an image's size; by default its count of
    latents), unless it went to stdout; with --json, also print its line on stdout."""
    if str(path) != "-":
        count = f"{len(latents)} latent{'' if len(latents) == 1 else 's'}"
        say(f"wrote {path} ({held or count})")
    if as_json:
        print(json.dumps({"path": str(path), "norms": latents.mean_norms()}), flush=True)


def write_image(image: "np.ndarray", out: str | Path, scale: int, latents: "Latents", as_json: bool) -> None:
    from facealgebra.images import check_picture_size, to_pil

    check_picture_size(out, image.shape[1] * scale, image.shape[2] * scale)
    save_output(to_pil(image, scale), out, latents, as_json)


def save_output(image: "Image.Image", out: str | Path, latents: "Latents", as_json: bool,
                like: Optional["Image.Image"] = None) -> None:
    """Write an output picture (in the format its suffix names; `like`: the photo it is an edit of, whose profile,
    EXIF and JPEG tables it keeps) and say where it went."""
    from facealgebra.images import save_image

    save_image(image, str(out), like)
    report(out, latents, as_json, f"{image.width}x{image.height}")


def write_gif(frames: list["Image.Image"], gif: str, latents: "Latents", as_json: bool) -> None:
    from facealgebra.images import save_gif

    save_gif(frames, gif)
    report(gif, latents, as_json, f"{frames[0].width}x{frames[0].height}, {len(frames)} frames")


@app.command()
def encode(
    inputs: Optional[list[str]] = typer.Argument(None, help="Images, folders, or - for image paths on stdin."),
    out: str = typer.Option(..., "-o", "--out", help="Output .npz of latents."),
    mean: bool = typer.Option(False, "--mean", help="Store the mean latent only (a prototype)."),
    with_dir: Optional[Path] = typer.Option(None, "--with", help="Folder of faces with the attribute."),
    without_dir: Optional[Path] = typer.Option(None, "--without", help="Folder of faces without it."),
    attr: Optional[str] = typer.Option(None, "--attr", help="Label NAME (positive when > 0) or NAME=VALUE."),
    data: Optional[str] = typer.Option(None, "--data", help="Labeled data SPEC for --attr, e.g. celeba:ROOT."),
    model: str = model_option,
    device: str = device_option,
    as_json: bool = json_option,
    align: str = align_option,
    face: Optional[int] = face_option,
    strict: bool = strict_option,
    refine: int = refine_option,
) -> None:
    """Encode images into a .npz of per-layer latents, their mean, or an attribute vector."""
    from facealgebra.align import check_align_options
    from facealgebra.operands import expand_inputs, images_in

    check_align_options(align, face)

    modes = [bool(inputs), with_dir is not None or without_dir is not None, attr is not None or data is not None]
    if sum(modes) != 1:
        raise FaceAlgebraError("give images (or folders, or -), or --with and --without, or --attr and --data")
    if modes[1] and (with_dir is None or without_dir is None):
        raise FaceAlgebraError("--with and --without go together: two folders, with and without the attribute")
    if modes[2] and (attr is None or data is None):
        raise FaceAlgebraError("--attr and --data go together, e.g. --attr Smiling --data celeba:ROOT")
    if mean and not modes[0]:
        raise FaceAlgebraError("--mean goes with images; an attribute vector is already one latent")
    paths = expand_inputs(inputs) if modes[0] else []
    sides = (images_in(with_dir), images_in(without_dir)) if modes[1] else ()
    plan_outputs([out], as_json, inputs=[*paths, *(side for group in sides for side in group)], models=[model])
    check_latents_name(out, "-o")

    from facealgebra import editing
    from facealgebra.progress import CountProgress

    loaded, photos = load_for_photos(model, device, align, face, strict, refine)
    if modes[2]:
        latents = editing.attribute_vector(loaded, data, attr)
    elif modes[1]:
        latents = editing.attribute_difference(editing.encode_files(loaded, sides[0], photos)[0],
                                               editing.encode_files(loaded, sides[1], photos)[0],
                                               f"with {with_dir} - without {without_dir}")
    else:
        progress = CountProgress("encode", len(paths))
        try:
            latents, rate = editing.encode_files(loaded, paths, photos, progress.advance,
                                                 named={Path(text) for text in inputs})
        finally:
            progress.close()
        say(f"encoded {len(latents)} image{'' if len(latents) == 1 else 's'} at {rate:.1f} images/s")
        if mean:
            latents = latents.mean(f"mean of {len(latents)} images")
    latents.save(out)
    report(out, latents, as_json)


@app.command()
def decode(
    latents_path: Path = typer.Argument(..., metavar="LATENTS.npz", help="Latents written by encode or arith."),
    out: str = typer.Option(..., "-o", "--out", help="PNG (or - for stdout) for one latent or --grid; else a folder."),
    as_grid: bool = typer.Option(False, "--grid", help="Tile all rows into one image."),
    model: str = model_option,
    device: str = device_option,
    size: Optional[int] = size_option,
    as_json: bool = json_option,
) -> None:
    """Decode latents into one image, one PNG per row in a folder, or a grid."""
    from facealgebra.images import IMAGE_SUFFIXES, output_format
    from facealgebra.latents import Latents

    latents = Latents.load(latents_path)
    one_file = out == "-" or Path(out).suffix.lower() in IMAGE_SUFFIXES  # else a folder, one image per row
    if one_file and not as_grid and len(latents) != 1:
        raise FaceAlgebraError(f"{latents_path} holds {len(latents)} latents: give a folder for -o, or --grid")
    if as_grid and not one_file:
        raise FaceAlgebraError(f"-o {out}: --grid writes one image; give an image path such as grid.png, or -")
    if one_file:
        output_format(out)
        plan_outputs([out], as_json, inputs=[latents_path], models=[model])
    else:  # the row count first: planning millions of paths is itself the memory the bound prevents
        if len(latents) > MAX_FOLDER_IMAGES:
            raise FaceAlgebraError(f"{latents_path} holds {len(latents):,} latents, over the {MAX_FOLDER_IMAGES:,} "
                                   f"pictures decode writes into one folder")
        paths = row_paths(Path(out), latents.names)
        plan_outputs(paths, as_json, folders=[out], inputs=[latents_path], models=[model])

    from facealgebra import editing
    from facealgebra.images import check_picture_size, grid, grid_shape

    loaded = editing.load_for_editing(model, device)
    latents.check_model(loaded.fingerprint, editing.dims(loaded), str(latents_path))
    side = loaded.model.cfg.image_size
    scale, columns = upscale_factor(size, side), math.ceil(math.sqrt(len(latents)))
    if as_grid:  # before decoding: a grid too large to write is known from the row count alone
        check_picture_size(out, *(scale * length for length in grid_shape(len(latents), columns, side, side)))
    if one_file:
        images = editing.decode(loaded, latents)
        write_image(grid(images, columns) if as_grid else images[0], out, scale, latents, as_json)
        return
    for start in range(0, len(latents), DECODE_CHUNK):  # a chunk at a time, so memory stays bounded
        chunk = latents.select(slice(start, start + DECODE_CHUNK))
        for row, image in enumerate(editing.decode(loaded, chunk), start=start):
            write_image(image, paths[row], scale, latents.select(slice(row, row + 1)), as_json)


def row_paths(folder: Path, names: Sequence[str]) -> list[Path]:
    """decode's file for each row: the row number keeps same-named photos apart."""
    return [folder / f"{row:04d}-{file_stem(name)}.png" for row, name in enumerate(names)]


def file_stem(name: str) -> str:
    """A safe file-name stem from a latent's name (often the path of the photo it came from): letters and digits
    of any script are kept; path separators, control characters and shell-unsafe punctuation become _."""
    return re.sub(r"[^\w.-]+", "_", Path(name).stem)[:60] or "latent"


@app.command()
def traverse(
    layer: Optional[str] = typer.Option(None, "--layer", help="Layer K to vary (1 = lowest level), or all."),
    value_range: float = typer.Option(3.0, "--range", help="Layer K walks from -range to +range."),
    steps: int = typer.Option(9, "--steps", help="Columns per panel."),
    samples: int = typer.Option(8, "--samples", help="Rows: prior draws (or directions, with --from)."),
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="Seed of the prior draws."),
    from_operand: Optional[str] = typer.Option(None, "--from", help="Keep the other layers of this image or .npz."),
    between: Optional[tuple[str, str]] = typer.Option(None, "--between", help="Interpolate from A to B instead."),
    spherical: bool = typer.Option(False, "--slerp", help="With --between: spherical, not straight, steps."),
    out: str = typer.Option(..., "-o", "--out", help=OUT_IMAGE_HELP),
    gif: Optional[str] = typer.Option(None, "--gif", help="Also write an animation, one frame per step."),
    decoded: bool = typer.Option(False, "--decoded", help="With --from PHOTO: draw the model's decoded faces "
                                 "instead of the photo with each step's change applied."),
    model: str = model_option,
    device: str = device_option,
    size: Optional[int] = typer.Option(None, "--size", help=SIZE_HELP + " With --from PHOTO: the longer side of "
                                       f"each photo tile (default {TILE_SIDE}, less where the grid would be over "
                                       f"{MAX_GRID_WIDTH} pixels wide)."),
    as_json: bool = json_option,
    align: str = align_option,
    face: Optional[int] = face_option,
    refine: int = refine_option,
    tune: Optional[int] = tune_option,
) -> None:
    """Draw a traversal grid (rows x steps per layer) or, with --between A B, an interpolation strip. With --from
    PHOTO, each tile is that photo with the walk's change applied."""
    from PIL import Image

    from facealgebra.algebra import parse_layers
    from facealgebra.align import check_align_options
    from facealgebra.images import output_format
    from facealgebra.operands import read_operand

    check_align_options(align, face)

    if (layer is None) == (between is None):
        raise FaceAlgebraError("give --layer K (or --layer all), or --between A B")
    if between is not None and from_operand is not None:
        raise FaceAlgebraError("--from goes with --layer; --between draws its own two ends")
    if spherical and between is None:
        raise FaceAlgebraError("--slerp goes with --between")
    if steps < 2 or samples < 1 or not 0 < value_range <= MAX_RANGE:
        raise FaceAlgebraError(f"--steps must be at least 2, --samples at least 1 and --range above 0 and at most "
                               f"{MAX_RANGE:g} (the prior's codes lie within about 4)")
    layers = None if layer in (None, "all") else parse_layers(layer, "--layer")
    if layers is not None and len(layers) != 1:
        raise FaceAlgebraError(f"--layer {layer}: one layer, or all")
    output_format(out)
    operand_texts = list(between) if between else [from_operand] if from_operand else []
    plan_outputs([out, *([gif] if gif else [])], as_json, inputs=operand_texts, models=[model])
    if gif is not None and Path(gif).suffix.lower() != ".gif":
        raise FaceAlgebraError(f"--gif {gif}: an animation is written as GIF; name the file .gif")
    operands = {text: read_operand(text) for text in operand_texts}
    photo = operands.get(from_operand) if not decoded else None
    if photo is not None and not isinstance(photo, Image.Image):
        photo = None  # a .npz or folder: no photo to edit, the decoded faces are drawn
    if photo is not None and size is not None and not 16 <= size <= MAX_TILE_SIDE:
        raise FaceAlgebraError(f"--size {size}: a photo tile's longer side must be from 16 to {MAX_TILE_SIDE}")
    if decoded and not from_operand:
        raise FaceAlgebraError("--decoded goes with --from PHOTO (the other traversals are drawn decoded)")

    from facealgebra import editing
    from facealgebra.algebra import check_layers, interpolate
    from facealgebra.images import to_pil

    loaded, photos = load_for_photos(model, device, align, face, refine=refine, tune=tune)
    num_layers, side = loaded.model.cfg.num_layers, loaded.model.cfg.image_size
    layers = layers or tuple(range(1, num_layers + 1))
    rows, panels = (1, 1) if between is not None else (samples, len(layers))
    if photo is not None:  # a photo tile: `size` on its longer side, by default as large as keeps the grid viewable
        columns = panels * steps + panels - 1  # panel_grid: a blank column between panels, 2 pixels around each
        tile_side = min(size or max(16, min(TILE_SIDE, (MAX_GRID_WIDTH - 2) // columns - 2)), max(photo.size))
        scale = 1
    else:  # a decoded face: the model's size, scaled up
        tile_side, scale = side, upscale_factor(size, side)
    check_traversal_size(out, rows, panels, steps, tile_side, scale)
    if between is not None:
        start, end = (editing.code_of(loaded, text, operands[text], photos) for text in between)
        codes = interpolate(start, end, steps, spherical)
    else:
        check_layers(layers, num_layers, "--layer")
        base = None
        if photo is not None:
            base, placement = editing.face_code(loaded, photos, photo, from_operand)
        elif from_operand:
            base = editing.code_of(loaded, from_operand, operands[from_operand], photos)
        codes = editing.traversal_codes(loaded, layers, value_range, steps, samples, seed, base)
    images = (editing.photo_tiles(loaded, photo, base, placement, codes, tile_side) if photo is not None
              else editing.decode(loaded, codes))  # every photo tile is the photo with that step's change
    images = images.reshape(rows, panels, steps, *images.shape[1:])
    write_image(editing.panel_grid(images), out, scale, codes, as_json)
    if gif is not None:
        write_gif([to_pil(editing.frame(images, step), scale) for step in range(steps)], gif, codes, as_json)


def check_traversal_size(out: str, rows: int, panels: int, steps: int, tile_side: int, scale: int) -> None:
    """Refuse a traversal grid too large to write before any code is drawn or tile decoded (the panel grid of
    editing.panel_grid: panels side by side, a blank column between them)."""
    from facealgebra.images import check_picture_size, grid_shape

    columns = panels * steps + panels - 1
    height, width = grid_shape(rows * columns, columns, tile_side, tile_side)
    check_picture_size(out, height * scale, width * scale)


@app.command()  # its words pass terms_as_written first, so `-0.5*b.jpg` reaches the expression parser
def arith(
    expression: Optional[list[str]] = typer.Argument(None, metavar="EXPR",
                                                     help="Terms such as a.jpg - b.jpg + 1.5*smile.npz; a lone - "
                                                     "takes photo paths from stdin, one a line (a batch edit)."),
    out: str = typer.Option(..., "-o", "--out", help="The edited photo (its suffix names the format: .png, .jpg, "
                            "...); - writes PNG bytes to stdout; a folder for a batch edit."),
    onto: Optional[str] = typer.Option(None, "--onto", help="The photo term the edit lands on (default: the "
                                       "stdin photos, else the last photo with a + sign, c in a - b + c)."),
    strength: float = typer.Option(1.0, "--strength", help="Scale the change made to the photo: 0 leaves it as it "
                                   "was, 2 doubles the edit."),
    decoded: bool = typer.Option(False, "--decoded", help="Write the model's own decoded face (a small square "
                                 "picture) instead of the edited photo."),
    every_face: bool = typer.Option(False, "--every-face", help="Edit every face of the photo, each by the same "
                                    "arithmetic on its own code."),
    layers_text: Optional[str] = typer.Option(None, "--layers", help="Only these layers, e.g. 1,2; the others "
                                              "stay those of the face edited."),
    save_latent: Optional[str] = typer.Option(None, "--save-latent", help="Also save the result as a .npz."),
    panel: bool = typer.Option(False, "--panel", help="Draw a strip: every term as the model sees it, then the "
                               "result (then any --compare images); implies --decoded."),
    compare: Optional[list[str]] = typer.Option(None, "--compare", help="With --panel: an image to show after "
                                                "the result, such as the expected answer. Repeatable."),
    model: str = model_option,
    device: str = device_option,
    size: Optional[int] = size_option,
    as_json: bool = json_option,
    align: str = align_option,
    face: Optional[int] = typer.Option(None, "--face", help="Which face of the photo edited to use, numbered from "
                                       "1, left to right (default: the largest; the other photos give their largest)."),
    strict: bool = strict_option,
    refine: int = refine_option,
    tune: Optional[int] = tune_option,
) -> None:
    """Edit a face by latent arithmetic: the change that a - b makes to c's code is applied to the photo c itself,
    at its own size. A term is an image, a .npz (its latent or mean) or a folder (its mean code)."""
    from PIL import Image

    from facealgebra.algebra import STDIN, edited_term, parse, parse_layers
    from facealgebra.align import check_align_options
    from facealgebra.images import check_editable, load_image, output_format
    from facealgebra.operands import expand_inputs, read_operand

    check_align_options(align, face)
    tokens = expression or []
    terms = parse(tokens)
    layers = parse_layers(layers_text, "--layers") if layers_text is not None else None
    if compare and not panel:
        raise FaceAlgebraError("--compare goes with --panel: it adds a column to the strip")
    if save_latent is not None:
        check_latents_name(save_latent, "--save-latent")
    if not (math.isfinite(strength) and abs(strength) <= MAX_STRENGTH):
        raise FaceAlgebraError(f"--strength {strength}: give a number from -{MAX_STRENGTH:g} to {MAX_STRENGTH:g}")
    if every_face and face is not None:
        raise FaceAlgebraError("--every-face edits each face; --face picks one: pass only one of them")
    operands = {term.operand: read_operand(term.operand) for term in terms if term.operand != STDIN}
    is_photo = [term.operand == STDIN or isinstance(operands[term.operand], Image.Image) for term in terms]
    target = edited_term(terms, is_photo, onto)
    decoded = decoded or panel or target is None  # with no photo term there is no photo to edit
    if decoded and (strength != 1.0 or every_face):
        raise FaceAlgebraError("--strength and --every-face change a photo: they need a photo term, and do not "
                               "go with --decoded or --panel")
    if size is not None and not decoded:
        raise FaceAlgebraError(f"--size {size} draws the model's picture larger; an edited photo keeps its own "
                               "size (add --decoded for the model's picture)")
    batch = target is not None and terms[target].operand == STDIN
    if target is not None and not batch and not decoded:
        check_editable(operands[terms[target].operand], terms[target].operand)  # refused before the model loads
    if batch:
        if panel:
            raise FaceAlgebraError("--panel draws one figure: it does not go with a batch edit (-)")
        jobs = batch_outputs(expand_inputs([STDIN], must_exist=False), out, decoded)
        written, folders = [destination for _, destination in jobs], [out]
    else:
        jobs = [(None, out)]
        output_format(out)
        written, folders = [out], []
    plan_outputs([*written, *([save_latent] if save_latent else [])], as_json, folders,
                 inputs=[*operands, *(compare or []), *(path for path, _ in jobs if path is not None)], models=[model])
    expected = [load_image(path) for path in compare or []]

    from facealgebra import editing

    loaded, photos = load_for_photos(model, device, align, face, strict, refine, tune)
    scale = upscale_factor(size, loaded.model.cfg.image_size)
    edit = editing.Arithmetic(loaded, photos, terms, operands, target, layers, " ".join(tokens))
    guard = identity_guard() if not decoded else None
    ready, skipped = [], []  # every photo is read and its faces found before the first output is written
    for path, destination in jobs:
        name = str(path) if path is not None else terms[target].operand if target is not None else None
        try:
            photo = None if name is None else load_image(path) if path is not None else operands[name]
            if photo is not None and not decoded:
                warn(check_editable(photo, name))
            faces = edit.faces_of(photo, name, every_face) if photo is not None else []
        except FaceAlgebraError as exc:  # a missing, unreadable or faceless photo does not stop a batch
            if strict or path is None:
                raise
            skipped.append(str(exc))
            continue
        ready.append((path, destination, photo if path is None else None, faces))  # a batch's photos: read again
    results = []
    for path, destination, photo, faces in ready:
        photo = load_image(path) if path is not None else photo
        rows = edit.apply(faces)
        result = editing.stack([after for _, after, _ in rows]) if rows else edit.without_photo()
        results.append(result)
        if decoded:  # the photo's face (the first) is drawn by its own decoder, as its edit would be
            drawer = editing.face_decoder(loaded, rows[0][0], rows[0][2]) if rows else None
            image = editing.decode(loaded, result.select(slice(0, 1)), drawer)[0]
            if panel:
                image = edit.panel(rows[0][0] if rows else None, image, expected, compare or [])
            write_image(image, destination, scale, result, as_json)
        else:
            edited_photo = editing.edit_photo(loaded, photo, edit.strokes(rows), strength)
            save_output(edited_photo, destination, result, as_json, photo)
            guard_identity(guard, photo, edited_photo, destination)
    if skipped:
        say(f"skipped {len(skipped)} of {len(jobs)} photos: {'; '.join(skipped)}")
        if not results:
            raise FaceAlgebraError("no photo could be edited")
    if save_latent is not None:
        combined = editing.stack(results)
        combined.save(save_latent)
        report(save_latent, combined, as_json)


MAX_STRENGTH = 10.0  # beyond this a change only saturates the pixels


def identity_guard():
    """dlib's identity judge when the judges extra is installed (arith then reports each edit's identity
    distance), else None: editing never needs the extra."""
    from facealgebra.judges import installed

    if not installed():
        return None
    from facealgebra.judges.identity import IdentityJudge

    return IdentityJudge.load()


def guard_identity(judge, before: "Image.Image", after: "Image.Image", destination: str) -> None:
    """Say how far the edited face is from the person (dlib L2 between the largest faces); warn past 0.6."""
    if judge is None:
        return
    from facealgebra.judges.identity import SAME_PERSON

    import warnings

    with warnings.catch_warnings():  # Pillow's notes on the photo were dealt with when it was read for the edit
        warnings.simplefilter("ignore", UserWarning)
        distance = judge.distance(before, after)
    if distance is None:
        say(f"warning: {destination}: no face found after the edit to compare with the person")
    elif distance >= SAME_PERSON:
        say(f"warning: {destination}: identity distance {distance:.3f}, past {SAME_PERSON}: the edited face may "
            "no longer be the same person")
    else:
        say(f"{destination}: identity distance {distance:.3f} (the same person below {SAME_PERSON})")


def batch_outputs(paths: list[Path], out: str, decoded: bool) -> list[tuple[Path, str]]:
    """(photo, output) pairs of a batch edit: each photo keeps its name in the output folder (and its format,
    when it is one that can be written; else PNG). Whether they collide is the output guard's to say."""
    from facealgebra.images import OUTPUT_FORMATS

    folder = Path(out)
    named_folder = out.endswith(("/", os.sep)) or folder.is_dir()  # `-o edited.jpg/` names a folder
    if out == "-" or (folder.suffix.lower() in OUTPUT_FORMATS and not named_folder):
        raise FaceAlgebraError(f"-o {out}: a batch edit (-) writes one photo per input into a folder: give a "
                               "folder's path")
    jobs = []
    for path in paths:
        suffix = ".png" if decoded or path.suffix.lower() not in OUTPUT_FORMATS else path.suffix
        jobs.append((path, str(folder / f"{path.stem}{suffix}")))
    return jobs


# ---- vectors ---------------------------------------------------------------------------------------------------
@app.command()
def vectors(
    model: str = model_option,
    as_json: bool = typer.Option(False, "--json", help="One JSON line per attribute instead of the table."),
) -> None:
    """The model's attribute catalogue: each name that arith takes (`arith me.jpg + glasses`), the layers it
    edits, its AUC in each layer, how many faces it was learned from (with it, without it), its scales
    (how many times its average change one unit of `+ name` and of `- name` moves, calibrated by the judges; `&`
    names an attribute that `- name` takes away too) and where on a photo
    it lands (region: the head, the lower face for an expression, the eyes for glasses; "untuned": its change is
    drawn by the model's own decoder, not the one tuned to the photo; "untuned +": only when added)."""
    from facealgebra.catalogue import model_catalogue
    from facealgebra.checkpoint import load_model

    loaded = load_model(model)
    catalogue = model_catalogue(loaded.path, loaded.fingerprint, model)
    rows = []
    negative = catalogue.negative_scales()
    for row, name in enumerate(catalogue.names):
        layers = [int(layer) + 1 for layer in catalogue.layers[row].nonzero()[0]]
        rows.append({"name": name, "layers": layers, "auc": [round(float(v), 3) for v in catalogue.auc[row]],
                     "with": int(catalogue.positives[row]), "without": int(catalogue.negatives[row]),
                     "scale": round(float(catalogue.scale[row]), 3), "negative_scale": round(float(negative[row]), 3),
                     "negative_also": catalogue.also_subtracted(name), "region": catalogue.region(name),
                     "untuned": catalogue.untuned_of(name, False),
                     "negative_untuned": catalogue.untuned_of(name, True), "label": catalogue.rules[row]})
    if as_json:
        for entry in rows:
            print(json.dumps(entry))
        return
    from facealgebra.evaluate import table

    layer_names = [f"AUC z{layer + 1}" for layer in range(catalogue.layers.shape[1])]
    for line in table(["name", "layers", *layer_names, "with", "without", "scale +", "scale -", "region", "label"],
                      [[entry["name"], ",".join(map(str, entry["layers"])), *(f"{v:.2f}" for v in entry["auc"]),
                        str(entry["with"]), str(entry["without"]), f"{entry['scale']:g}",
                        " & ".join(filter(None, [f"{entry['negative_scale']:g}", entry["negative_also"]])),
                        entry["region"] + catalogue.untuned_note(entry["name"]), entry["label"]]
                       for entry in rows]):
        print(line)


# ---- score -----------------------------------------------------------------------------------------------------
@app.command()
def score(
    inputs: list[str] = typer.Argument(..., metavar="PHOTOS", help="Photos, folders of photos, or - (paths on "
                                       "stdin, one a line)."),
    identity: bool = typer.Option(False, "--identity", help="Also print dlib's 128-number face descriptor."),
) -> None:
    """What the offline judges read in every face of the photos, one JSON line a face on stdout: FER's emotion
    probabilities; from the face parser the share of the face in glasses, hat and open mouth, hair colour (CIE
    Lab) and skin tone (ITA angle); yes/no flags from them; with --identity the descriptor. Needs the judges
    extra. A picture of 256 pixels or less in which no face is found is read as a face already aligned."""
    from facealgebra.judges import check_installed
    from facealgebra.operands import expand_inputs

    check_installed()
    paths = expand_inputs(inputs)

    from facealgebra.images import load_image
    from facealgebra.judges.reading import Judges

    judges, faceless = Judges(), []
    for path in paths:
        places = judges.places(load_image(path))
        if not places:
            faceless.append(str(path))
        for number, (place, reading) in enumerate(zip(places, judges.read_frames([p.frame for p in places],
                                                                                   identity)), start=1):
            line = {"photo": str(path), "face": number, "box": place.box, **reading}
            print(json.dumps(rounded(line)), flush=True)
    if faceless:
        say(f"no face found in {len(faceless)} of {len(paths)} photos: {', '.join(faceless[:5])}")


def rounded(value, digits: int = 5):
    """Floats in nested dicts and lists rounded, for JSON a person reads."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(item, digits) for item in value]
    return value


# ---- align -----------------------------------------------------------------------------------------------------
@app.command("align")
def align_photos(
    inputs: list[str] = typer.Argument(..., metavar="PHOTOS", help="Photos, or folders of photos."),
    out: Path = typer.Option(..., "-o", "--out", help="Folder for the crops: one PNG per face."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", help="Align onto this model's landmark template. "
                              + MODEL_HELP),
    face: Optional[int] = typer.Option(None, "--face", help="Only this face of each photo, numbered from 1, left "
                                       "to right (default: every face)."),
) -> None:
    """Find every face in the photos and write it aligned onto a model's landmark template, in the frame that
    model's photos had: a training folder from raw photos (then train --data folder:OUT)."""
    from facealgebra.align import check_align_options
    from facealgebra.images import list_images

    check_align_options("on", face)
    guard(folders=[out])
    named = {}  # output stem -> photo: a folder's photos keep their place under it
    for text in inputs:
        folder = Path(text)
        if not folder.exists():
            raise FaceAlgebraError(f"{folder}: no such file or folder")
        photos = [(path, path.relative_to(folder)) for path in list_images(folder)] if folder.is_dir() else \
            [(folder, Path(folder.name))]
        if folder.is_dir() and not photos:
            raise FaceAlgebraError(f"{folder}: folder holds no images")
        for path, relative in photos:
            stem = relative.parent / relative.stem
            if stem in named:
                raise FaceAlgebraError(f"{path} and {named[stem]} would write the same crops; rename one")
            named[stem] = path

    from facealgebra import align
    from facealgebra.checkpoint import load_model
    from facealgebra.images import load_image, save_image

    template = align.Template.of(load_model(model).preprocess)
    if template is None:
        raise FaceAlgebraError(f"--model {model}: has no landmark template to align onto; train it (or --resume it) "
                               "with facealgebra[align] installed")
    found = {}  # every photo is searched before any crop is written, so a photo without a face leaves no output
    for stem, path in named.items():
        faces = align.find_faces(load_image(path))
        if not faces:
            raise FaceAlgebraError(f"no face found in {path}")
        found[stem] = {face: align.pick_face(faces, face, str(path))} if face else dict(enumerate(faces, start=1))
    crops = {(stem, number): out / stem.parent / f"{stem.name}-face{number}.png"
             for stem, faces in found.items() for number in faces}
    guard(files=list(crops.values()), folders=[out], inputs=list(named.values()), models=[model])
    for stem, faces in found.items():
        image = load_image(named[stem])
        for number, detected in faces.items():
            save_image(align.aligned_crop(image, detected, template), str(crops[stem, number]))
    count = sum(len(faces) for faces in found.values())
    say(f"aligned {count} face{'' if count == 1 else 's'} from {len(found)} photo{'' if len(found) == 1 else 's'} "
        f"into {out}")


# ---- explore ---------------------------------------------------------------------------------------------------
@app.command()
def explore(
    photo: Optional[str] = typer.Argument(None, metavar="PHOTO", help="A photo to open in the page first."),
    model: str = model_option,
    port: int = typer.Option(8765, "--port", help="The port on 127.0.0.1 (0: any free one)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Only print the page's address."),
) -> None:
    """Edit a photo with sliders in the browser: each layer's principal directions and named attributes, the
    full photo edited as arith edits it, and the arith command that gives the same pixels. Serves a page to this
    machine only (127.0.0.1) and prints its address; Ctrl-C stops."""
    from facealgebra.images import load_image

    if photo is not None:
        load_image(photo)  # a bad photo is named before torch loads
    if not 0 <= port <= 65535:
        raise FaceAlgebraError(f"--port {port}: give a port from 1 to 65535, or 0 for any free one")
    from facealgebra.explore.server import run

    loaded, photos = load_for_photos(model, "auto", "auto", None)  # arith's defaults, so its command matches
    named = str(loaded.path.resolve()) if Path(model).expanduser().exists() else model  # a bundled name stays
    run(loaded, photos, named, port, Path(photo).resolve() if photo else None, not no_browser, say)


def stop_on_termination_signals() -> None:
    """Make SIGTERM (schedulers, `kill`) and SIGINT act as Ctrl-C, even where a shell started us with SIGINT
    ignored (`cmd &`), so a long run always saves a checkpoint before it stops."""
    import signal

    def interrupt(signum, frame):
        raise Interrupted("interrupted")

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


# ---- entry point -----------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    argv, debug = take_debug(list(sys.argv[1:] if argv is None else argv))
    command = get_command(app)
    argv = terms_as_written(command, argv)
    try:
        # make_context and invoke, not click's main(): main() turns any EOFError into Abort ("interrupted")
        with command.make_context("facealgebra", argv) as context:
            command.invoke(context)
        code = 0
    except NoArgsIsHelpError as exc:  # bare `facealgebra`: as click does, the help on stderr and exit 2
        say(exc.format_message())
        code = exc.exit_code
    except FaceAlgebraError as exc:
        code = fail(str(exc), 2, debug)
    except TrainingError as exc:
        code = fail(str(exc), 1, debug)
    except Interrupted as exc:
        code = fail(str(exc), 130, debug)
    except typer.TyperException as exc:  # click's usage errors
        code = fail(exc.format_message(), getattr(exc, "exit_code", 2), debug)
    except typer.Exit as exc:
        code = exc.exit_code
    except KeyboardInterrupt:
        code = fail("interrupted", 130, debug)
    except BrokenPipeError:  # `facealgebra ... -o - | head -c 10`: the reader left, nothing more to say
        sys.stderr.close()
        code = 0
    except Exception as exc:  # noqa: BLE001  (our bug or the machine's: still one line, unless --debug)
        code = fail(f"{type(exc).__name__}: {exc} (rerun with --debug for the traceback)", 1, debug)
    sys.exit(code)


def terms_as_written(command, argv: list[str]) -> list[str]:
    """arith's expression, every term as written: a negative weight such as `-1.5*vectors/smile.npz` starts with
    '-', and click would read it as a cluster of short options (its 'o' becoming -o). So each word of an arith
    command line that is not one of arith's own options (or such an option's value) moves, in order, after a
    `--`, where click takes it as an argument whatever its letters."""
    position = next((index for index, word in enumerate(argv) if not word.startswith("-")), None)
    if position is None or argv[position] != "arith":
        return argv
    takes_value = {"-h": False, "--help": False}
    for param in command.commands["arith"].params:
        if param.param_type_name == "option":
            for name in (*param.opts, *param.secondary_opts):
                takes_value[name] = not (param.is_flag or param.count)
    options, terms, words = [], [], iter(argv[position + 1:])
    for word in words:
        if word == "--":
            terms += words
        elif word in takes_value:
            value = next(words, None) if takes_value[word] else ""
            if value is None:  # an option missing its value: click says so
                return argv
            options += [word, value] if takes_value[word] else [word]
        elif word.startswith("--") and word.split("=", 1)[0] in takes_value:  # --out=x.png
            options.append(word)
        else:
            terms.append(word)
    return [*argv[:position + 1], *options, *(["--", *terms] if terms else [])]


def take_debug(argv: list[str]) -> tuple[list[str], bool]:
    """Remove --debug from anywhere before `--` (click takes the root's options only before the command)."""
    end = argv.index("--") if "--" in argv else len(argv)
    options = [arg for arg in argv[:end] if arg != "--debug"]
    return options + argv[end:], len(options) < end


def fail(message: str, code: int, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exc()
    say(f"error: {message}")
    return code
