"""benchmarks/compare.py's rules: which beta or recipe it keeps, and when a difference between models counts."""

import importlib.util
import sys

from conftest import REPO

spec = importlib.util.spec_from_file_location("compare", REPO / "benchmarks" / "compare.py")
compare = importlib.util.module_from_spec(spec)
sys.modules["compare"] = compare  # its dataclasses look their module up
spec.loader.exec_module(compare)


def figures(psnr, share, active=(1, 1, 1)):
    return {"reconstruction": {"psnr": psnr}, "layer_information": {"mean_share": share},
            "layers": [{"active_dims": a} for a in active]}


def test_a_difference_counts_only_when_the_seed_intervals_separate():
    assert compare.separated([0.80, 0.82, 0.81], [0.60, 0.62, 0.61]) == 1
    assert compare.separated([0.60, 0.62, 0.61], [0.80, 0.82, 0.81]) == -1
    assert compare.separated([0.70, 0.80, 0.75], [0.72, 0.78, 0.74]) == 0  # overlapping: no winner
    assert "no separable difference" in compare.verdict("A", [0.70, 0.80], "B", [0.72, 0.78], "share")


def test_the_choice_never_rewards_a_collapsed_or_blurred_model_for_its_share():
    sharp = figures(20.0, 0.50)
    collapsed = figures(19.9, 0.95, active=(0, 1, 1))  # a dead layer makes the share look high
    blurred = figures(18.5, 0.90)  # more than PSNR_SLACK below the best
    better = figures(19.5, 0.60)
    assert compare.choose([sharp, collapsed, blurred, better]) is better
    assert compare.choose([collapsed]) is collapsed  # nothing eligible: the best reconstruction
