"""Latents: the per-layer codes of N faces, the names they came from, and the fingerprint of the model that made them.

On disk a `.npz` written by numpy (see docs/design.md): `z1` ... `zL` float32 (N, d_l), `names` (N,) unicode,
`fingerprint`, `format` = facealgebra-latents/1. It is read with allow_pickle=False, so a file holding pickled
objects is refused rather than executed. numpy only: no torch on this path.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facealgebra.errors import FaceAlgebraError
from facealgebra.fileio import atomic_path

LATENTS_FORMAT = "facealgebra-latents/1"
# Codes follow the prior N(0, I): a strong edit reaches tens. Far beyond, the decoder draws noise (or overflows into
# NaN), so a value outside +-MAX_CODE is refused as no code at all.
MAX_CODE = 1e4
# A latents file is read whole. Its zip directory and each .npy header say how large it will become, so both are
# checked first: a 2.3 MB deflated file once expanded to 5.3 GB before it was refused. 1 GiB holds the codes and
# names of millions of faces.
MAX_UNPACKED_BYTES = 1 << 30


def stray_value(z: np.ndarray) -> float | None:
    """A value of z that no code takes (inf, NaN, or beyond +-MAX_CODE), or None when there is none."""
    stray = z[~(np.abs(z) <= MAX_CODE)]
    return float(stray[0]) if stray.size else None


@dataclass(frozen=True, eq=False)
class Latents:
    layers: tuple[np.ndarray, ...]  # z_1 ... z_L, each float32 (N, d_l), shallow first
    names: tuple[str, ...]
    fingerprint: str  # of the model whose encoder made these codes; its decoder is the one that understands them

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(np.asarray(z, dtype=np.float32) for z in self.layers))
        object.__setattr__(self, "names", tuple(str(name) for name in self.names))
        if any(z.ndim != 2 or len(z) != len(self.names) for z in self.layers):
            shapes = ", ".join(str(z.shape) for z in self.layers)
            raise ValueError(f"every layer must be ({len(self.names)}, d); got {shapes}")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def dims(self) -> tuple[int, ...]:
        return tuple(z.shape[1] for z in self.layers)

    def select(self, rows: slice | np.ndarray) -> "Latents":
        """Some rows: a slice, a boolean mask or integer indices."""
        names = np.array(self.names, dtype=object)[rows]
        return Latents(tuple(z[rows] for z in self.layers), tuple(names.tolist()), self.fingerprint)

    def mean(self, name: str) -> "Latents":
        """One row: the mean code, a prototype such as "smiling faces"."""
        if not len(self):
            raise FaceAlgebraError(f"{name}: holds no latents to average")
        return Latents(tuple(z.mean(axis=0, keepdims=True) for z in self.layers), (name,), self.fingerprint)

    def mean_norms(self) -> list[float]:
        """Per layer, the mean L2 norm of the rows: a quick look at how far codes sit from the prior's centre."""
        return [float(np.linalg.norm(z, axis=1).mean()) if len(z) else 0.0 for z in self.layers]

    def check_model(self, fingerprint: str, dims: tuple[int, ...], source: str) -> None:
        """Refuse codes from another model: its decoder would turn them into noise."""
        if self.dims != tuple(dims):
            raise FaceAlgebraError(f"{source}: latents have layer sizes {list(self.dims)} but the model has "
                                   f"{list(dims)}; {self.remedy()}")
        if self.fingerprint != fingerprint:
            raise FaceAlgebraError(f"{source}: latents come from another model (fingerprint {self.fingerprint[:12]}, "
                                   f"model {fingerprint[:12]}); {self.remedy()}")

    def remedy(self) -> str:
        """What to do about codes from another model: name it when it is a bundled one."""
        from facealgebra.modelfiles import bundled_name_of

        name = bundled_name_of(self.fingerprint)
        return (f"made by the bundled model {name}: add --model {name}, or encode the images again with "
                "this model") if name else "encode the images again with this model"

    # ---- files -------------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        arrays = {f"z{layer}": z for layer, z in enumerate(self.layers, start=1)}
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:  # a handle, so numpy adds no ".npz" suffix
            np.savez(handle, **arrays, names=np.array(self.names, dtype=np.str_),
                     fingerprint=np.array(self.fingerprint), format=np.array(LATENTS_FORMAT))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Latents":
        path = Path(path)
        if not path.is_file():
            raise FaceAlgebraError(f"{path}: no such file" if not path.exists() else f"{path}: is not a file")
        if not zipfile.is_zipfile(path):  # else numpy takes any other bytes for a pickle and says so
            raise FaceAlgebraError(f"{path}: not a latents .npz (not a zip archive)")
        check_members(path)
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
        except ValueError as exc:  # numpy's words for an object array under allow_pickle=False
            if "pickle" in str(exc).lower():
                raise FaceAlgebraError(f"{path}: holds pickled objects, which are never loaded; "
                                       f"write latents with `facealgebra encode`") from None
            raise FaceAlgebraError(f"{path}: not a latents .npz ({exc})") from None
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise FaceAlgebraError(f"{path}: not a latents .npz ({exc})") from None
        if str(arrays.get("format", "")) != LATENTS_FORMAT:
            raise FaceAlgebraError(f"{path}: not a facealgebra latents file (format {LATENTS_FORMAT!r} expected)")
        layer_count = sum(1 for key in arrays if key[:1] == "z" and key[1:].isdigit())
        try:
            layers = tuple(arrays[f"z{layer}"] for layer in range(1, layer_count + 1))
            latents = cls(layers, tuple(arrays["names"].tolist()), str(arrays["fingerprint"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise FaceAlgebraError(f"{path}: damaged latents file ({exc})") from None
        if not len(latents) or not latents.layers:
            raise FaceAlgebraError(f"{path}: holds no latents")
        for layer, z in enumerate(latents.layers, start=1):
            value = stray_value(z)
            if value is not None:
                raise FaceAlgebraError(f"{path}: z{layer} holds {value:g}, which is no code (codes are finite and "
                                       f"within +-{MAX_CODE:g}); make the file again with encode or arith")
        return latents


def check_members(path: Path) -> None:
    """Refuse, before reading any array, a latents file that would unpack to more than MAX_UNPACKED_BYTES, or
    whose arrays are not what latents are: real floating-point codes, text names. Only the zip directory and each
    .npy header are read (numpy allocates the array a header describes before reading its bytes)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            unpacked = sum(member.file_size for member in members)
            if unpacked > MAX_UNPACKED_BYTES:
                raise FaceAlgebraError(f"{path}: would unpack to {unpacked:,} bytes, over the {MAX_UNPACKED_BYTES:,} "
                                       f"a latents file may hold")
            for member in members:
                with archive.open(member) as handle:
                    shape, dtype = npy_header(handle)
                check_array(path, member, shape, dtype)
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise FaceAlgebraError(f"{path}: not a latents .npz ({exc})") from None


def npy_header(handle) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    else:
        raise ValueError(f".npy version {version} is not one numpy writes for latents")
    return shape, dtype


def check_array(path: Path, member: zipfile.ZipInfo, shape: tuple[int, ...], dtype: np.dtype) -> None:
    name = member.filename.removesuffix(".npy")
    if dtype.hasobject:
        raise FaceAlgebraError(f"{path}: holds pickled objects, which are never loaded; write latents with "
                               f"`facealgebra encode`")
    if math.prod(shape) * dtype.itemsize > member.file_size:  # the header promises more than the member holds
        raise FaceAlgebraError(f"{path}: {name} is damaged (its header says {list(shape)} of {dtype}, more than "
                               f"its {member.file_size:,} bytes)")
    if name[:1] == "z" and name[1:].isdecimal():
        if dtype.kind == "c":
            raise FaceAlgebraError(f"{path}: {name} holds complex numbers; codes are real (make the file again "
                                   f"with encode or arith)")
        if dtype.kind != "f":
            raise FaceAlgebraError(f"{path}: {name} holds {dtype}; codes are floating-point numbers")
