"""`train` when runs are killed, interrupted, run twice at once or resumed from damaged or mismatched files, through
the real CLI in a subprocess. FACEALGEBRA_KILL_AT (facealgebra/faults.py) SIGKILLs a run at a named point of its
checkpoint save."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import assert_usage_error, run_cli
from facealgebra import train as train_module
from facealgebra.checkpoint import load_model
from facealgebra.errors import Interrupted
from facealgebra.fileio import folder_lock
from facealgebra.train import TrainJob, run_training

TINY = ["--data", "synthetic:64", "--preset", "tiny", "--device", "cpu", "--save-every", "2"]
# every named point of the model/state save, in the order a save reaches them
SAVE_POINTS = ["checkpoint-model-written", "commit-files-written", "commit-marker-written",
               "commit-moved-model.safetensors", "commit-moved-train_state.safetensors"]


def train(out: Path, steps: int, *flags: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_cli("train", *TINY, "--steps", str(steps), "--out", out, *flags, env=env)


def steps_logged(out: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> str:
    """The fingerprint of 6 steps trained without a stop."""
    out = tmp_path_factory.mktemp("straight") / "run"
    assert train(out, 6).returncode == 0
    return load_model(out).fingerprint


@pytest.fixture(scope="module")
def saved_at_2(tmp_path_factory) -> Path:
    """A run saved at step 2 (of the same 6-step run as `straight`), for the tests to copy."""
    out = tmp_path_factory.mktemp("at-2") / "run"
    assert train(out, 2).returncode == 0
    return out


@pytest.fixture
def run_at_2(saved_at_2, tmp_path) -> Path:
    return Path(shutil.copytree(saved_at_2, tmp_path / "run"))


# ---- a kill at any point of a save -----------------------------------------------------------------------------
@pytest.mark.parametrize("point", SAVE_POINTS)
def test_a_kill_at_any_point_of_a_save_resumes_to_the_same_model(run_at_2, straight, point):
    killed = train(run_at_2, 6, "--resume", env={"FACEALGEBRA_KILL_AT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr  # killed at the save of step 4
    assert not [p.name for p in run_at_2.iterdir() if ".tmp." in p.name]  # no temporary file of a temporary file
    resumed = train(run_at_2, 6, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert load_model(run_at_2).fingerprint == straight
    assert steps_logged(run_at_2) == [2, 4, 6]
    assert sorted(p.name for p in run_at_2.iterdir()) == [".lock", "metrics.jsonl", "model.safetensors", "samples",
                                                          "train_state.safetensors"]


def test_a_model_and_state_of_different_saves_are_refused(run_at_2, tmp_path):
    later = tmp_path / "later"
    assert train(later, 4).returncode == 0
    shutil.copy(later / "model.safetensors", run_at_2 / "model.safetensors")
    result = train(run_at_2, 6, "--resume")
    assert_usage_error(result, "train_state.safetensors (step 2)", "model.safetensors (step 4)", "--init")


def test_stale_temporary_files_are_removed_and_no_others(run_at_2):
    stale = [".model.safetensors.ab12cd34.tmp", "..train_state.safetensors.ab12cd_4.tmp.zz99yy88.tmp",
             ".metrics.jsonl.q1w2e3r4.tmp", "..commit.json.0a0a0a0a.tmp", "samples/.step-000002.png.k9k9k9k9.tmp"]
    users = ["notes.tmp", ".model.safetensors.backup", ".mine.ab12cd34.tmp", "samples/.step-2.png.ab12cd34.tmp"]
    for name in stale + users:
        (run_at_2 / name).write_bytes(b"x")
    result = train(run_at_2, 4, "--resume")
    assert result.returncode == 0, result.stderr
    assert not [name for name in stale if (run_at_2 / name).exists()]
    assert all((run_at_2 / name).exists() for name in users)


# ---- two runs, one folder --------------------------------------------------------------------------------------
def test_a_second_training_into_a_held_folder_is_refused(run_at_2):
    before = {p.name: p.read_bytes() for p in run_at_2.iterdir() if p.is_file() and p.name != ".lock"}
    with folder_lock(run_at_2, "the first run"):  # as a training running in it holds it
        result = train(run_at_2, 6, "--resume")
    assert_usage_error(result, f"--out {run_at_2}", f"process {os.getpid()}")
    assert {p.name: p.read_bytes() for p in run_at_2.iterdir() if p.is_file() and p.name != ".lock"} == before


# ---- --resume checks what it continues -------------------------------------------------------------------------
@pytest.mark.parametrize("flag, value, saved", [("--data", "synthetic:32", "synthetic:64"), ("--preset", "mnist", "tiny")])
def test_resume_refuses_other_data_or_preset(run_at_2, flag, value, saved):
    flags = TINY[:TINY.index(flag)] + [flag, value] + TINY[TINY.index(flag) + 2:]
    result = run_cli("train", *flags, "--steps", "4", "--out", run_at_2, "--resume")
    assert_usage_error(result, f"{flag} {saved}", f"{flag} {value}")
    assert load_model(run_at_2).training["steps"] == 2


def test_a_damaged_trainer_state_is_refused(run_at_2):
    state = run_at_2 / "train_state.safetensors"
    data = bytearray(state.read_bytes())
    data[-200:-136] = bytes(b ^ 0xFF for b in data[-200:-136])  # 64 bytes of the optimizer's moments
    state.write_bytes(bytes(data))
    assert_usage_error(train(run_at_2, 4, "--resume"), str(state), "fingerprint")


def test_a_torn_last_metrics_line_is_dropped_on_resume(run_at_2):
    with open(run_at_2 / "metrics.jsonl", "a") as metrics:
        metrics.write('{"step": 3, "loss": 0.7')  # a run killed while writing it
    result = train(run_at_2, 4, "--resume")
    assert result.returncode == 0, result.stderr
    assert steps_logged(run_at_2) == [2, 4]


def test_a_bad_metrics_line_elsewhere_is_an_error_naming_it(run_at_2):
    metrics = run_at_2 / "metrics.jsonl"
    metrics.write_text("not json\n" + metrics.read_text())
    assert_usage_error(train(run_at_2, 4, "--resume"), str(metrics), "line 1")


# ---- runs that end before a checkpoint -------------------------------------------------------------------------
def test_a_non_finite_loss_before_any_checkpoint_leaves_nothing_and_says_so(tmp_path):
    result = train(tmp_path / "new" / "run", 5, "--lr", "1e30")  # the loss is NaN at step 2, before the first save
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and lines[-1].startswith("error: loss became nan at step 2"), result.stderr
    assert "Nothing was saved" in lines[-1] and "--resume" not in lines[-1]
    assert not (tmp_path / "new").exists()  # nor the folders --out made on the way


def catches_sigterm(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    return bool(int(re.search(r"SigCgt:\s*(\w+)", status).group(1), 16) & (1 << (signal.SIGTERM - 1)))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_sigterm_as_soon_as_train_starts_exits_130_with_a_message(tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "facealgebra", "train", *TINY, "--steps", "6", "--out", str(out)],
                               stderr=subprocess.PIPE, text=True)
    while process.poll() is None and not catches_sigterm(process.pid):
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)  # the earliest moment a SIGTERM can be handled: torch is still loading
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["error: interrupted"] and not out.exists()


def test_an_interruption_before_the_first_checkpoint_leaves_nothing_and_says_so(tmp_path, monkeypatch):
    def interrupted_while_loading(*args):  # what the SIGTERM handler of cli.py raises
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "load_data", interrupted_while_loading)
    out, raised = tmp_path / "run", None
    try:
        run_training(TrainJob(data="synthetic:64", preset="tiny", out=out), torch.device("cpu"), lambda message: None)
    except BaseException as exc:  # caught here: a KeyboardInterrupt reaching pytest would stop the whole session
        raised = exc
    assert isinstance(raised, Interrupted) and "before the first checkpoint: nothing was saved" in str(raised)
    assert not out.exists()


def test_a_sigterm_checkpoint_records_the_step_it_saved(tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "facealgebra", "train", "--data", "synthetic:64", "--preset", "tiny", "--device",
         "cpu", "--steps", "1000000", "--save-every", "1000000", "--out", str(out)],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.time() + 120
    while not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text():
        assert time.time() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)  # after step 10 was logged: the stop comes at a step not logged
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    saved = int(re.search(r"checkpoint saved at step (\d+)", stderr).group(1))
    training = load_model(out).training
    assert training["steps"] == training["final"]["step"] == steps_logged(out)[-1] == saved
