"""Progress bars on stderr, shown only when stderr is a terminal (stdout stays data-only)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

stderr_console = Console(stderr=True)


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def make_progress(*extra: TextColumn) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), *extra,
                    TimeRemainingColumn(), console=stderr_console, transient=False)


class TrainProgress:
    """step, loss, reconstruction, per-layer regulariser and images/s, refreshed every logged step."""

    def __init__(self, start_step: int, total_steps: int):
        self.progress = make_progress(TextColumn("{task.fields[stats]}"))
        self.progress.start()
        self.task = self.progress.add_task("train", total=total_steps, completed=start_step, stats="")

    def update(self, step: int, record: dict) -> None:
        reg_name = "mmd" if "mmd" in record else "kl"
        regs = " ".join(f"{v:.3f}" for v in record[reg_name])
        stats = (f"loss {record['loss']:.4f} recon {record['recon']:.4f} {reg_name} [{regs}] "
                 f"{record['images_per_s']:.0f} img/s")
        self.progress.update(self.task, completed=step, stats=stats)

    def close(self) -> None:
        self.progress.stop()


class CountProgress:
    """A plain counted bar for encoding, evaluation and cache building; silent when stderr is not a terminal."""

    def __init__(self, description: str, total: int):
        self.progress = make_progress() if stderr_is_terminal() else None
        if self.progress:
            self.progress.start()
            self.task = self.progress.add_task(description, total=total)

    def advance(self, amount: int = 1) -> None:
        if self.progress:
            self.progress.advance(self.task, amount)

    def close(self) -> None:
        if self.progress:
            self.progress.stop()
