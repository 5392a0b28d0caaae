"""Saved models: one .safetensors file with the weights and, as string metadata, everything needed to use them.

Metadata keys: format, config (ModelConfig JSON), preprocess (JSON recipe for photos), training (JSON record),
fingerprint (sha256 over the tensors). Trainer state (optimizer, step, RNG) goes to a separate
train_state.safetensors, with its own fingerprint and the fingerprint of the model it belongs with. Nothing here
ever unpickles: safetensors holds raw tensors only.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from facealgebra.config import ModelConfig
from facealgebra.errors import FaceAlgebraError
from facealgebra.fileio import atomic_path
from facealgebra.model import VLAE
from facealgebra.modelcheck import MAX_PARAMETERS, parse_metadata
from facealgebra.modelfiles import bundled_models, resolve_model_path  # noqa: F401  (their old home)

MODEL_FORMAT = "facealgebra-vlae/1"
WEIGHT_DTYPES = ("F32", "F16", "BF16")
STATE_FORMAT = "facealgebra-train-state/2"  # /1 had no fingerprints


@dataclass
class LoadedModel:
    model: VLAE
    preprocess: dict
    training: dict
    fingerprint: str
    path: Path
    refine_steps: int = 0  # how photos' codes are found: the encoder's, then this many refining steps (refine.py)
    tune_steps: int = 0  # how a photo's face is drawn: by the decoder tuned to it by this many steps (refine.tuned)


# ---- fingerprint -----------------------------------------------------------------------------------------------
def fingerprint(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and bytes of the tensors, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")  # -1: 0-dim too
    return digest.hexdigest()


# ---- model files -----------------------------------------------------------------------------------------------
def save_model(path: str | os.PathLike, model: VLAE, preprocess: dict, training: dict,
               dtype: torch.dtype = torch.float32) -> str:
    """Write the model atomically; returns its fingerprint. `dtype=torch.float16` halves the file."""
    with atomic_path(path) as tmp:
        return write_model(tmp, model, preprocess, training, dtype)


def write_model(path: str | os.PathLike, model: VLAE, preprocess: dict, training: dict,
                dtype: torch.dtype = torch.float32) -> str:
    """save_model into `path` itself, for a caller that makes it atomic (train.py commits it with the state)."""
    tensors = {name: t.detach().to("cpu", dtype).contiguous() for name, t in model.state_dict().items()}
    weights_print = fingerprint(tensors)
    metadata = {
        "format": MODEL_FORMAT,
        "config": model.cfg.to_json(),
        "preprocess": json.dumps(preprocess, sort_keys=True),
        "training": json.dumps(training, sort_keys=True),
        "fingerprint": weights_print,
    }
    save_file(tensors, str(path), metadata=metadata)
    return weights_print


def read_metadata(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise FaceAlgebraError(f"{path}: not a readable safetensors file ({exc})") from None
    return metadata, tensors


def load_model(path_or_name: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Build the model from a file (or a bundled name) alone. Weights are returned as float32 in eval mode.
    The metadata, and the tensors' shapes in the file's header, are checked before any weight is read or any
    network is built (modelcheck.py): a crafted file is refused without allocating what it asks for."""
    path = resolve_model_path(path_or_name)
    metadata, shapes = read_header(path)
    checked = parse_metadata(metadata, MODEL_FORMAT, str(path))
    check_shapes(path, checked.config, shapes)
    _, tensors = read_metadata(path)
    if fingerprint(tensors) != checked.fingerprint:
        raise FaceAlgebraError(f"{path}: weights do not match their fingerprint; the file is damaged")
    model = VLAE(checked.config)
    try:
        model.load_state_dict({name: t.float() for name, t in tensors.items()})
    except RuntimeError as exc:
        raise FaceAlgebraError(f"{path}: weights do not fit the stored config ({str(exc).splitlines()[0]})") from None
    model.to(device).eval()
    return LoadedModel(model, checked.preprocess, checked.training, checked.fingerprint, path)


def read_header(path: Path) -> tuple[dict[str, str], dict[str, tuple[tuple[int, ...], str]]]:
    """The metadata and each tensor's (shape, dtype), read from the header alone."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            shapes = {name: (tuple(handle.get_slice(name).get_shape()), handle.get_slice(name).get_dtype())
                      for name in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise FaceAlgebraError(f"{path}: not a readable safetensors file ({exc})") from None
    return metadata, shapes


def check_shapes(path: Path, config: ModelConfig, shapes: dict[str, tuple[tuple[int, ...], str]]) -> None:
    """The header's tensors must be exactly those of the network the config describes. The network is built on
    torch's meta device, which allocates no memory, so its parameter count is known before any real build."""
    with torch.device("meta"):
        expected = {name: tuple(t.shape) for name, t in VLAE(config).state_dict().items()}
    parameters = sum(math.prod(shape) for shape in expected.values())
    if parameters > MAX_PARAMETERS:
        raise FaceAlgebraError(f"{path}: the model's config describes {parameters:,} weights, over the "
                               f"{MAX_PARAMETERS:,} this tool builds")
    if set(shapes) != set(expected):
        missing, extra = sorted(set(expected) - set(shapes)), sorted(set(shapes) - set(expected))
        raise FaceAlgebraError(f"{path}: weights do not fit the stored config (missing: {', '.join(missing[:3]) or '-'}"
                               f"; unexpected: {', '.join(extra[:3]) or '-'})")
    for name, (shape, dtype) in sorted(shapes.items()):
        if shape != expected[name]:
            raise FaceAlgebraError(f"{path}: weights do not fit the stored config ({name} is {list(shape)}, the "
                                   f"config needs {list(expected[name])})")
        if dtype not in WEIGHT_DTYPES:
            raise FaceAlgebraError(f"{path}: weight {name} is stored as {dtype}; a model stores F32, F16 or BF16")


# ---- storage precision -----------------------------------------------------------------------------------------
STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16}
STORAGE_TOLERANCE = 1 / 255  # one step of an 8-bit pixel: a change below it cannot show in a saved PNG
CHECK_DRAWS = 256


@torch.no_grad()
def storage_error(model: VLAE, dtype: torch.dtype, draws: int = CHECK_DRAWS, seed: int = 0) -> float:
    """The largest change, in pixel values in [0, 1], that rounding the weights to `dtype` makes to the model's
    outputs: faces decoded from `draws` prior draws, and those faces encoded and decoded again (so the encoder is
    checked too). Computed in float32 on the CPU, as the model is used after loading."""
    def copy_stored_as(storage: torch.dtype) -> VLAE:
        copy = VLAE(model.cfg)
        copy.load_state_dict({name: t.detach().cpu().to(storage).float() for name, t in model.state_dict().items()})
        return copy.eval()

    original, rounded = copy_stored_as(torch.float32), copy_stored_as(dtype)
    latents = original.prior_latents(draws, seed, "cpu")
    faces = original.decode(latents)
    changes = [faces - rounded.decode(latents),
               original.decode(original.encode(faces)) - rounded.decode(rounded.encode(faces))]
    return max(float(change.abs().max()) for change in changes)


def export_model(loaded: LoadedModel, path: str | os.PathLike, dtype_name: str) -> tuple[str, float]:
    """Write `loaded` with its weights stored as `dtype_name`; returns (new fingerprint, storage_error). Refuses,
    writing nothing, when the outputs would move by more than STORAGE_TOLERANCE. The training record keeps the
    fingerprint of the weights it was exported from."""
    if dtype_name not in STORAGE_DTYPES:
        raise FaceAlgebraError(f"--dtype {dtype_name!r}: choose one of {', '.join(STORAGE_DTYPES)}")
    error = storage_error(loaded.model, STORAGE_DTYPES[dtype_name])
    if not math.isfinite(error):
        raise FaceAlgebraError(f"{dtype_name} cannot hold this model's weights (the outputs become NaN or "
                               f"infinite): keep it in float32")
    if error > STORAGE_TOLERANCE:
        raise FaceAlgebraError(f"{dtype_name} would change this model's pixels by up to {error * 255:.2f}/255, more "
                               f"than 1/255: keep it in float32")
    training = {**loaded.training, "exported_from": loaded.training.get("exported_from", loaded.fingerprint)}
    weights_print = save_model(path, loaded.model, loaded.preprocess, training, STORAGE_DTYPES[dtype_name])
    return weights_print, error


# ---- trainer state ---------------------------------------------------------------------------------------------
@dataclass
class TrainState:
    step: int
    optimizer: dict  # for optimizer.load_state_dict
    rng_states: dict[str, torch.Tensor]
    model_fingerprint: str  # of the model saved with this state: a state continues only that model
    extra: dict


def state_fingerprint(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """The tensors' fingerprint extended over the metadata, which holds the step and the optimizer's settings."""
    fields = json.dumps({key: value for key, value in metadata.items() if key != "fingerprint"}, sort_keys=True)
    return hashlib.sha256(f"{fingerprint(tensors)}|{fields}".encode()).hexdigest()


def write_train_state(path: str | os.PathLike, optimizer: torch.optim.Optimizer, step: int,
                      rng_states: dict[str, torch.Tensor], model_fingerprint: str, extra: dict) -> None:
    """Optimizer moments, step counters and RNG states as tensors; hyper-parameters as JSON metadata. Writes
    `path` itself: the caller makes it atomic, together with the model (train.py)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for index, slots in state["state"].items():
        for key, value in slots.items():
            tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    for name, value in rng_states.items():
        tensors[f"rng.{name}"] = value.detach().cpu().contiguous()
    metadata = {
        "format": STATE_FORMAT,
        "step": str(step),
        "param_groups": json.dumps(state["param_groups"]),
        "model_fingerprint": model_fingerprint,
        "extra": json.dumps(extra, sort_keys=True),
    }
    save_file(tensors, str(path), metadata={**metadata, "fingerprint": state_fingerprint(tensors, metadata)})


def load_train_state(path: str | os.PathLike) -> TrainState:
    """Read and check a trainer state; optimizer.load_state_dict(state.optimizer) restores the optimizer."""
    metadata, tensors = read_metadata(Path(path))
    if metadata.get("format") != STATE_FORMAT:
        raise FaceAlgebraError(f"{path}: not a facealgebra trainer state of this version (format "
                               f"{metadata.get('format')!r}, expected {STATE_FORMAT!r}); start a new run from its "
                               f"model with --init")
    if state_fingerprint(tensors, metadata) != metadata.get("fingerprint"):
        raise FaceAlgebraError(f"{path}: trainer state does not match its fingerprint; the file is damaged (start a "
                               f"new run from its model with --init)")
    slots: dict[int, dict[str, torch.Tensor]] = {}
    rng_states: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.items():
        kind, _, rest = name.partition(".")
        if kind == "rng":
            rng_states[rest] = tensor
        else:
            index, _, key = rest.partition(".")
            slots.setdefault(int(index), {})[key] = tensor
    return TrainState(int(metadata["step"]), {"state": slots, "param_groups": json.loads(metadata["param_groups"])},
                      rng_states, metadata["model_fingerprint"], json.loads(metadata["extra"]))
