"""What a model file's metadata must hold, checked before anything is built or allocated from it.

The fingerprint covers only the tensors, so the metadata of a model file is as untrusted as any input: a crafted
config built 8.5 GB of weights, and a crafted recipe resized every photo to 9000 x 9000. Each check here is cheap
and needs no torch; checkpoint.load_model then compares the tensors' shapes in the file's header with the network
the config describes, before reading a single weight.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from facealgebra.config import MAX_IMAGE_SIZE, ModelConfig
from facealgebra.errors import FaceAlgebraError

# Seven times the largest preset (faces64: 14.7 M weights, 59 MB in float32): enough for any model this tool
# trains, small enough that a crafted file cannot make us build gigabytes.
MAX_PARAMETERS = 100_000_000
MAX_FRAME = 8192  # a template's frame is the training photos' size; the warp renders it (up to 4x oversampled)
LANDMARKS = 5


@dataclass(frozen=True)
class ModelMetadata:
    config: ModelConfig
    preprocess: dict
    training: dict
    fingerprint: str


def parse_metadata(metadata: dict[str, str], fmt: str, name: str) -> ModelMetadata:
    """The checked metadata of model file `name`; FaceAlgebraError naming the field at fault otherwise."""
    if metadata.get("format") != fmt:
        raise FaceAlgebraError(f"{name}: not a facealgebra model (format {metadata.get('format')!r})")
    for key in ("config", "preprocess", "fingerprint"):
        if key not in metadata:
            raise FaceAlgebraError(f"{name}: the model file has no {key}; it is damaged")
    try:
        config = ModelConfig.from_json(metadata["config"])
    except FaceAlgebraError as exc:
        raise FaceAlgebraError(f"{name}: {exc}") from None
    except TypeError as exc:  # a field JSON gave a type the dataclass cannot take
        raise FaceAlgebraError(f"{name}: the model's config is malformed ({exc})") from None
    preprocess = json_object(metadata["preprocess"], "preprocess", name)
    training = json_object(metadata.get("training", "{}"), "training", name)
    check_recipe(preprocess, config, name)
    return ModelMetadata(config, preprocess, training, metadata["fingerprint"])


def json_object(text: str, key: str, name: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        raise FaceAlgebraError(f"{name}: the model's {key} is not JSON") from None
    if not isinstance(value, dict):
        raise FaceAlgebraError(f"{name}: the model's {key} is not a JSON object")
    return value


def check_recipe(recipe: dict, config: ModelConfig, name: str) -> None:
    """The photo recipe must produce what the network takes: its size and channels, a sane crop and template."""
    def bad(what: str) -> FaceAlgebraError:
        return FaceAlgebraError(f"{name}: the model's preprocess recipe {what}")

    if recipe.get("size") != config.image_size or not is_whole(recipe.get("size")):
        raise bad(f"has size {recipe.get('size')!r}, but the network takes {config.image_size} pixels "
                  f"(at most {MAX_IMAGE_SIZE})")
    if recipe.get("channels") != config.channels or not is_whole(recipe.get("channels")):
        raise bad(f"has channels {recipe.get('channels')!r}, but the network takes {config.channels}")
    crop = recipe.get("crop_fraction", 1.0)
    if not is_number(crop) or not 0 < crop <= 1:
        raise bad(f"has crop_fraction {crop!r}; it must be a number in (0, 1]")
    template = recipe.get("template")
    if template:
        check_template(template, bad)


def check_template(template: object, bad) -> None:
    if not isinstance(template, dict):
        raise bad("has a template that is not a JSON object")
    frame = template.get("frame")
    if (not isinstance(frame, list) or len(frame) != 2 or not all(is_whole(side) for side in frame)
            or not all(1 <= side <= MAX_FRAME for side in frame)):
        raise bad(f"has a template frame of {frame!r}; it must be [width, height], each 1 to {MAX_FRAME} pixels")
    landmarks = template.get("landmarks")
    if (not isinstance(landmarks, list) or len(landmarks) != LANDMARKS
            or not all(isinstance(point, list) and len(point) == 2 for point in landmarks)
            or not all(is_number(value) and math.isfinite(value) for point in landmarks for value in point)):
        raise bad(f"has template landmarks that are not {LANDMARKS} finite (x, y) points")
    if landmarks[0] == landmarks[1]:  # the eyes fix the similarity's scale: one point would divide by zero
        raise bad("has a template whose two eyes are one point")


def is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
