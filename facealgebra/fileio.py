"""Atomic file output: write to a temporary file in the same folder, then `os.replace` it into place."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from facealgebra.errors import FaceAlgebraError


def check_writable_dir(directory: Path) -> None:
    """Fail early, with a clear message, when `directory` cannot hold our output."""
    probe = directory
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise FaceAlgebraError(f"cannot write to {directory}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise FaceAlgebraError(f"cannot write to {directory}: {probe} is not writable")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on failure it is removed."""
    target = Path(path)
    check_writable_dir(target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:  # e.g. a read-only or virtual file system, where even root cannot create files
        raise FaceAlgebraError(f"cannot write {target}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600 files; outputs get the usual permissions
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
