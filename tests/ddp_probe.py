"""`facealgebra` as one torchrun process that also notes what it trains on and what it saves, for
test_distributed.py: each process appends JSON lines to $PROBE_DIR/rank-$RANK.jsonl, {"step", "indices"} for
every batch it draws and {"saved": step} for every model file it writes. Otherwise it is `python -m facealgebra`.
"""

import json
import os
import sys
from pathlib import Path

from facealgebra import train
from facealgebra.cli import main

NOTES = Path(os.environ["PROBE_DIR"]) / f"rank-{os.environ['RANK']}.jsonl"
draw_batch, write_model = train.batch_indices, train.write_model


def note(entry: dict) -> None:
    with open(NOTES, "a") as notes:
        notes.write(json.dumps(entry) + "\n")


def noted_batch_indices(num_images, batch_size, seed, step, ranks):
    indices = draw_batch(num_images, batch_size, seed, step, ranks)
    note({"step": step, "indices": indices.tolist()})
    return indices


def noted_write_model(path, model, preprocess, training):
    note({"saved": training["steps"]})
    return write_model(path, model, preprocess, training)


train.batch_indices, train.write_model = noted_batch_indices, noted_write_model
main(sys.argv[1:])
