"""`stylegan:N[?start=K&psi=0.7]`: N photoreal generated faces, faces K..K+N-1, aligned onto the face template.

The generator is MobileStyleGAN (Belousov 2021), a StyleGAN2 trained on FFHQ and distilled, shipped as OpenVINO
IR in the `random-face` wheel (`pip install openvino` and `pip install --no-deps random-face==2021.7.21.1`; its
own Python code is not used, only its model files, found by path). No real person is shown. Face i is a pure
function of i: its latent is drawn from seed i, mapped to a style, truncated towards the mean style of
MEAN_DRAWS fixed draws by psi (style = mean + psi (style - mean); 0.7 gives clean faces), and rendered at 1024 px.

Rendering is the cost (0.2-1 s a face on a 2-core CPU, in float32), so each face is made once: it is aligned the
way a user's photo is aligned at edit time (align.py: RetinaFace's five landmarks, measured again upright, fitted
onto FACE_TEMPLATE) and kept as a FRAME x FRAME uint8 picture in a store under the cache folder
(FACEALGEBRA_CACHE). The store holds chunks of CHUNK consecutive faces, each one .npy written atomically after
its last face, so a killed run loses at most the chunk it was making and resumes at the first missing one; a
chunk that fails to load is deleted and made again. Loading then only resizes the stored frames.

The same template frames the real CelebA photos of `celeba-sample` (data/celeba.py), so the two mix in one run:
`--data stylegan:10000+celeba-sample`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facealgebra import faults
from facealgebra.data import DataRequest, ImageSet, register
from facealgebra.errors import FaceAlgebraError
from facealgebra.specs import WHOLE_NUMBER

if TYPE_CHECKING:
    from PIL import Image

    from facealgebra import align

GENERATOR_INSTALL = "pip install --no-deps random-face==2021.7.21.1"
OPENVINO_INSTALL = "pip install openvino"
MEAN_DRAWS, MEAN_SEED = 500, 0  # the truncation centre: the mean style of these draws
DEFAULT_PSI = 0.7
LATENT = 512
SIDE = 1024  # the generator's output
CHUNK = int(os.environ.get("FACEALGEBRA_STYLEGAN_CHUNK", "250"))  # faces per stored file; tests make it small
STORE_FORMAT = "facealgebra-stylegan/2"  # /2: rendered in float32 (/1 took OpenVINO's default, bfloat16 here)
# OpenVINO runs in bfloat16 by default on CPUs with AMX; float32 is both exact across CPUs and, for this graph on
# this machine, faster (0.20 s against 0.34 s a face, measured side by side by benchmarks/generate_faces.py).
PRECISION = "f32"
MAX_FACES = 10_000_000

# The shared face template, in a FRAME x FRAME picture: the image-left eye, the image-right eye, the nose tip, the
# image-left and image-right mouth corners, as RetinaFace places them. It is the mean of RetinaFace's landmarks
# on CelebA photos (img_align_celeba), scaled to an eye distance of 40 px and centred, with the eyes at 42% of
# the height: the whole face from chin to hairline, some hair and background.
FRAME = 128
FACE_TEMPLATE = [[44.0, 54.0], [84.0, 54.0], [64.0, 78.0], [47.0, 95.5], [81.0, 95.5]]
# Where the generator puts those landmarks (mean over its faces, in its 1024 px picture; FFHQ's alignment fixes
# them): used for the rare face the detector misses, so that face i still exists and is framed alike.
GENERATOR_LANDMARKS = [[379.6, 480.8], [646.3, 475.0], [508.2, 653.7], [394.8, 741.8], [632.5, 738.0]]


def template_record() -> dict:
    from facealgebra.align import template_record as record

    return record(np.array(FACE_TEMPLATE), (FRAME, FRAME), len(FACE_TEMPLATE), "facealgebra face template")


def frame_recipe(size: int, channels: int) -> dict:
    """How a stored FRAME x FRAME face (or a photo aligned onto the template) becomes model input."""
    return {"crop_fraction": 1.0, "size": size, "channels": channels, "range": [0, 1], "template": template_record()}


# ---- the generator ---------------------------------------------------------------------------------------------
def generator_files() -> Path:
    """The folder of MobileStyleGAN's IR files, after checking that both packages are installed."""
    if importlib.util.find_spec("openvino") is None:
        raise FaceAlgebraError(f"generated faces need OpenVINO: install it with {OPENVINO_INSTALL}")
    spec = importlib.util.find_spec("random_face")
    locations = list(spec.submodule_search_locations or []) if spec else []
    folder = Path(locations[0]) / "data" if locations else None
    if folder is None or not all((folder / f"{net}.{suffix}").is_file()
                                 for net in ("MappingNetwork", "SynthesisNetwork") for suffix in ("xml", "bin")):
        raise FaceAlgebraError(f"generated faces need MobileStyleGAN's files from random-face: install them with "
                               f"{GENERATOR_INSTALL}")
    return folder


class StyleGAN:
    """MobileStyleGAN run by OpenVINO on the CPU: `image(i)` is face i at 1024 px, the same on every call."""

    def __init__(self, psi: float = DEFAULT_PSI, precision: str = PRECISION):
        import openvino

        folder = generator_files()
        core = openvino.Core()
        self.mapping, self.synthesis = (
            core.compile_model(core.read_model(folder / f"{net}.xml", folder / f"{net}.bin"), "CPU",
                               {"INFERENCE_PRECISION_HINT": precision})
            for net in ("MappingNetwork", "SynthesisNetwork"))
        draws = np.random.default_rng(MEAN_SEED).standard_normal((MEAN_DRAWS, LATENT)).astype(np.float32)
        self.mean_style = np.mean([self.mapping(draw[None])[0] for draw in draws], axis=0)
        self.psi = psi

    def image(self, index: int) -> Image.Image:
        from PIL import Image

        style = self.mapping(np.random.default_rng(index).standard_normal((1, LATENT)).astype(np.float32))[0]
        pixels = self.synthesis(self.mean_style + self.psi * (style - self.mean_style))[0][0]  # (3, H, W) in [-1, 1]
        return Image.fromarray(np.clip((pixels.transpose(1, 2, 0) + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8))

    def portrait(self, index: int, side: int = 512) -> Image.Image:
        """Face `index` whole (not aligned), resized to side x side: a photo of no real person."""
        from PIL import Image

        return self.image(index).resize((side, side), Image.Resampling.LANCZOS)


def aligned_frame(image: Image.Image) -> np.ndarray:
    """A photo's largest face aligned onto FACE_TEMPLATE, as uint8 (3, FRAME, FRAME); None when no face is found."""
    from facealgebra import align

    faces = align.detect_faces(image)
    if not faces:
        return None
    face = align.upright_landmarks(image, align.pick_face(faces, None, "photo"))
    return np.asarray(align.aligned_crop(image, face, face_template()), dtype=np.uint8).transpose(2, 0, 1)


def face_template() -> align.Template:
    from facealgebra import align

    return align.Template(np.array(FACE_TEMPLATE), (FRAME, FRAME))


def generated_frame(gan: StyleGAN, index: int) -> np.ndarray:
    from facealgebra import align

    image = gan.image(index)
    frame = aligned_frame(image)
    if frame is None:  # framed as the generator frames faces on average
        face = align.Face(np.array([0, 0, SIDE, SIDE], float), np.array(GENERATOR_LANDMARKS), 0.0)
        frame = np.asarray(align.aligned_crop(image, face, face_template()), dtype=np.uint8).transpose(2, 0, 1)
    return frame


# ---- the store -------------------------------------------------------------------------------------------------
def store_folder(psi: float) -> Path:
    """Where the chunks of one generator setting live; the name hashes everything a stored face depends on."""
    from facealgebra.data.cache import cache_dir

    setting = {"format": STORE_FORMAT, "psi": psi, "mean": [MEAN_DRAWS, MEAN_SEED], "frame": FRAME,
               "template": FACE_TEMPLATE, "chunk": CHUNK}
    digest = hashlib.sha256(json.dumps(setting, sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir() / "stylegan" / f"psi{psi:g}-chunk{CHUNK}-{digest}"


def chunk_path(folder: Path, chunk: int) -> Path:
    return folder / f"faces-{chunk * CHUNK:08d}.npy"


def read_chunk(path: Path) -> np.ndarray | None:
    """A stored chunk, or None when it is missing; a damaged one is deleted (it is made again)."""
    if not path.exists():
        return None
    try:
        faces = np.load(path, allow_pickle=False)
        if faces.dtype == np.uint8 and faces.shape == (CHUNK, 3, FRAME, FRAME):
            return faces
        reason = f"shape {faces.shape} {faces.dtype}"
    except (OSError, ValueError, EOFError) as exc:
        reason = str(exc) or type(exc).__name__
    print(f"warning: damaged generated-face chunk {path} ({reason}): deleted it, making it again", file=sys.stderr)
    path.unlink(missing_ok=True)
    return None


def ensure_chunks(psi: float, chunks: range) -> Path:
    """Make every chunk in `chunks` that the store lacks, in order, each written atomically once complete."""
    from facealgebra.data.cache import cache_dir
    from facealgebra.fileio import check_writable_dir

    folder = store_folder(psi)
    missing = [chunk for chunk in chunks if read_chunk(chunk_path(folder, chunk)) is None]
    if not missing:
        return folder
    generator_files()
    from facealgebra import retinaface

    if not retinaface.installed():
        raise FaceAlgebraError(f"generated faces are aligned with the face detector: {retinaface.INSTALL_HINT}")
    try:
        check_writable_dir(folder)
    except FaceAlgebraError as exc:
        raise FaceAlgebraError(f"{exc}; set FACEALGEBRA_CACHE to a writable folder for the generated faces") from None
    folder.mkdir(parents=True, exist_ok=True)
    from facealgebra.fileio import folder_lock, remove_stale_temps

    with folder_lock(folder, f"generated-face store {folder}"):
        remove_stale_temps(folder, r"faces-\d+\.npy")  # chunks a killed run had not finished
        write_chunks(folder, StyleGAN(psi), missing)
    return folder


def write_chunks(folder: Path, gan: StyleGAN, missing: list[int]) -> None:
    from facealgebra.fileio import atomic_path

    progress = GenerationProgress(len(missing) * CHUNK)
    try:
        for chunk in missing:
            path = chunk_path(folder, chunk)
            if path.exists():  # made meanwhile by a run that held the store before this one
                progress.advance(CHUNK)
                continue
            faces = np.empty((CHUNK, 3, FRAME, FRAME), np.uint8)
            for offset in range(CHUNK):
                faces[offset] = generated_frame(gan, chunk * CHUNK + offset)
                progress.advance(1)
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as handle:  # a handle: np.save would add .npy to the temporary name
                    np.save(handle, faces)
                faults.point("stylegan-chunk-saved")
            faults.point("stylegan-chunk-written")
            progress.chunk_done(path)
    finally:
        progress.close()


class GenerationProgress:
    """A bar with faces/s and the time left on a terminal; otherwise one line per chunk written."""

    def __init__(self, total: int):
        from rich.progress import TextColumn

        from facealgebra.progress import make_progress, stderr_is_terminal

        self.total, self.done, self.started = total, 0, time.monotonic()
        self.bar = make_progress(TextColumn("{task.fields[rate]}")) if stderr_is_terminal() else None
        if self.bar:
            self.bar.start()
            self.task = self.bar.add_task("generating faces", total=total, rate="")

    def rate(self) -> float:
        return self.done / max(time.monotonic() - self.started, 1e-9)

    def advance(self, count: int) -> None:
        self.done += count
        if self.bar:
            self.bar.update(self.task, advance=count, rate=f"{self.rate():.2f} faces/s")

    def chunk_done(self, path: Path) -> None:
        if not self.bar:
            left = (self.total - self.done) / max(self.rate(), 1e-9)
            print(f"generated {self.done}/{self.total} faces ({self.rate():.2f} faces/s, {left / 60:.0f} min left): "
                  f"{path.name}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar:
            self.bar.stop()


def generated_faces(start: int, count: int, psi: float = DEFAULT_PSI) -> np.ndarray:
    """Faces start..start+count-1 as uint8 (count, 3, FRAME, FRAME), made first where the store lacks them."""
    chunks = range(start // CHUNK, math.ceil((start + count) / CHUNK))
    folder = ensure_chunks(psi, chunks)
    parts = []
    for chunk in chunks:
        faces = read_chunk(chunk_path(folder, chunk))
        if faces is None:
            raise FaceAlgebraError(f"generated-face chunk {chunk_path(folder, chunk)} vanished while in use")
        first, last = max(start, chunk * CHUNK), min(start + count, (chunk + 1) * CHUNK)
        parts.append(faces[first - chunk * CHUNK:last - chunk * CHUNK])
    return np.concatenate(parts)


# ---- the data source -------------------------------------------------------------------------------------------
def parse_request(request: DataRequest) -> tuple[int, int, float]:
    count_text = request.argument or ""
    if not WHOLE_NUMBER.fullmatch(count_text) or not 1 <= int(count_text) <= MAX_FACES:
        raise FaceAlgebraError(f"data {request.spec!r}: give the number of faces, a whole number from 1 to "
                               f"{MAX_FACES}, as stylegan:N (not {count_text!r})")
    start_text = request.option("start", "0")
    if not WHOLE_NUMBER.fullmatch(start_text) or int(start_text) + int(count_text) > MAX_FACES:
        raise FaceAlgebraError(f"data {request.spec!r}: start must be a whole number from 0, with start + N at most "
                               f"{MAX_FACES}, not {start_text!r}")
    psi_text = request.option("psi", str(DEFAULT_PSI))
    try:
        psi = float(psi_text)
    except ValueError:
        psi = math.nan
    if not 0.0 <= psi <= 1.0:
        raise FaceAlgebraError(f"data {request.spec!r}: psi must be a number from 0 (the mean face) to 1 (no "
                               f"truncation), not {psi_text!r}")
    unknown = sorted(set(request.options) - {"start", "psi"})
    if unknown:
        raise FaceAlgebraError(f"data {request.spec!r}: unknown option {unknown[0]!r} (options: start, psi)")
    return int(count_text), int(start_text), psi


def frames_to_model(frames: np.ndarray, size: int, channels: int) -> np.ndarray:
    """Stored FRAME x FRAME faces resized (and converted) as the recipe says, uint8 (N, channels, size, size)."""
    from PIL import Image

    from facealgebra.images import preprocess

    recipe = frame_recipe(size, channels)
    if size == FRAME and channels == 3:
        return np.ascontiguousarray(frames)
    return np.stack([preprocess(Image.fromarray(frame.transpose(1, 2, 0)), recipe) for frame in frames])


@register("stylegan")
def load_stylegan(request: DataRequest) -> ImageSet:
    count, start, psi = parse_request(request)
    channels = request.channels or 3
    frames = generated_faces(start, count, psi)
    images = frames_to_model(frames, request.image_size, channels)
    return ImageSet(images, request.spec, frame_recipe(request.image_size, channels),
                    names=[f"stylegan-{i}" for i in range(start, start + count)])
