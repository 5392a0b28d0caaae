"""`facealgebra train` under torchrun: two CPU processes (gloo) train one model, end to end in subprocesses."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, run_cli
from torchrun_launch import torchrun_command
from facealgebra.checkpoint import LoadedModel, load_model, load_train_state
from facealgebra.config import get_preset
from facealgebra.data import load_data
from facealgebra.errors import FaceAlgebraError
from facealgebra.model import VLAE
from facealgebra.train import TrainJob, batch_indices, resolve_configs

TINY = ["--data", "synthetic:64", "--preset", "tiny", "--device", "cpu"]
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # the same reduction order in every run, and no fight over 2 cores


def torchrun(*args, script: str = "-m facealgebra", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(torchrun_command(2, *args, script=script), capture_output=True, text=True, cwd=REPO,
                          timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1", **ONE_THREAD, **(env or {})})


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def same_function(run_a: Path, run_b: Path) -> bool:
    """Equal encodings and decodings of fixed inputs. (Raw weights are no test: a conv bias followed by
    GroupNorm has a gradient of pure rounding noise, which Adam scales up to whole steps of either sign.)"""
    model_a, model_b = load_model(run_a).model, load_model(run_b).model
    x = torch.rand(32, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        latents_a, latents_b = model_a.encode(x), model_b.encode(x)
        decoded_a, decoded_b = model_a.decode(latents_a), model_b.decode(latents_a)
    return (all(torch.allclose(a, b, atol=1e-5) for a, b in zip(latents_a, latents_b))
            and torch.allclose(decoded_a, decoded_b, atol=1e-5))


def assert_intact(out: Path) -> int:
    """The model and trainer state load, belong to the same step, and no temporary file is left; the step."""
    model = load_model(out)  # checks the weights against their fingerprint
    step = load_train_state(out / "train_state.safetensors").step  # checks it against its fingerprint
    assert step == model.training["steps"] > 0
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    return step


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """4 steps of `tiny`: two processes with --batch-size 8 (noting their batches and saves), and one process
    with --batch-size 16."""
    root = tmp_path_factory.mktemp("ddp")
    two, one, notes = root / "two", root / "one", root / "notes"
    notes.mkdir()
    two_result = torchrun("train", *TINY, "--steps", "4", "--batch-size", "8", "--seed", "5", "--out", two,
                          script=str(REPO / "tests" / "ddp_probe.py"), env={"PROBE_DIR": str(notes)})
    one_result = run_cli("train", *TINY, "--steps", "4", "--batch-size", "16", "--seed", "5", "--out", one,
                         env=ONE_THREAD)
    assert two_result.returncode == 0, two_result.stderr
    assert one_result.returncode == 0, one_result.stderr
    return {"two": two, "one": one, "stderr": two_result.stderr, "notes": notes}


def test_two_processes_train_what_one_process_trains_with_the_doubled_batch(runs):
    assert "global batch 16 = 8 x 2 processes" in runs["stderr"] and "lr 0.002" in runs["stderr"]
    assert same_function(runs["two"], runs["one"])
    losses_two, losses_one = ([r["loss"] for r in read_jsonl(runs[name] / "metrics.jsonl")] for name in ("two", "one"))
    assert losses_two == pytest.approx(losses_one, rel=1e-5)
    assert load_model(runs["two"]).training["batch_size"] == 16  # the global batch is what a run records


def test_the_two_processes_train_on_different_halves_of_each_global_batch(runs):
    notes = {rank: read_jsonl(runs["notes"] / f"rank-{rank}.jsonl") for rank in (0, 1)}
    batches = {rank: {entry["step"]: entry["indices"] for entry in notes[rank] if "step" in entry} for rank in (0, 1)}
    assert sorted(batches[0]) == sorted(batches[1]) == [0, 1, 2, 3]
    for step in range(4):
        assert len(batches[0][step]) == len(batches[1][step]) == 8
        assert not set(batches[0][step]) & set(batches[1][step])
        assert batches[0][step] + batches[1][step] == batch_indices(64, 16, seed=5, step=step).tolist()


def test_only_rank_0_writes_and_the_checkpoint_is_written_once(runs):
    saves = {rank: [e["saved"] for e in read_jsonl(runs["notes"] / f"rank-{rank}.jsonl") if "saved" in e]
             for rank in (0, 1)}
    assert saves == {0: [4], 1: []}
    assert [r["step"] for r in read_jsonl(runs["two"] / "metrics.jsonl")] == [4]
    assert [p.name for p in (runs["two"] / "samples").iterdir()] == ["step-000004.png"]
    assert runs["stderr"].count("training tiny") == 1  # one voice on stderr, rank 0's


def test_resume_works_with_another_number_of_processes(runs, tmp_path):
    # The two-process run continued by one process, and the one-process run continued by two, both from the
    # saved global batch of 16: they stay the same model.
    by_one, by_two = tmp_path / "by-one", tmp_path / "by-two"
    for source, target in ((runs["two"], by_one), (runs["one"], by_two)):
        target.mkdir()
        for item in source.iterdir():
            if item.is_file():
                (target / item.name).write_bytes(item.read_bytes())
    one_result = run_cli("train", *TINY, "--steps", "8", "--out", by_one, "--resume", env=ONE_THREAD)
    two_result = torchrun("train", *TINY, "--steps", "8", "--out", by_two, "--resume")
    assert one_result.returncode == 0, one_result.stderr
    assert two_result.returncode == 0, two_result.stderr
    assert "batch 16," in one_result.stderr and "global batch 16 = 8 x 2 processes" in two_result.stderr
    assert same_function(by_one, by_two)
    assert assert_intact(by_two) == 8


def test_a_global_batch_that_the_processes_cannot_share_is_refused_on_resume(tmp_path):
    tiny = get_preset("tiny").model
    previous = LoadedModel(VLAE(tiny), {}, {"batch_size": 16}, "", tmp_path / "model.safetensors")
    data = load_data("synthetic:64", tiny.image_size, tiny.channels)
    job = TrainJob(data="synthetic:64", preset="tiny", out=tmp_path, resume=True)
    with pytest.raises(FaceAlgebraError, match="global batches of 16, which 3 processes cannot share"):
        resolve_configs(job, data, previous, world_size=3)
    assert resolve_configs(job, data, previous, world_size=4)[1].batch_size == 4
    assert resolve_configs(TrainJob(**{**job.__dict__, "batch_size": 5}), data, previous, 3)[1].batch_size == 5


def start_long_run(out: Path) -> subprocess.Popen:
    """Two processes training `tiny` for a million steps, in a session of their own (as if in a terminal);
    returns once the first checkpoint is on disk."""
    process = subprocess.Popen(
        torchrun_command(2, "train", *TINY, "--steps", "1000000", "--save-every", "20", "--sample-every", "1000000",
                         "--out", out),
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=REPO, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **ONE_THREAD})
    deadline = time.time() + 120
    while not (out / "train_state.safetensors").exists():
        assert time.time() < deadline and process.poll() is None, "the run did not reach its first checkpoint"
        time.sleep(0.2)
    return process


def workers(agent: subprocess.Popen) -> dict[int, int]:
    """RANK -> pid of the training processes torchrun started."""
    children = Path(f"/proc/{agent.pid}/task/{agent.pid}/children").read_text().split()
    ranks = {}
    for pid in map(int, children):
        environ = dict(item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item)
        ranks[int(environ["RANK"])] = pid
    return ranks


def is_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except FileNotFoundError:
        return True


def signal_and_wait(agent: subprocess.Popen, send) -> tuple[dict[int, int], str, float]:
    """send(RANK -> pid) signals the run; returns those pids, torchrun's stderr and the seconds the run took to
    end after the signal."""
    try:
        ranks = workers(agent)
        send(ranks)
        sent_at = time.time()
        _, stderr = agent.communicate(timeout=90)
        return ranks, stderr, time.time() - sent_at
    finally:
        if agent.poll() is None:
            os.killpg(agent.pid, signal.SIGKILL)


def test_killing_one_process_stops_the_other_and_keeps_the_checkpoint_intact(tmp_path):
    out = tmp_path / "run"
    agent = start_long_run(out)
    ranks, stderr, stopped_in = signal_and_wait(agent, lambda ranks: os.kill(ranks[1], signal.SIGKILL))
    assert agent.returncode != 0 and is_gone(ranks[0]), "rank 0 outlived the run"
    assert stopped_in < 20, "rank 0 did not stop by itself (torchrun kills a worker 30 s after asking it to stop)"
    assert "a training process stopped" in stderr and "saved at step" in stderr, stderr
    assert "Traceback" not in stderr.split("error: a training process stopped")[0], stderr
    assert assert_intact(out) >= 20  # the last completed step, saved by rank 0


def test_ctrl_c_stops_both_processes_at_one_step_and_saves_it(tmp_path):
    out = tmp_path / "run"
    agent = start_long_run(out)
    # what a terminal's Ctrl-C does: every process of the session gets SIGINT
    ranks, stderr, stopped_in = signal_and_wait(agent, lambda ranks: os.killpg(agent.pid, signal.SIGINT))
    assert all(is_gone(pid) for pid in ranks.values()) and stopped_in < 20
    assert stderr.count("error: interrupted; checkpoint saved at step") == 2, stderr
    saved_steps = {line.rsplit(" ", 1)[1] for line in stderr.splitlines() if "checkpoint saved at step" in line}
    assert len(saved_steps) == 1, stderr  # both processes stopped after the same step
    assert assert_intact(out) == int(saved_steps.pop())
