"""Make the generated portraits in examples/photos/ (run once; the pictures are committed).

They come from MobileStyleGAN, a StyleGAN2 generator trained on FFHQ and distilled, shipped as OpenVINO IR in the
`random-face` wheel; no real person is shown. Needs `pip install openvino` and
`pip install --no-deps random-face==2021.7.21.1` (its own Python code is not used, only its model files).
Face k is face k of the `stylegan:N` data source (facealgebra/data/stylegan.py): drawn from seed k, truncated
towards the mean style (psi 0.7), rendered at 1024 px; here it is saved whole at 512 px, not aligned.

    python examples/make_photos.py 3 11 24 -o examples/photos
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facealgebra.data.stylegan import StyleGAN
from facealgebra.errors import FaceAlgebraError

SIDE = 512


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seeds", type=int, nargs="+")
    parser.add_argument("-o", "--out", type=Path, required=True)
    args = parser.parse_args()
    try:
        gan = StyleGAN()
    except FaceAlgebraError as exc:
        raise SystemExit(f"error: {exc}") from None
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        gan.portrait(seed, SIDE).save(args.out / f"generated-{seed}.jpg", quality=92)


if __name__ == "__main__":
    main()
