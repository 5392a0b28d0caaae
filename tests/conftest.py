"""Shared fixtures: the real CLI in a subprocess, and a tiny model trained through it once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, input: bytes | None = None, cwd: Path | None = None, timeout: float = 300,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m facealgebra ARGS` and capture stdout (bytes) and stderr (text)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    result = subprocess.run([sys.executable, "-m", "facealgebra", *map(str, args)], input=input,
                            capture_output=True, cwd=cwd, timeout=timeout, env=full_env)
    result.stderr = result.stderr.decode(errors="replace")
    return result


def assert_usage_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 2, one `error: ...` line on stderr naming every fragment, no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def train_tiny(out: Path, data: str, steps: int, *flags: str) -> subprocess.CompletedProcess:
    """Train a `tiny` model on the CPU into `out` by the real CLI, which must succeed."""
    result = run_cli("train", "--data", data, "--preset", "tiny", "--steps", str(steps), "--out", out,
                     "--device", "cpu", *flags)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A `tiny` MMD-VLAE (16x16 grey, 2 layers x 2 dims) trained for 60 steps by the real CLI."""
    out = tmp_path_factory.mktemp("tiny-run") / "run"
    train_tiny(out, "synthetic:64", 60)
    return out / "model.safetensors"
