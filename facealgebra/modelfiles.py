"""Where a `--model` argument points: a model file, a run folder or a bundled name. No torch here, so the output
guard can name the model file among a command's inputs before torch loads."""

from __future__ import annotations

import os
from pathlib import Path

from facealgebra.errors import FaceAlgebraError

BUNDLED_DIRS = (
    Path(__file__).resolve().parent / "weights",  # inside an installed wheel
    Path(__file__).resolve().parent.parent / "weights",  # a source checkout
)


def bundled_models() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in BUNDLED_DIRS:
        for file in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
            found.setdefault(file.stem, file)
    return found


def resolve_model_path(path_or_name: str | os.PathLike) -> Path:
    candidate = Path(path_or_name).expanduser()
    if candidate.is_dir() and (candidate / "model.safetensors").exists():
        return candidate / "model.safetensors"
    if candidate.is_file():
        return candidate
    bundled = bundled_models()
    if str(path_or_name) in bundled:
        return bundled[str(path_or_name)]
    names = ", ".join(bundled) or "none installed"
    raise FaceAlgebraError(f"model {str(path_or_name)!r}: no such file or bundled model (bundled: {names})")


def bundled_name_of(fingerprint: str) -> str | None:
    """The bundled model whose weights have this fingerprint (read from each file's metadata alone, without
    torch), if any."""
    from safetensors import SafetensorError, safe_open

    for name, path in bundled_models().items():
        try:
            with safe_open(str(path), framework="numpy") as handle:
                metadata = handle.metadata() or {}
        except (SafetensorError, OSError, ValueError):
            continue
        if metadata.get("fingerprint") == fingerprint:
            return name
    return None
