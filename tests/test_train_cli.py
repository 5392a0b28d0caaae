"""The `train` command end to end, through the real CLI in a subprocess."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO, assert_usage_error, run_cli
from facealgebra import train as train_module
from facealgebra.checkpoint import load_model
from facealgebra.errors import TrainingError
from facealgebra.train import TrainJob, batch_indices, run_training


def read_metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_200_step_tiny_run_lowers_the_loss_and_writes_every_output(tmp_path):
    out = tmp_path / "run"
    result = run_cli("train", "--data", "synthetic:128", "--preset", "tiny", "--steps", "200", "--out", out,
                     "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""  # stdout is for data only
    records = read_metrics(out)
    assert [r["step"] for r in records] == list(range(10, 201, 10))
    first, last = sum(r["loss"] for r in records[:3]) / 3, sum(r["loss"] for r in records[-3:]) / 3
    assert last < 0.7 * first
    assert len(records[0]["mmd"]) == 2 and records[0]["images_per_s"] > 0
    assert (out / "model.safetensors").exists() and (out / "train_state.safetensors").exists()
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step-000100.png", "step-000200.png"]
    loaded = load_model(out)
    assert loaded.training["steps"] == 200 and loaded.training["data"] == "synthetic:128"
    assert loaded.preprocess["size"] == 16 and loaded.preprocess["channels"] == 1


def test_a_resumed_run_continues_from_the_saved_step_with_the_same_batches(tmp_path):
    common = ["--data", "synthetic:64", "--preset", "tiny", "--device", "cpu"]
    # not the preset's: --resume must keep them
    settings = ["--seed", "3", "--batch-size", "8", "--lr", "1e-3", "--save-every", "20", "--sample-every", "10"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    for steps, out in (("40", straight), ("20", split)):
        result = run_cli("train", *common, *settings, "--steps", steps, "--out", out)
        assert result.returncode == 0, result.stderr
    resumed = run_cli("train", *common, "--steps", "40", "--out", split, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "from step 20" in resumed.stderr
    assert [r["step"] for r in read_metrics(split)] == [10, 20, 30, 40]
    assert (split / "samples" / "step-000030.png").exists()  # the run's --sample-every, not the preset's 100
    # the whole state (weights, Adam moments, RNG, batch order) was restored: the result matches a straight run
    a, b = load_model(straight).model.state_dict(), load_model(split).model.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_init_starts_a_new_run_from_a_models_weights_and_records_it(tiny_model, tmp_path):
    out = tmp_path / "tuned"
    # a learning rate too small to move any weight: what the run saves is what it started from
    result = run_cli("train", "--data", "synthetic:32", "--preset", "tiny", "--steps", "2", "--lr", "1e-12",
                     "--out", out, "--device", "cpu", "--init", tiny_model)
    assert result.returncode == 0, result.stderr
    start, tuned = load_model(tiny_model), load_model(out)
    weights = tuned.model.state_dict()
    assert all(torch.allclose(weights[k], v, atol=1e-6) for k, v in start.model.state_dict().items())
    assert tuned.training["init"] == {"model": str(tiny_model), "fingerprint": start.fingerprint}
    assert tuned.training["steps"] == 2 and tuned.training["lr"] == 1e-12  # this run's settings, not the start's


def test_init_takes_the_shape_of_its_model_not_the_preset(tiny_model, tmp_path):
    out = tmp_path / "tuned"
    result = run_cli("train", "--data", "synthetic:32", "--preset", "mnist", "--steps", "2", "--batch-size", "8",
                     "--out", out, "--device", "cpu", "--init", tiny_model)
    assert result.returncode == 0, result.stderr
    assert load_model(out).model.cfg == load_model(tiny_model).model.cfg


@pytest.mark.parametrize(
    "flags, fragments",
    [
        (["--init", "no-such-model"], ["--init", "no-such-model"]),
        (["--init", "tiny", "--resume"], ["--init", "--resume"]),
    ],
)
def test_bad_init_exits_2_with_one_error_line(tiny_model, tmp_path, flags, fragments):
    flags = [str(tiny_model) if flag == "tiny" else flag for flag in flags]
    result = run_cli("train", "--data", "synthetic:32", "--preset", "tiny", "--steps", "2", "--out",
                     tmp_path / "run", "--device", "cpu", *flags)
    assert_usage_error(result, *fragments)
    assert not (tmp_path / "run").exists()


def test_init_refuses_another_regulariser(tiny_model, tmp_path):
    result = run_cli("train", "--data", "synthetic:32", "--preset", "tiny", "--steps", "2", "--out",
                     tmp_path / "run", "--device", "cpu", "--init", tiny_model, "--reg", "kl")
    assert_usage_error(result, "--reg kl", "--init", "mmd")


def test_beta_weights_the_regulariser_and_is_saved_with_the_model(tiny_model, tmp_path):
    out = tmp_path / "unregularised"
    result = run_cli("train", "--data", "synthetic:32", "--preset", "tiny", "--steps", "10", "--out", out,
                     "--device", "cpu", "--init", tiny_model, "--beta", "0")
    assert result.returncode == 0, result.stderr
    record = read_metrics(out)[-1]
    assert record["loss"] == pytest.approx(record["recon"]) and any(abs(m) > 1e-4 for m in record["mmd"])
    assert load_model(out).model.cfg.beta == 0.0 and load_model(tiny_model).model.cfg.beta == 1.0


def test_direct_heads_and_progressive_training_are_saved_and_kept_on_resume(tiny_model, tmp_path):
    out = tmp_path / "run"
    common = ["--data", "synthetic:32", "--preset", "tiny", "--out", out, "--device", "cpu"]
    first = run_cli("train", *common, "--steps", "10", "--heads", "direct", "--progressive", "8")
    assert first.returncode == 0, first.stderr
    resumed = run_cli("train", *common, "--steps", "20", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    loaded = load_model(out)
    assert loaded.model.cfg.heads == "direct" and loaded.training["progressive"] == 8
    refused = run_cli("train", *common, "--steps", "30", "--resume", "--heads", "conv")
    assert_usage_error(refused, "--heads conv", "direct")
    assert run_cli("train", "--data", "synthetic:32", "--preset", "tiny", "--steps", "2", "--out", tmp_path / "b",
                   "--device", "cpu", "--init", tiny_model, "--heads", "direct").returncode == 2


def test_batches_are_a_function_of_seed_and_step():
    first = batch_indices(100, 32, seed=0, step=5)
    assert torch.equal(first, batch_indices(100, 32, seed=0, step=5))
    epoch = torch.cat([batch_indices(100, 25, seed=0, step=s) for s in range(4)])
    assert sorted(epoch.tolist()) == list(range(100))  # one epoch sees every image once


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--preset", "huge"], ["unknown preset 'huge'"]),
        (["--data", "nonsense:abc"], ["unknown data spec 'nonsense:abc'"]),
        (["--reg", "wasserstein"], ["--reg 'wasserstein'"]),
        (["--steps", "0"], ["--steps must be at least 1"]),
        (["--beta", "-1"], ["--beta must be 0 or more"]),
        (["--heads", "attention"], ["--heads 'attention'"]),
        (["--progressive", "-3"], ["--progressive must be 0"]),
        (["--device", "cuda:9"], ["--device cuda:9"]),
    ],
)
def test_bad_train_input_exits_2_with_one_error_line(tmp_path, args, fragments):
    base = {"--data": "synthetic:32", "--preset": "tiny", "--out": str(tmp_path / "run"), "--steps": "5"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    result = run_cli("train", *[item for pair in base.items() for item in pair])
    assert_usage_error(result, *fragments)
    assert not (tmp_path / "run").exists()  # not even an empty folder


def test_an_unwritable_out_is_refused(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    result = run_cli("train", "--data", "synthetic:32", "--preset", "tiny", "--out", blocker / "run")
    assert_usage_error(result, "file.txt")


def test_an_existing_model_is_never_overwritten_without_resume(tiny_model):
    before = tiny_model.read_bytes()
    result = run_cli("train", "--data", "synthetic:32", "--preset", "tiny", "--out", tiny_model.parent)
    assert_usage_error(result, "--resume")
    assert tiny_model.read_bytes() == before


def test_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "facealgebra", "train", "--data", "synthetic:64", "--preset", "tiny",
         "--steps", "1000000", "--out", str(out), "--device", "cpu", "--save-every", "1000000"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.time() + 120
    while not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text():
        assert time.time() < deadline and process.poll() is None
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "checkpoint saved at step" in stderr and "Traceback" not in stderr
    assert load_model(out).training["steps"] > 0


def test_a_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "run"
    job = TrainJob(data="synthetic:32", preset="tiny", out=out, steps=10, save_every=5, sample_every=5)
    run_training(job, torch.device("cpu"), log=lambda message: None)
    good = (out / "model.safetensors").read_bytes()

    monkeypatch.setattr(train_module, "reconstruction", lambda x_hat, x: torch.tensor(float("nan")))
    with pytest.raises(TrainingError, match="last good checkpoint"):
        run_training(TrainJob(data="synthetic:32", preset="tiny", out=out, steps=20, resume=True),
                     torch.device("cpu"), log=lambda message: None)
    assert (out / "model.safetensors").read_bytes() == good


def test_augment_flips_and_shifts_each_image_by_its_own_window():
    """augment gathers every image's shifted window in one indexing op; each must be the slice of that image's
    replicate-padded copy at the shift drawn for it, flipped where its flip was drawn."""
    from facealgebra.train import augment

    batch = torch.rand(6, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    torch.manual_seed(1)
    out = augment(batch, max_shift=2)
    torch.manual_seed(1)
    flip = torch.rand(6) < 0.5
    shifts = torch.randint(0, 5, (6, 2))
    padded = torch.nn.functional.pad(torch.where(flip[:, None, None, None], batch.flip(3), batch), [2] * 4,
                                     mode="replicate")
    for i, (dy, dx) in enumerate(shifts.tolist()):
        torch.testing.assert_close(out[i], padded[i, :, dy:dy + 8, dx:dx + 8], rtol=0, atol=0)
    assert out.is_contiguous(memory_format=torch.channels_last) and 0 < flip.sum() < 6
