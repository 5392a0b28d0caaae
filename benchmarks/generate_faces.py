"""Speed of the generated-face source (`stylegan:N`): MobileStyleGAN's render at 1024 px, the alignment onto the
face template, and the two together, in faces/s on this machine's CPU (OpenVINO); and the render in each of
OpenVINO's inference precisions, taking turns face by face (`stylegan:N` renders in float32, PRECISION: on a CPU
with AMX, OpenVINO's default is bfloat16, which is slower for this graph).

    python benchmarks/generate_faces.py [--faces 8]

Needs `pip install openvino` and `pip install --no-deps random-face==2021.7.21.1`, and the align extra. Nothing
is written: faces are made in memory (the store that `stylegan:N` fills is not touched). The first face is a
warm-up and is not counted.
"""

from __future__ import annotations

import argparse
import time

from facealgebra.data.stylegan import PRECISION, StyleGAN, aligned_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=8)
    args = parser.parse_args()
    started = time.perf_counter()
    gan = StyleGAN()
    print(f"load and truncation mean: {time.perf_counter() - started:.1f} s")
    aligned_frame(gan.image(0))  # warm-up
    render = align = 0.0
    for index in range(1, args.faces + 1):
        started = time.perf_counter()
        image = gan.image(index)
        rendered = time.perf_counter()
        aligned_frame(image)
        render += rendered - started
        align += time.perf_counter() - rendered
    faces = args.faces
    print(f"render ({PRECISION}) {faces / render:.2f} faces/s ({render / faces:.2f} s each), align "
          f"{faces / align:.2f} faces/s ({align / faces:.2f} s each), together {faces / (render + align):.2f} faces/s")
    generators = {precision: StyleGAN(precision=precision) for precision in ("f32", "bf16")}
    for generator in generators.values():
        generator.image(0)  # warm-up
    seconds = dict.fromkeys(generators, 0.0)
    for index in range(1, faces + 1):
        for precision, generator in generators.items():
            started = time.perf_counter()
            generator.image(index)
            seconds[precision] += time.perf_counter() - started
    print("render by precision, side by side: " + ", ".join(
        f"{precision} {seconds[precision] / faces:.2f} s a face" for precision in generators))


if __name__ == "__main__":
    main()
