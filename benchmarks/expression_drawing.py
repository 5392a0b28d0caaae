"""What drawing an expression by moving the photo's own mouth costs (warping.move_features: a flow fitted on the
model's two pictures, the photo resampled along it, the rest added) against adding the model's change
(photoedit.apply_change), for `+ smile` on a photo.

    python benchmarks/expression_drawing.py [--model faces] [--photo examples/photos/generated-14.jpg] [--repeats 9]

The face is encoded and its two pictures decoded once (by the decoder tuned to it, as arith draws them); then each
drawing runs --repeats times on one thread and the medians are printed, with the flow fit alone and the ratio of the
two drawings (this machine is shared: read the ratio, not the seconds).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

from facealgebra import editing
from facealgebra.algebra import Term, evaluate
from facealgebra.align import photo_input
from facealgebra.catalogue import model_catalogue
from facealgebra.images import load_image
from facealgebra.photoedit import apply_change, placement_mask
from facealgebra.warping import fit_flow, move_features

HERE = Path(__file__).resolve().parent


def median_seconds(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="faces")
    parser.add_argument("--photo", type=Path, default=HERE.parent / "examples" / "photos" / "generated-14.jpg")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    loaded = editing.load_for_editing(args.model, "cpu", tune_steps=None)
    torch.set_num_threads(1)
    photos = photo_input(loaded.preprocess, "auto", None, args.model, "")
    catalogue = model_catalogue(loaded.path, loaded.fingerprint, loaded.path.stem)
    photo = load_image(args.photo)
    code, placement = editing.face_code(loaded, photos, photo, str(args.photo))
    placement = dataclasses.replace(placement, region=catalogue.region("smile"),
                                    tuned=catalogue.drawn_tuned(["smile"]))
    step = catalogue.code("smile", every_layer=False, model_label=loaded.path.stem)
    edited = evaluate([Term(1.0, str(args.photo)), Term(1.0, "smile")], [code, step], "smile")
    before, after = editing.pictures(loaded, code, edited, placement)
    mask = placement_mask(placement, before.shape[-1])
    added = median_seconds(lambda: apply_change(photo, after - before, placement), args.repeats)
    flow = median_seconds(lambda: fit_flow(before, after, mask), args.repeats)
    moved = median_seconds(lambda: move_features(photo, before, after, placement), args.repeats)
    print(f"{args.photo.name} ({photo.width}x{photo.height}), {args.model}, + smile, medians of {args.repeats}:")
    print(f"  change added (apply_change)     {added * 1000:8.1f} ms")
    print(f"  flow fit alone (fit_flow)       {flow * 1000:8.1f} ms")
    print(f"  mouth moved (move_features)     {moved * 1000:8.1f} ms   {moved / added:.1f}x the change added")


if __name__ == "__main__":
    main()
