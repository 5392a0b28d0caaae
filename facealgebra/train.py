"""The training loop: batches, loss, Adam, progress, sample grids, checkpoints and resume.

Batches are stateless functions of (seed, step): step s of epoch e takes a slice of a permutation seeded by
(seed, e). A resumed run therefore sees exactly the batches the uninterrupted run would have seen, and only the
optimizer, the step and the RNG states (for the reparameterisation noise, the prior draws and augmentation) need
saving.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from facealgebra import __version__
from facealgebra.align import detected_template
from facealgebra.checkpoint import LoadedModel, load_model, load_train_state, save_model, save_train_state
from facealgebra.config import ModelConfig, TrainConfig, get_preset
from facealgebra.data import ImageSet, load_data
from facealgebra.errors import FaceAlgebraError, Interrupted, TrainingError
from facealgebra.fileio import atomic_path, check_writable_dir
from facealgebra.images import grid, save_png, to_pil
from facealgebra.losses import layer_regularisers, reconstruction
from facealgebra.model import VLAE

if TYPE_CHECKING:
    from facealgebra.progress import TrainProgress

MODEL_FILE = "model.safetensors"
STATE_FILE = "train_state.safetensors"
METRICS_FILE = "metrics.jsonl"


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


# ---- batches ---------------------------------------------------------------------------------------------------
def batch_indices(num_images: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    steps_per_epoch = max(1, num_images // batch_size)
    epoch, position = divmod(step, steps_per_epoch)
    order = torch.randperm(num_images, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return order[position * batch_size:(position + 1) * batch_size]


def to_float(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (N, C, H, W) on the host to float [0, 1] on the device; the conversion runs on the device."""
    batch = batch.to(device, non_blocking=True).float().div_(255.0)
    return batch.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else batch


def augment(batch: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Random horizontal flips and shifts of up to max_shift pixels (edges replicated), per image."""
    flip = torch.rand(batch.shape[0]) < 0.5
    batch = torch.where(flip.to(batch.device)[:, None, None, None], batch.flip(3), batch)
    if max_shift:
        padded = torch.nn.functional.pad(batch, [max_shift] * 4, mode="replicate")
        size = batch.shape[-1]
        shifts = torch.randint(0, 2 * max_shift + 1, (batch.shape[0], 2))
        batch = torch.stack([padded[i, :, dy:dy + size, dx:dx + size] for i, (dy, dx) in enumerate(shifts.tolist())])
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
RESUMED_SETTINGS = ("batch_size", "lr", "seed", "augment")  # a resumed run keeps these unless a flag overrides


def resolve_configs(job: TrainJob, data: ImageSet, previous: LoadedModel | None) -> tuple[ModelConfig, TrainConfig]:
    """The model config (the saved run's, when resuming) and the training config: the preset's defaults, then the
    saved run's settings when resuming (so batches continue as before), then the flags given now."""
    preset = get_preset(job.preset)
    if previous:
        model_cfg = previous.model.cfg
        if job.reg and job.reg != model_cfg.reg:
            raise FaceAlgebraError(f"--reg {job.reg}: the run in {job.out} was trained with --reg {model_cfg.reg}")
        train_cfg = dataclasses.replace(preset.train, **{name: previous.training[name] for name in RESUMED_SETTINGS
                                                         if name in previous.training})
    else:
        model_cfg = dataclasses.replace(preset.model, channels=data.channels, reg=job.reg or preset.model.reg)
        train_cfg = preset.train
    overrides = {
        name: getattr(job, name)
        for name in ("steps", "batch_size", "lr", "seed", "sample_every", "save_every", "augment")
        if getattr(job, name) is not None
    }
    train_cfg = dataclasses.replace(train_cfg, **overrides)
    for name in ("steps", "batch_size", "sample_every", "save_every"):
        if getattr(train_cfg, name) < 1:
            raise FaceAlgebraError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(train_cfg, name)}")
    if not train_cfg.lr > 0:
        raise FaceAlgebraError(f"--lr must be positive, not {train_cfg.lr}")
    return model_cfg, train_cfg


def prepare_out(job: TrainJob) -> None:
    check_writable_dir(job.out)
    if job.out.exists() and not job.out.is_dir():
        raise FaceAlgebraError(f"--out {job.out}: is a file, expected a folder")
    has_model = (job.out / MODEL_FILE).exists()
    if job.resume and not ((job.out / STATE_FILE).exists() and has_model):
        raise FaceAlgebraError(f"--resume: {job.out} holds no {MODEL_FILE} and {STATE_FILE} to continue from")
    if has_model and not job.resume:
        raise FaceAlgebraError(f"--out {job.out} already holds a model: pass --resume to continue it, or choose another folder")
    (job.out / "samples").mkdir(parents=True, exist_ok=True)


def rng_states(batch_rng_device: torch.device) -> dict[str, torch.Tensor]:
    states = {"torch": torch.get_rng_state()}
    if batch_rng_device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(batch_rng_device)
    return states


def restore_rng(states: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def run_training(
    job: TrainJob,
    device: torch.device,
    log: Callable[[str], None],
    progress_factory: Callable[[int, int], "TrainProgress"] | None = None,
) -> dict:
    """Train (or continue) the model described by `job`; returns the final metrics record."""
    prepare_out(job)
    model_path, state_path = job.out / MODEL_FILE, job.out / STATE_FILE
    previous = load_model(model_path) if job.resume else None
    shape_cfg = previous.model.cfg if previous else get_preset(job.preset).model
    data = load_data(job.data, shape_cfg.image_size, shape_cfg.channels if previous else None)
    model_cfg, train_cfg = resolve_configs(job, data, previous)
    recipe = recipe_with_template(data, previous, log)

    torch.manual_seed(train_cfg.seed)  # weight init; a resumed run restores its saved RNG state below
    model = previous.model if previous else VLAE(model_cfg)
    model.to(device).train()
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=train_cfg.lr)
    start_step, wall_before = 0, 0.0
    if job.resume:
        start_step, states, extra = load_train_state(state_path, optimizer)
        restore_rng(states, device)
        wall_before = float(extra.get("wall_seconds", 0.0))
        for group in optimizer.param_groups:
            group["lr"] = train_cfg.lr
        drop_metrics_after(job.out / METRICS_FILE, start_step)
        log(f"resuming {job.out} from step {start_step}")
    if start_step >= train_cfg.steps:
        raise FaceAlgebraError(f"--steps {train_cfg.steps}: the run in {job.out} is already at step {start_step}")

    images = torch.from_numpy(data.images)
    batch_size = min(train_cfg.batch_size, len(images))
    if batch_size < 2:
        raise FaceAlgebraError(f"data {job.data!r} holds {len(images)} image(s); training needs at least 2")
    values_per_image = model_cfg.channels * model_cfg.image_size ** 2
    amp = device.type == "cuda"
    preview = to_float(images[torch.linspace(0, len(images) - 1, 8).long()], device)
    log(f"training {job.preset} ({model_cfg.num_layers} layers x {list(model_cfg.latent_dims)} dims, "
        f"{sum(p.numel() for p in model.parameters()):,} parameters, reg={model_cfg.reg}) on {len(images):,} "
        f"images from {job.data}, batch {batch_size}, {device}")

    def checkpoint(step: int, wall: float, record: dict) -> None:
        training = {
            "data": job.data, "preset": job.preset, "steps": step, "batch_size": batch_size, "lr": train_cfg.lr,
            "seed": train_cfg.seed, "augment": train_cfg.augment, "wall_seconds": round(wall, 1),
            "device": device_description(device), "version": __version__, "final": record,
        }
        save_model(model_path, model, recipe, training)
        save_train_state(state_path, optimizer, step, rng_states(device), {"wall_seconds": wall})

    record: dict = {}
    started = time.perf_counter()
    sink = progress_factory(start_step, train_cfg.steps) if progress_factory else None
    window_start, window_images = time.perf_counter(), 0
    step = start_step
    try:
        with open(job.out / METRICS_FILE, "a") as metrics:
            while step < train_cfg.steps:
                x = to_float(images[batch_indices(len(images), batch_size, train_cfg.seed, step)], device)
                if train_cfg.augment:
                    x = augment(x, max_shift=max(1, model_cfg.image_size // 16))
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    x_hat, params, samples = model(x)
                recon = reconstruction(x_hat, x)
                regs = layer_regularisers(model_cfg.reg, params, samples, values_per_image)
                loss = recon + model_cfg.beta * torch.stack(regs).sum()
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"loss became {loss.item()} at step {step + 1}; stopped. The last good checkpoint in "
                        f"{job.out} is kept: try a lower --lr and --resume"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                window_images += batch_size

                saving = step % train_cfg.save_every == 0 or step == train_cfg.steps
                if saving or step % train_cfg.log_every == 0:  # a checkpoint always carries a fresh record
                    now = time.perf_counter()
                    record = {
                        "step": step, "loss": loss.item(), "recon": recon.item(),
                        model_cfg.reg: [round(r.item(), 6) for r in regs],
                        "images_per_s": round(window_images / max(now - window_start, 1e-9), 1),
                        "wall_s": round(wall_before + now - started, 2),
                    }
                    metrics.write(json.dumps(record) + "\n")
                    metrics.flush()
                    window_start, window_images = now, 0
                    if sink:
                        sink.update(step, record)
                if step % train_cfg.sample_every == 0 or step == train_cfg.steps:
                    save_png(to_pil(sample_grid(model, preview, train_cfg.seed)), str(job.out / "samples" / f"step-{step:06d}.png"))
                if saving:
                    checkpoint(step, wall_before + time.perf_counter() - started, record)
                    if not sink:
                        log(format_record(record))
    except KeyboardInterrupt:
        checkpoint(step, wall_before + time.perf_counter() - started, record)
        raise Interrupted(step) from None
    finally:
        if sink:
            sink.close()
    log(f"saved {model_path} at step {step} ({wall_before + time.perf_counter() - started:.0f} s of training)")
    return record


def recipe_with_template(data: ImageSet, previous: LoadedModel | None, log: Callable[[str], None]) -> dict:
    """The data's preprocess recipe with a landmark template for align.py: the data's own (a landmark file), else
    the resumed model's, else one the face detector makes from the training photos, if it can."""
    recipe = data.preprocess
    if "template" in recipe:
        return recipe
    template = (previous.preprocess.get("template") if previous else None) or detected_template(data.sources,
                                                                                                 recipe, log)
    return {**recipe, "template": template} if template else recipe


def drop_metrics_after(path: Path, step: int) -> None:
    """Forget logged steps past the checkpoint: a killed run logged them, but its weights from then are lost."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines(keepends=True) if line.strip() and json.loads(line)["step"] <= step]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(kept))


def format_record(record: dict) -> str:
    regs = " ".join(f"{v:.4f}" for v in next(v for k, v in record.items() if k in ("mmd", "kl")))
    return (f"step {record['step']}  loss {record['loss']:.4f}  recon {record['recon']:.4f}  "
            f"reg [{regs}]  {record['images_per_s']:.0f} img/s")


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type
