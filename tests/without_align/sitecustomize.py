"""Put this folder on PYTHONPATH to run facealgebra as if the `align` extra were not installed: the detector's
package is hidden from importlib.util.find_spec, which is how facealgebra looks for it."""

import importlib.util

_find_spec = importlib.util.find_spec


def _hidden(name, package=None):
    return None if name.split(".")[0] == "retinaface" else _find_spec(name, package)


importlib.util.find_spec = _hidden
