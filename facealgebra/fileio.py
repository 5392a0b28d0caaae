"""Atomic file output: write to a temporary file in the same folder, then `os.replace` it into place; several
files replaced together (`atomic_files`); and a lock that keeps a second writer out of a folder."""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from facealgebra import faults
from facealgebra.errors import FaceAlgebraError


def check_writable_dir(directory: Path) -> None:
    """Fail early, with a clear message, when `directory` cannot hold our output."""
    problem = unwritable(directory)
    if problem:
        raise FaceAlgebraError(f"cannot write to {directory}: {problem}")


def unwritable(directory: Path) -> str | None:
    """Why no file can be made in `directory` (its missing folders made first), or None when one can."""
    probe = directory
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a folder"
    try:  # a real (unnamed) file: os.access says yes to root, even on /proc and on read-only file systems
        tempfile.TemporaryFile(dir=probe).close()
    except OSError as exc:
        return f"no file can be made in {probe} ({exc.strerror or exc})"
    return None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on failure it is removed."""
    target = Path(path)
    refuse_link(target)
    tmp = temp_beside(target)
    try:
        yield tmp
        os.chmod(tmp, kept_mode(target))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def temp_beside(target: Path) -> Path:
    """A new empty file `.NAME.XXXXXXXX.tmp` in `target`'s folder (made if need be), for `target`'s next content."""
    check_writable_dir(target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:  # e.g. a read-only or virtual file system, where even root cannot create files
        raise FaceAlgebraError(f"cannot write {target}: {exc.strerror or exc}") from None
    os.close(fd)
    return Path(tmp_name)


def refuse_link(target: Path) -> None:
    """os.replace onto a symbolic link replaces the link; writing through it would change the file it points at.
    Neither is what was asked (the output rule, see outputs.py), so a link at an output is refused."""
    if target.is_symlink():
        raise FaceAlgebraError(f"cannot write {target}: it is a symbolic link, and facealgebra does not write "
                               "through links; remove it or choose another name")


def kept_mode(target: Path) -> int:
    """The permissions of a new file's content: a replaced file keeps its own (a private 0600 stays private);
    a new one gets the usual ones (mkstemp makes 0600 files)."""
    try:
        return stat.S_IMODE(os.lstat(target).st_mode)
    except FileNotFoundError:
        return 0o666 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


# ---- several files replaced together ---------------------------------------------------------------------------
COMMIT_MARKER = ".commit.json"


@contextlib.contextmanager
def atomic_files(*paths: Path) -> Iterator[list[Path]]:
    """Like atomic_path for several files in one folder, which replace their predecessors together: after the
    process is killed at any moment the folder holds either all the old files or, once `finish_commit` has run
    (the next writer into the folder runs it), all the new ones. One rename is atomic, two are not, hence:

    1. the caller writes every temporary file in full;
    2. a marker naming each temporary file and its target is written (atomically): the commit point;
    3. each temporary file is moved onto its target, then the marker is removed.

    A kill before 2 leaves stray temporary files beside the old files (`remove_stale_temps` clears them); a kill
    after it leaves the marker, from which `finish_commit` completes the moves. Like atomic_path, this guards
    against a killed process, not a power cut: nothing here calls fsync."""
    targets = [Path(path) for path in paths]
    folder = targets[0].parent
    temps: list[Path] = []
    for target in targets:
        refuse_link(target)
    try:
        temps.extend(temp_beside(target) for target in targets)
        yield temps
        for tmp, target in zip(temps, targets):
            os.chmod(tmp, kept_mode(target))
        faults.point("commit-files-written")
    except BaseException:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        raise
    with atomic_path(folder / COMMIT_MARKER) as marker:
        marker.write_text(json.dumps([[tmp.name, target.name] for tmp, target in zip(temps, targets)]))
    faults.point("commit-marker-written")
    finish_commit(folder)


def finish_commit(folder: Path) -> None:
    """Complete the moves of a commit that a kill cut short after its marker was written; nothing without one."""
    marker = folder / COMMIT_MARKER
    if not marker.exists():
        return
    try:
        moves = json.loads(marker.read_text())
    except (ValueError, OSError) as exc:
        raise FaceAlgebraError(f"{marker}: unreadable commit marker ({exc}); the files it names are suspect") from None
    for tmp_name, target_name in moves:
        if (folder / tmp_name).exists():  # else it was moved before the kill
            os.replace(folder / tmp_name, folder / target_name)
            faults.point(f"commit-moved-{target_name}")
    marker.unlink()


def remove_stale_temps(folder: Path, names: str) -> None:
    """Remove the temporary files that killed atomic writes of files named by the regular expression `names` left
    in `folder`: `.NAME.XXXXXXXX.tmp`, as `temp_beside` names them, and `..NAME.XXXXXXXX.tmp.XXXXXXXX.tmp`, which
    version 0.1.0 made by writing a temporary file itself atomically. Only while no writer can be at work there."""
    stale = re.compile(rf"\.\.?(?:{names})(?:\.[a-z0-9_]{{8}}\.tmp){{1,2}}")
    for entry in folder.iterdir() if folder.is_dir() else ():
        if entry.is_file() and stale.fullmatch(entry.name):
            entry.unlink()


# ---- a folder's lock -------------------------------------------------------------------------------------------
LOCK_FILE = ".lock"
# The descriptors of the flocks this process holds. A forked worker shares them, and a flock lasts while any
# process has its descriptor: workers orphaned by a SIGKILL of their parent kept --out and the cache locked. A
# worker closes these at start (data/cache.py).
HELD_LOCKS: set[int] = set()


@contextlib.contextmanager
def held_lock(handle) -> Iterator[None]:
    """Register an open, flocked file's descriptor in HELD_LOCKS while it is held."""
    HELD_LOCKS.add(handle.fileno())
    try:
        yield
    finally:
        HELD_LOCKS.discard(handle.fileno())


@contextlib.contextmanager
def folder_lock(folder: Path, label: str) -> Iterator[None]:
    """Hold `folder` (which must exist) against every other process taking this lock; fail at once, naming the
    holder, if one has it. An flock, which the system releases when its process ends, even by SIGKILL: a killed
    run never leaves a folder locked."""
    import fcntl  # POSIX only; imported here so the rest of this module works anywhere

    try:  # O_NOFOLLOW: a link planted at .lock must not get its target truncated
        descriptor = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as exc:
        problem = "is a symbolic link; remove it" if (folder / LOCK_FILE).is_symlink() else f"({exc.strerror})"
        raise FaceAlgebraError(f"cannot lock {label}: {folder / LOCK_FILE} {problem}") from None
    with open(descriptor, "r+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise FaceAlgebraError(f"{label} is in use by process {holder}: wait for it to end, or choose another "
                                   f"folder") from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        with held_lock(handle):
            yield
