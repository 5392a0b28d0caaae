"""Before and after for every attribute of a model's catalogue, on three photos: one picture,
examples/gallery/faces-catalogue.jpg (the photo, then photo + attribute for each name; `- smile` on a smiling face,
`- glasses` on the man who wears them).

    python examples/make_catalogue_gallery.py [--model faces]

Each edit is a batch `facealgebra arith - + NAME -o DIR/` over the three photos (needs the align extra); the
identity distances that arith reports (with the judges extra) are printed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
PHOTOS = [HERE / "photos" / "generated-12.jpg", HERE / "photos" / "generated-14.jpg",
          HERE / "photos" / "generated-23.jpg"]
TILE = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="faces")
    parser.add_argument("-o", "--out", default=str(HERE / "gallery" / "faces-catalogue.jpg"))
    args = parser.parse_args()
    listing = subprocess.run([sys.executable, "-m", "facealgebra", "vectors", "--json", "--model", args.model],
                             capture_output=True, text=True, check=True).stdout
    names = [json.loads(line)["name"] for line in listing.splitlines()]
    edits = [f"+ {name}" for name in names] + [f"- {name}" for name in ("smile", "glasses") if name in names]
    columns = [("photo", PHOTOS)]
    with tempfile.TemporaryDirectory() as folder:
        for edit in edits:
            sign, name = edit.split()
            out = Path(folder) / f"{'plus' if sign == '+' else 'minus'}-{name}"
            command = [sys.executable, "-m", "facealgebra", "arith", "-", sign, name, "-o", str(out), "--model",
                       args.model, "--device", "cpu"]
            print("+", " ".join(command[2:]), file=sys.stderr)
            subprocess.run(command, input="\n".join(map(str, PHOTOS)) + "\n", text=True, check=True)
            columns.append((edit, [out / photo.name for photo in PHOTOS]))
        font = ImageFont.load_default(size=18)
        sheet = Image.new("RGB", (TILE * len(columns), TILE * len(PHOTOS) + 30), "white")
        draw = ImageDraw.Draw(sheet)
        for column, (label, paths) in enumerate(columns):
            draw.text((column * TILE + TILE / 2, 15), label, fill="black", font=font, anchor="mm")
            for row, path in enumerate(paths):
                sheet.paste(Image.open(path).convert("RGB").resize((TILE, TILE), Image.Resampling.LANCZOS),
                            (column * TILE, 30 + row * TILE))
        sheet.save(args.out, quality=90)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
