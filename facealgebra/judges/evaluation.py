"""`eval`'s judged figures (with the judges extra): does a reconstruction keep the person, and do the model's
pictures look like the real ones.

- Identity: dlib's descriptor of each photo (the original file at its own size where the data came from photos,
  else the model's input) against that of its reconstruction decode(encode(x)), enlarged to MIN_SIDE: the
  same-person rate (L2 < 0.6), the median L2, and rank-1 identification within the set (the nearest photo to a
  reconstruction is its own). The same figures for the model's input itself ("input": the aligned photo at the
  model's size) are the ceiling that the frame allows.
- Realism: KID (realism.py) of the reconstructions and of as many prior draws against the model's inputs, all at
  the model's size; the inputs against themselves would score 0.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from facealgebra.checkpoint import LoadedModel
from facealgebra.data import ImageSet
from facealgebra.judges.identity import IdentityJudge, identity_scores
from facealgebra.judges.realism import RealismJudge, kid
from facealgebra.refine import reconstructions, refined

JUDGED_IMAGES = 500  # at most this many (a seeded subset): dlib reads about 5 faces a second here
BATCH = 64


def pictures(images: np.ndarray) -> list[Image.Image]:
    """uint8 (N, C, H, W) -> RGB pictures."""
    return [Image.fromarray(np.repeat(image, 3, axis=0).transpose(1, 2, 0) if image.shape[0] == 1 else
                            image.transpose(1, 2, 0)) for image in images]


@torch.inference_mode()
def reconstructions_and_draws(loaded: LoadedModel, images: np.ndarray, seed: int,
                              device: torch.device | str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 reconstructions (posterior means, refined by the model's refine_steps, decoded) and as many decoded
    prior draws."""
    model = loaded.model
    rebuilt, drawn = [], []
    for start in range(0, len(images), BATCH):
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + BATCH])).to(device).float() / 255.0
        codes = refined(model, x, [mu for mu, _ in model.posterior(x)], loaded.refine_steps)
        rebuilt.append(reconstructions(model, x, codes, loaded.tune_steps).float().cpu().numpy())
    draws = model.prior_latents(len(images), seed, device)
    for start in range(0, len(images), BATCH):
        drawn.append(model.decode([z[start:start + BATCH] for z in draws]).float().cpu().numpy())
    to_uint8 = lambda parts: (np.concatenate(parts).clip(0, 1) * 255 + 0.5).astype(np.uint8)  # noqa: E731
    return to_uint8(rebuilt), to_uint8(drawn)


def judge_model(loaded: LoadedModel, data: ImageSet, seed: int, device: torch.device | str) -> dict:
    """{"identity": ..., "realism": ...} for `data` (see the module docstring)."""
    subset = np.sort(np.random.default_rng(seed).permutation(len(data))[:JUDGED_IMAGES])
    inputs = data.images[subset]
    rebuilt, drawn = reconstructions_and_draws(loaded, inputs, seed, device)
    identity = IdentityJudge.load()
    if data.sources:
        photos = [Image.open(data.sources[index]).convert("RGB") for index in subset]
        reference = "photo"
    else:
        photos, reference = pictures(inputs), "input"
    photo_descriptors = identity.descriptors(photos)
    rebuilt_scores = identity_scores(photo_descriptors, identity.descriptors(pictures(rebuilt)))
    result = {"identity": {"reference": reference, "reconstruction": rebuilt_scores}}
    if reference == "photo":
        result["identity"]["input"] = identity_scores(photo_descriptors, identity.descriptors(pictures(inputs)))
    if len(inputs) < 2:  # KID compares sets
        result["realism"] = None
        return result
    realism = RealismJudge()
    real = realism.features(inputs.astype(np.float32) / 255.0)
    result["realism"] = {"measure": "KID, EfficientNet-Lite0 features, against the model's inputs",
                         "images": int(len(inputs)),
                         "reconstructions": kid(realism.features(rebuilt.astype(np.float32) / 255.0), real),
                         "prior_draws": kid(realism.features(drawn.astype(np.float32) / 255.0), real)}
    return result


def report_lines(result: dict) -> list[str]:
    """The judged figures, for the terminal."""
    identity, realism = result["identity"], result["realism"]
    rows = [("reconstruction", identity["reconstruction"])] + ([("input (the ceiling)", identity["input"])]
                                                               if "input" in identity else [])
    lines = ["", f"identity (dlib descriptor; against each {identity['reference']}; same person: L2 < 0.6)"]
    for name, scores in rows:
        lines.append(f"  {name}: same person {scores['same_person']:.0%}, median L2 {scores['median_l2']:.2f}, "
                     f"rank-1 {scores['rank1']:.0%} ({scores['faces']} faces)")
    if realism is None:
        lines.append("realism: KID needs two or more images")
    else:
        lines.append(f"realism ({realism['measure']}; 0 = alike): reconstructions {realism['reconstructions']:.4f}, "
                     f"prior draws {realism['prior_draws']:.4f} ({realism['images']} images each)")
    return lines
