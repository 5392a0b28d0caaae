"""The output rule, in one place: every output of a command is planned against all of its inputs, and against
its other outputs, before any work starts. A command names what it will write and everything it reads; `guard`
refuses, with one message, an output that

- would replace an input: a photo, a .npz, a `--from` or `--between` operand, a photo inside a folder term, a path
  read from stdin, or the model file (compared by real path, and by device and inode, as `os.path.samefile` does, for hard links);
- is named twice (two outputs of one batch, or `-o` and `--gif`);
- is a symbolic link (a write would land wherever it points) or an existing folder, or names a folder (`x/`);
- cannot be written (no such place, a read-only file system).

The writers in fileio.py then keep the rule at write time: a symbolic link is never written through, and a file
replaced keeps its permissions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence, Union

from facealgebra.errors import FaceAlgebraError
from facealgebra.fileio import unwritable

STDOUT = "-"
Pathish = Union[str, os.PathLike]


def guard(files: Sequence[Pathish] = (), folders: Sequence[Pathish] = (), inputs: Iterable[Pathish] = (),
          models: Iterable[str] = ()) -> None:
    """Refuse, before any work, a plan whose outputs could harm its inputs or each other.

    files: every file the command will write (`-` is stdout and is skipped); folders: every folder it will write
    files into; inputs: files and folders it reads (a folder stands for the photos in it); models: `--model` or
    `--init` arguments (a path, run folder or bundled name)."""
    for folder in folders:
        check_folder(folder)
    written = [str(text) for text in files if str(text) != STDOUT]  # as given: a trailing slash means a folder
    for text in written:
        check_file(text)
    read = input_files(inputs, models)
    seen: dict[str, str] = {}
    for path in written:
        real = os.path.realpath(path)
        if real in seen:
            raise FaceAlgebraError(f"{path} is named twice as an output (also as {seen[real]}): give each output "
                                   "its own name")
        seen[real] = path
        identity = file_identity(path)
        source = read.get(real) or (read.get(identity) if identity is not None else None)
        if source is not None:
            raise FaceAlgebraError(f"{path} is an input of this command ({source}): write the output elsewhere")


def check_file(text: str) -> None:
    """A file output: not a folder, not a link, in a place where files can be made."""
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.is_dir():
        raise FaceAlgebraError(f"cannot write {text}: it names a folder; give a file name")
    if path.is_symlink():
        raise FaceAlgebraError(f"cannot write {text}: it is a symbolic link, and facealgebra does not write through "
                               "links; remove it or choose another name")
    problem = unwritable(path.absolute().parent)
    if problem:
        raise FaceAlgebraError(f"cannot write {text}: {problem}")


def check_folder(text: Pathish) -> None:
    """A folder output: a folder (or nothing yet), where files can be made."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise FaceAlgebraError(f"cannot write into {text}: it is a file, and this output is a folder")
    problem = unwritable(path)
    if problem:
        raise FaceAlgebraError(f"cannot write {text}: {problem}")


def input_files(inputs: Iterable[Pathish], models: Iterable[str]) -> dict[str, Path]:
    """Real path, and (device, inode), -> the path as named, for every file read: a folder's photos, and each
    model's file."""
    from facealgebra.images import list_images  # numpy and Pillow, no torch
    from facealgebra.modelfiles import resolve_model_path

    files: list[Path] = []
    for text in inputs:
        path = Path(text)
        files += list_images(path) if path.is_dir() else [path]
    for model in models:
        try:
            files.append(resolve_model_path(model))
        except FaceAlgebraError:
            continue  # no such model: its loading says so, after the usage checks
    read: dict = {}
    for file in files:
        read.setdefault(os.path.realpath(file), file)
        identity = file_identity(file)
        if identity is not None:
            read.setdefault(identity, file)
    return read


def file_identity(path: Pathish) -> tuple[int, int] | None:
    """(device, inode), as os.path.samefile compares them: two names of one file (a hard link) are one file."""
    try:
        status = os.stat(path)
    except OSError:  # not there (yet)
        return None
    return status.st_dev, status.st_ino
