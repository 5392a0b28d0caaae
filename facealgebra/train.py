"""The training loop: batches, loss, Adam, progress, sample grids, checkpoints and resume, for one process or
for several under torchrun (DistributedDataParallel; see distributed.py).

Batches are stateless functions of (seed, step): step s of epoch e takes a slice of a permutation seeded by
(seed, e). A resumed run therefore sees exactly the batches the uninterrupted run would have seen, and only the
optimizer, the step and the RNG states (for the reparameterisation noise, the prior draws and augmentation) need
saving.

Several processes. The global batch of a step is batch_size x world_size images, drawn from (seed, step) exactly
as one process would draw a batch of that size; rank r trains on rows r*batch_size ... (r+1)*batch_size of it, so
within an epoch every process sees its own shard of the permutation. Every process draws every random number of
the global batch (flips, shifts, reparameterisation noise, prior draws) and keeps the rows of its own images, so
the random states of all processes stay equal to each other and to those of one process training on the whole
global batch. The regularisers are those of the global batch (see `global_regularisers`), so N processes with
--batch-size B train the same model as one process with --batch-size N*B, up to float rounding; and the saved
state does not depend on the number of processes, which lets --resume continue a run with any number of them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, TextIO

import numpy as np
import torch

from facealgebra import __version__, faults
from facealgebra.align import detected_template
from facealgebra.checkpoint import (LoadedModel, TrainState, load_model, load_train_state, write_model,
                                    write_train_state)
from facealgebra.config import ModelConfig, TrainConfig, get_preset
from facealgebra.data import ImageSet, load_data
from facealgebra.distributed import Ranks, average, gather_rows, wrap
from facealgebra.errors import FaceAlgebraError, Interrupted, TrainingError
from facealgebra.fileio import (COMMIT_MARKER, LOCK_FILE, atomic_files, atomic_path,
                                finish_commit, folder_lock, remove_stale_temps)
from facealgebra.images import grid, save_image, to_pil
from facealgebra.losses import layer_regularisers, reconstruction
from facealgebra.model import VLAE
from facealgebra.outputs import guard
from facealgebra.perceptual import perceptual_loss

if TYPE_CHECKING:
    from facealgebra.progress import TrainProgress

MODEL_FILE = "model.safetensors"
STATE_FILE = "train_state.safetensors"
METRICS_FILE = "metrics.jsonl"
SAMPLES_DIR = "samples"


@dataclass(frozen=True)
class TrainJob:
    data: str
    preset: str
    out: Path
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int | None = None
    reg: str | None = None
    sample_every: int | None = None
    save_every: int | None = None
    augment: bool | None = None
    device: str = "auto"
    resume: bool = False
    init: str | None = None  # a model (path or bundled name) whose weights a new run starts from
    beta: float | None = None  # the regulariser's weight; the model's (or preset's) when not given
    heads: str | None = None  # a new run's latent heads; the preset's when not given
    progressive: int | None = None  # steps a layer phase of progressive training lasts; 0 is off
    perceptual: float | None = None  # weight of the perceptual loss; 0 is off


# ---- batches ---------------------------------------------------------------------------------------------------
def batch_indices(num_images: int, batch_size: int, seed: int, step: int, ranks: Ranks = Ranks()) -> torch.Tensor:
    """This process's `batch_size` images of the global batch of batch_size x world_size drawn for `step`."""
    global_size = batch_size * ranks.world_size
    steps_per_epoch = max(1, num_images // global_size)
    epoch, position = divmod(step, steps_per_epoch)
    order = torch.randperm(num_images, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return order[position * global_size:(position + 1) * global_size][own_rows(batch_size, ranks)]


def own_rows(batch_size: int, ranks: Ranks) -> slice:
    """Where this process's images sit in the global batch."""
    return slice(ranks.rank * batch_size, (ranks.rank + 1) * batch_size)


def to_float(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (N, C, H, W) on the host to float [0, 1] on the device, channels-last (as the model's weights are
    held in training: 1.2-1.4x the images/s of the default layout on a CPU too); the conversion runs on the device."""
    batch = batch.to(device, non_blocking=True).float().div_(255.0)
    return batch.contiguous(memory_format=torch.channels_last)


def augment(batch: torch.Tensor, max_shift: int, ranks: Ranks = Ranks()) -> torch.Tensor:
    """Random horizontal flips and shifts of up to max_shift pixels (edges replicated), per image. The random
    numbers are drawn for the global batch; this process applies those of its own images."""
    count, rows = batch.shape[0] * ranks.world_size, own_rows(batch.shape[0], ranks)
    flip = (torch.rand(count) < 0.5)[rows]
    batch = torch.where(flip.to(batch.device)[:, None, None, None], batch.flip(3), batch)
    if max_shift:
        padded = torch.nn.functional.pad(batch, [max_shift] * 4, mode="replicate")
        size = batch.shape[-1]
        shifts = torch.randint(0, 2 * max_shift + 1, (count, 2))[rows]
        channels_last = batch.is_contiguous(memory_format=torch.channels_last)
        # each image's window, gathered at once (one indexing op, not one slice per image: on a GPU the loop's
        # launches cost more than the model's step at batch 128)
        offsets = torch.arange(size, device=batch.device)
        shifts = shifts.to(batch.device)
        ys = (shifts[:, 0, None] + offsets)[:, None, :, None]
        xs = (shifts[:, 1, None] + offsets)[:, None, None, :]
        images = torch.arange(len(batch), device=batch.device)[:, None, None, None]
        batch = padded[images, torch.arange(batch.shape[1], device=batch.device)[None, :, None, None], ys, xs]
        if channels_last:  # keep to_float's layout, which the indexing drops
            batch = batch.contiguous(memory_format=torch.channels_last)
    return batch


# ---- sample grid -----------------------------------------------------------------------------------------------
@torch.no_grad()
def sample_grid(model: VLAE, images: torch.Tensor, seed: int) -> np.ndarray:
    """Rows: inputs, reconstructions, then one row per layer with that layer drawn from the prior and the
    other layers fixed to one shared prior draw (so each row shows what its layer controls)."""
    model.eval()
    columns = images.shape[0]
    rows = [images, model.decode(model.encode(images))]
    shared = model.prior_latents(1, seed=seed, device=images.device)
    varied = model.prior_latents(columns, seed=seed + 1, device=images.device)
    for layer in range(model.cfg.num_layers):
        latents = [z.expand(columns, -1).clone() for z in shared]
        latents[layer] = varied[layer]
        rows.append(model.decode(latents))
    model.train()
    return grid(torch.cat(rows).float().cpu().numpy(), columns)


# ---- the loop --------------------------------------------------------------------------------------------------
# a resumed run keeps these unless a flag overrides them (older files lack the last three: the preset's then)
RESUMED_SETTINGS = ("batch_size", "lr", "seed", "augment", "save_every", "sample_every", "progressive", "perceptual")


def resolve_configs(job: TrainJob, data: ImageSet, previous: LoadedModel | None,
                    world_size: int = 1, initial: LoadedModel | None = None) -> tuple[ModelConfig, TrainConfig]:
    """The model config (the saved run's when resuming, the --init model's when starting from one) and the
    training config: the preset's defaults, then the saved run's settings when resuming (so batches continue as
    before), then the flags given now. A run started from --init takes only the shape from that model: its
    training settings are the preset's and the flags', as for any new run.

    batch_size is per process, as --batch-size is. A saved run records its global batch, and a resumed run keeps
    that global batch by sharing it out over however many processes it has now, so it continues with the very
    batches it would have seen. The learning rate is the saved run's or --lr's, never rescaled."""
    preset = get_preset(job.preset)
    start = previous or initial
    if start:
        model_cfg = start.model.cfg
        source = f"the run in {job.out}" if previous else f"--init {job.init}"
        for name in ("reg", "heads"):  # fixed by the model's weights: a started-from model keeps its own
            wanted, trained_with = getattr(job, name), getattr(model_cfg, name)
            if wanted and wanted != trained_with:
                raise FaceAlgebraError(f"--{name} {wanted}: {source} was trained with --{name} {trained_with}")
    else:
        model_cfg = dataclasses.replace(preset.model, channels=data.channels, reg=job.reg or preset.model.reg,
                                        heads=job.heads or preset.model.heads)
    if job.beta is not None:
        if not job.beta >= 0:
            raise FaceAlgebraError(f"--beta must be 0 or more, not {job.beta}")
        model_cfg = dataclasses.replace(model_cfg, beta=job.beta)
    if previous:
        saved = {name: previous.training[name] for name in RESUMED_SETTINGS if name in previous.training}
        if "batch_size" in saved and job.batch_size is None:
            if saved["batch_size"] % world_size:
                raise FaceAlgebraError(
                    f"--resume: the run in {job.out} trained on global batches of {saved['batch_size']}, which "
                    f"{world_size} processes cannot share equally; pass --batch-size (per process) to choose anew")
            saved["batch_size"] //= world_size
        train_cfg = dataclasses.replace(preset.train, **saved)
    else:
        train_cfg = preset.train
    overrides = {
        name: getattr(job, name)
        for name in ("steps", "batch_size", "lr", "seed", "sample_every", "save_every", "augment", "progressive",
                     "perceptual")
        if getattr(job, name) is not None
    }
    train_cfg = dataclasses.replace(train_cfg, **overrides)
    for name in ("steps", "batch_size", "sample_every", "save_every"):
        if getattr(train_cfg, name) < 1:
            raise FaceAlgebraError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(train_cfg, name)}")
    if not train_cfg.lr > 0:
        raise FaceAlgebraError(f"--lr must be positive, not {train_cfg.lr}")
    if not train_cfg.perceptual >= 0:
        raise FaceAlgebraError(f"--perceptual must be 0 (off) or more, not {train_cfg.perceptual}")
    if train_cfg.progressive < 0:
        raise FaceAlgebraError(f"--progressive must be 0 (off) or more steps, not {train_cfg.progressive}")
    return model_cfg, train_cfg


def layer_gates(step: int, num_layers: int, phase: int) -> list[float] | None:
    """Progressive training's weight on each layer's latents at `step` (proVLAE, Li et al., ICLR 2020): the top
    layer is always on; layer l (0-based, shallow first) fades in linearly over [(L-1-l) x phase, (L-l) x phase),
    so the top layer trains alone first and each lower layer joins after the one above it. None when every
    layer is fully on (always, when phase is 0)."""
    if phase <= 0:
        return None
    gates = [min(max((step - (num_layers - 1 - layer) * phase) / phase, 0.0), 1.0) for layer in range(num_layers)]
    gates[-1] = 1.0
    return None if min(gates) >= 1.0 else gates


# ---- the run folder --------------------------------------------------------------------------------------------
def check_out(job: TrainJob) -> None:
    """--out and the files a run writes there, planned by the output guard: no link is written through."""
    if job.out.exists() and not job.out.is_dir():
        raise FaceAlgebraError(f"--out {job.out}: is a file, expected a folder")
    guard(files=[job.out / name for name in (MODEL_FILE, STATE_FILE, METRICS_FILE, LOCK_FILE)],
          folders=[job.out, job.out / SAMPLES_DIR], models=[job.init] if job.init else [])


@contextlib.contextmanager
def held_folder(out: Path) -> Iterator[None]:
    """--out for the length of one run: locked against a second training into it; a save that a kill cut short
    completed (when killed after its commit point) or cleared away (before it); and, should the run end before
    any checkpoint is there, what it made removed again, so that a failed start leaves no husk of a run."""
    made = [path for path in (*reversed(out.parents), out) if not path.exists()][:1]  # the outermost new folder
    made += [path for path in (out / SAMPLES_DIR, out / METRICS_FILE, out / LOCK_FILE) if not path.exists()]
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out, f"--out {out}"):
        finish_commit(out)
        remove_stale_temps(out, "|".join(map(re.escape, (MODEL_FILE, STATE_FILE, METRICS_FILE, COMMIT_MARKER))))
        remove_stale_temps(out / SAMPLES_DIR, r"step-\d{6}\.png")
        try:
            yield
        except BaseException as exc:
            if (out / MODEL_FILE).exists():
                raise
            for path in reversed(made):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            if isinstance(exc, KeyboardInterrupt):  # Ctrl-C, or SIGTERM (an Interrupted: see cli.py)
                raise Interrupted("interrupted before the first checkpoint: nothing was saved") from None
            raise


def check_saved_run(job: TrainJob) -> None:
    """What --out holds suits --resume (a model and its state) or a new run (no model), once held_folder has
    finished any save a kill cut short."""
    has_model = (job.out / MODEL_FILE).exists()
    if job.resume and not ((job.out / STATE_FILE).exists() and has_model):
        raise FaceAlgebraError(f"--resume: {job.out} holds no {MODEL_FILE} and {STATE_FILE} to continue from")
    if has_model and not job.resume:
        raise FaceAlgebraError(f"--out {job.out} already holds a model: pass --resume to continue it, or choose another folder")


def check_same_run(job: TrainJob, previous: LoadedModel, state: TrainState) -> None:
    """--resume continues the saved run as it was: its data and preset, its trainer state with its model."""
    for flag, name in (("--data", "data"), ("--preset", "preset")):
        saved = previous.training.get(name)
        if getattr(job, name) != saved:
            raise FaceAlgebraError(f"--resume: the run in {job.out} was trained with {flag} {saved}, not {flag} "
                                   f"{getattr(job, name)}: pass {flag} {saved}, or start a new run from its model "
                                   f"with --init {job.out}")
    if state.model_fingerprint != previous.fingerprint:
        raise FaceAlgebraError(f"--resume: {job.out / STATE_FILE} (step {state.step}) was saved with another model "
                               f"than {job.out / MODEL_FILE} (step {previous.training.get('steps')}): start a new "
                               f"run from that model with --init {job.out}")


def rng_states(batch_rng_device: torch.device) -> dict[str, torch.Tensor]:
    states = {"torch": torch.get_rng_state()}
    if batch_rng_device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(batch_rng_device)
    return states


def restore_rng(states: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def global_regularisers(reg: str, params: list[tuple[torch.Tensor, torch.Tensor]], samples: list[torch.Tensor],
                        values_per_image: int, ranks: Ranks) -> list[torch.Tensor]:
    """The per-layer regularisers of the global batch, computed in every process.

    MMD is computed on the latents gathered from all processes, not on each process's local batch. MMD^2 is not
    a mean of per-image terms: its U-statistic compares every pair of samples, and a mean of W local estimates
    over B samples each is another, noisier estimator that never compares two images held by different
    processes (the kernel terms over n samples have variance of order 1/n, so the per-layer match to N(0, I)
    would weaken as the run spreads over more processes). On the gathered latents the loss is the one a single
    process computes on the global batch, whatever the number of processes; the gather costs one (B, d_l)
    all-gather per layer, a few hundred bytes.

    Gradients: every process computes the same MMD (same gathered latents, same prior draws, since the random
    states are equal), so the gather's backward, which sums over processes the gradient with respect to each
    process's rows, gives W x dMMD/dz_r; DDP's averaging over W processes divides that by W again. Each parameter
    gets exactly the one-process dMMD/dtheta, with no rescaling anywhere. The reconstruction term is a mean over
    images, so its local gradients averaged by DDP are the global mean's gradient.

    KL (the baseline) is also a mean of per-image terms, so the local one suffices, for the same reason.
    """
    if reg == "mmd":
        samples = [gather_rows(z, ranks) for z in samples]
    return layer_regularisers(reg, params, samples, values_per_image)


@contextlib.contextmanager
def stop_requests() -> Iterator[Callable[[], bool]]:
    """While the loop runs, SIGINT and SIGTERM ask it to stop after the current step instead of raising wherever
    they land: a checkpoint then always holds a completed step, and under torchrun (whose agent signals every
    process, and does when one of them fails) the processes agree on the step to stop after."""
    requested: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: requested.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: bool(requested)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_training(
    job: TrainJob,
    device: torch.device,
    log: Callable[[str], None],
    progress_factory: Callable[[int, int], "TrainProgress"] | None = None,
    ranks: Ranks = Ranks(),
) -> dict:
    """Train (or continue) the model described by `job`; returns the final metrics record. Under torchrun every
    process runs this with its own `ranks`, inside distributed.process_group; rank 0 alone writes files, and holds
    --out (see held_folder) while it runs."""
    check_out(job)
    with held_folder(job.out) if ranks.is_main else contextlib.nullcontext():
        if ranks.world_size > 1:  # the others read --out only once rank 0 has finished what a kill left there
            torch.distributed.barrier()
        return train_in_folder(job, device, log, progress_factory, ranks)


def train_in_folder(job: TrainJob, device: torch.device, log: Callable[[str], None],
                    progress_factory: Callable[[int, int], "TrainProgress"] | None, ranks: Ranks) -> dict:
    check_saved_run(job)
    model_path, state_path = job.out / MODEL_FILE, job.out / STATE_FILE
    previous = load_model(model_path) if job.resume else None
    saved_state = load_train_state(state_path) if job.resume else None
    if previous and saved_state:
        check_same_run(job, previous, saved_state)
    initial = load_initial(job.init) if job.init else None
    start = previous or initial  # the model whose weights and shape this run continues from, if any
    shape_cfg = start.model.cfg if start else get_preset(job.preset).model
    data = load_data(job.data, shape_cfg.image_size, shape_cfg.channels if start else None)
    model_cfg, train_cfg = resolve_configs(job, data, previous, ranks.world_size, initial)
    # only rank 0 saves the recipe, so only it runs the face detector over the training photos
    recipe = recipe_with_template(data, previous, log) if ranks.is_main else data.preprocess

    torch.manual_seed(train_cfg.seed)  # weight init; a resumed run restores its saved RNG state below
    model = start.model if start else VLAE(model_cfg)
    model.cfg = model_cfg  # a started-from model keeps its shape; --beta may change the objective it saves
    model.to(device, memory_format=torch.channels_last).train()
    trained = wrap(model, ranks, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=train_cfg.lr)
    start_step, wall_before = resume_from(saved_state, optimizer, train_cfg.lr, job, device, ranks, log)
    if start_step >= train_cfg.steps:
        raise FaceAlgebraError(f"--steps {train_cfg.steps}: the run in {job.out} is already at step {start_step}")

    images = torch.from_numpy(data.images)
    batch_size = min(train_cfg.batch_size, len(images) // ranks.world_size)
    global_batch = batch_size * ranks.world_size
    if global_batch < 2:
        raise FaceAlgebraError(f"data {job.data!r} holds {len(images)} image(s); training on {ranks.world_size} "
                               f"process(es) needs at least {max(2, ranks.world_size)}")
    rows = own_rows(batch_size, ranks)
    perceptual = perceptual_loss(train_cfg.perceptual, device)
    if ranks.is_main:  # made once every input has been checked: a refused run leaves no folder behind
        (job.out / "samples").mkdir(parents=True, exist_ok=True)
    values_per_image = model_cfg.channels * model_cfg.image_size ** 2
    amp = device.type == "cuda"
    preview = to_float(images[torch.linspace(0, len(images) - 1, 8).long()], device)
    batching = (f"batch {batch_size}, {device}" if ranks.world_size == 1 else
                f"global batch {global_batch} = {batch_size} x {ranks.world_size} processes on {device.type}")
    log(f"training {job.preset} ({model_cfg.num_layers} layers x {list(model_cfg.latent_dims)} dims, "
        f"{sum(p.numel() for p in model.parameters()):,} parameters, reg={model_cfg.reg}) on {len(images):,} "
        f"images from {job.data}, {batching}, lr {train_cfg.lr:g}")

    # where the weights began: a run from --init keeps that record, and a resumed run keeps its own
    started_from = ({"init": {"model": job.init, "fingerprint": initial.fingerprint}} if initial else
                    {"init": previous.training["init"]} if previous and "init" in previous.training else {})

    saved_step = start_step if job.resume else None  # the step of the checkpoint in --out, if there is one

    def checkpoint(step: int, wall: float, record: dict, rng: dict[str, torch.Tensor]) -> None:
        nonlocal saved_step
        saved_step = step
        if not ranks.is_main:
            return
        training = {**training_record(job, train_cfg, step, global_batch, wall, ranks, device), "final": record,
                    **started_from}
        # One commit for the pair (see atomic_files): a save cut short at any point leaves, once the next run has
        # finished it, a model and a trainer state of one step; the state names its model's fingerprint as well.
        with atomic_files(model_path, state_path) as (model_tmp, state_tmp):
            model_print = write_model(model_tmp, model, recipe, training)
            faults.point("checkpoint-model-written")
            write_train_state(state_tmp, optimizer, step, rng, model_print, {"wall_seconds": wall})

    record: dict = {}
    started = time.perf_counter()
    sink = progress_factory(start_step, train_cfg.steps) if progress_factory else None
    # a new run's folder holds no model, so any metrics there are of a run that saved nothing
    metrics = open_log(job.out / METRICS_FILE, job.resume) if ranks.is_main else None
    window_start, window_images = time.perf_counter(), 0
    step = start_step
    with stop_requests() as stop_requested:
        try:
            while step < train_cfg.steps:
                completed_rng = rng_states(device)  # the state after `step` steps, should a peer fail mid-step
                x = to_float(images[batch_indices(len(images), batch_size, train_cfg.seed, step, ranks)], device)
                if train_cfg.augment:
                    x = augment(x, max_shift=max(1, model_cfg.image_size // 16), ranks=ranks)
                # the KL encoder's reparameterisation noise, drawn for the global batch (the MMD encoder has none)
                noise = ([torch.randn(global_batch, dim, device=device)[rows] for dim in model_cfg.latent_dims]
                         if model_cfg.reg == "kl" else None)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    x_hat, params, samples = trained(x, noise, layer_gates(step, model_cfg.num_layers,
                                                                           train_cfg.progressive))
                recon = reconstruction(x_hat, x)
                regs = global_regularisers(model_cfg.reg, params, samples, values_per_image, ranks)
                loss = recon + model_cfg.beta * torch.stack(regs).sum()
                if perceptual:
                    loss = loss + train_cfg.perceptual * perceptual(x_hat, x)
                # the global batch's figures, and whether any process was asked to stop: one small all-reduce
                stop_vote = torch.tensor(float(stop_requested()), device=device)
                stats = average(torch.stack([loss, recon, *regs, stop_vote]).detach(), ranks).tolist()
                global_loss, global_recon, *global_regs, stop_votes = stats
                if not np.isfinite(global_loss):
                    kept = (f"The last good checkpoint in {job.out} (step {saved_step}) is kept: try a lower --lr "
                            f"and --resume" if saved_step is not None else
                            "Nothing was saved (no checkpoint yet): start again with a lower --lr")
                    raise TrainingError(f"loss became {global_loss} at step {step + 1}; stopped. {kept}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                window_images += global_batch

                saving = step % train_cfg.save_every == 0 or step == train_cfg.steps
                # a checkpoint (a stop makes one too) always carries the record of the step it saves
                if saving or stop_votes or step % train_cfg.log_every == 0:
                    now = time.perf_counter()
                    record = {
                        "step": step, "loss": global_loss, "recon": global_recon,
                        model_cfg.reg: [round(r, 6) for r in global_regs],
                        "images_per_s": round(window_images / max(now - window_start, 1e-9), 1),
                        "wall_s": round(wall_before + now - started, 2),
                    }
                    if metrics:
                        metrics.write(json.dumps(record) + "\n")
                        metrics.flush()
                    window_start, window_images = now, 0
                    if sink:
                        sink.update(step, record)
                if ranks.is_main and (step % train_cfg.sample_every == 0 or step == train_cfg.steps):
                    save_image(to_pil(sample_grid(model, preview, train_cfg.seed)), str(job.out / "samples" / f"step-{step:06d}.png"))
                if saving or stop_votes:
                    checkpoint(step, wall_before + time.perf_counter() - started, record, rng_states(device))
                    if saving and not sink:
                        log(format_record(record))
                if stop_votes:
                    raise Interrupted(f"interrupted; checkpoint saved at step {step}")
        except RuntimeError as exc:  # under torchrun, mostly a collective failing because another process died
            if ranks.world_size == 1:
                raise
            # No step is ever half applied (a collective fails before optimizer.step): the state is `step`'s.
            checkpoint(step, wall_before + time.perf_counter() - started, record, completed_rng)
            saved = f"; the run in {job.out} is saved at step {step}: --resume continues it" if ranks.is_main else ""
            raise TrainingError(f"a training process stopped ({first_sentence(exc)}){saved}") from None
        finally:
            if metrics:
                metrics.close()
            if sink:
                sink.close()
    log(f"saved {model_path} at step {step} ({wall_before + time.perf_counter() - started:.0f} s of training)")
    return record


def resume_from(saved_state: TrainState | None, optimizer: torch.optim.Optimizer, lr: float, job: TrainJob,
                device: torch.device, ranks: Ranks, log: Callable[[str], None]) -> tuple[int, float]:
    """(step, wall seconds) the run starts from: (0, 0) for a new run; a resumed run's optimizer, RNG and metrics
    restored to its saved step, at the learning rate of this run."""
    if not saved_state:
        return 0, 0.0
    optimizer.load_state_dict(saved_state.optimizer)
    restore_rng(saved_state.rng_states, device)
    for group in optimizer.param_groups:
        group["lr"] = lr
    if ranks.is_main:
        drop_metrics_after(job.out / METRICS_FILE, saved_state.step)
    log(f"resuming {job.out} from step {saved_state.step}")
    return saved_state.step, float(saved_state.extra.get("wall_seconds", 0.0))


def training_record(job: TrainJob, train_cfg: TrainConfig, step: int, global_batch: int, wall: float, ranks: Ranks,
                    device: torch.device) -> dict:
    """The model file's record of how it was trained, as of `step`."""
    return {
        "data": job.data, "preset": job.preset, "steps": step, "batch_size": global_batch, "lr": train_cfg.lr,
        "seed": train_cfg.seed, "augment": train_cfg.augment, "save_every": train_cfg.save_every,
        "sample_every": train_cfg.sample_every, "progressive": train_cfg.progressive,
        "perceptual": train_cfg.perceptual,
        "wall_seconds": round(wall, 1), "processes": ranks.world_size, "device": device_description(device),
        "version": __version__,
    }


def load_initial(path_or_name: str) -> LoadedModel:
    try:
        return load_model(path_or_name)
    except FaceAlgebraError as exc:
        raise FaceAlgebraError(f"--init: {exc}") from None


def recipe_with_template(data: ImageSet, previous: LoadedModel | None, log: Callable[[str], None]) -> dict:
    """The data's preprocess recipe with a landmark template for align.py: the data's own (a landmark file), else
    the resumed model's, else one the face detector makes from the training photos, if it can."""
    recipe = data.preprocess
    if "template" in recipe:
        return recipe
    template = (previous.preprocess.get("template") if previous else None) or detected_template(data.sources,
                                                                                                 recipe, log)
    return {**recipe, "template": template} if template else recipe


def open_log(path: Path, append: bool) -> TextIO:
    """The metrics log, opened without following a link (O_NOFOLLOW): a link planted there is refused, and the
    file it points at is left as it was."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if append else os.O_TRUNC)
    try:
        return open(os.open(path, flags, 0o666), "a" if append else "w")
    except OSError as exc:
        raise FaceAlgebraError(f"cannot write {path}: {exc.strerror}") from None


def drop_metrics_after(path: Path, step: int) -> None:
    """Forget logged steps past the checkpoint: a killed run logged them, but its weights from then are lost. So
    goes a torn last line, which a run killed while writing it leaves; a bad line elsewhere is an error."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = []
    for number, line in enumerate(lines, 1):
        try:
            if line.strip() and json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, TypeError, KeyError):
            if number < len(lines) or line.endswith("\n"):
                raise FaceAlgebraError(f"{path}, line {number}: not a metrics record ({line.strip()[:40]!r}): mend "
                                       f"or delete that line, then --resume again") from None
    with atomic_path(path) as tmp:
        tmp.write_text("".join(kept))


def first_sentence(error: Exception) -> str:
    """"Read error [127.0.0.1]:50394: Connection reset by peer" from gloo's long, located message."""
    return re.sub(r"^\[[^\]]*\] ", "", str(error).splitlines()[0]).split(". ")[0]


def format_record(record: dict) -> str:
    regs = " ".join(f"{v:.4f}" for v in next(v for k, v in record.items() if k in ("mmd", "kl")))
    return (f"step {record['step']}  loss {record['loss']:.4f}  recon {record['recon']:.4f}  "
            f"reg [{regs}]  {record['images_per_s']:.0f} img/s")


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type
