"""The grammar of a data SPEC, `name[:argument][?key=value&...]`, with no knowledge of any source: align.py reads
a model's training spec with it, and data/ resolves specs with it, so neither needs the other for the grammar."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from facealgebra.errors import FaceAlgebraError

# ASCII digits only: str.isdigit() also takes superscripts such as '²', which int() then refuses with a ValueError
WHOLE_NUMBER = re.compile(r"[0-9]+")


def parse_spec(spec: str) -> tuple[str, str | None, dict[str, str]]:
    body, _, query = spec.partition("?")
    name, colon, argument = body.partition(":")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise FaceAlgebraError(f"data {spec!r}: cannot parse options {query!r} (expected key=value&...)") from None
    return name, (argument if colon else None), options


def whole_number(text: str, spec: str, what: str, low: int, high: int) -> int:
    """`text` as a whole number from `low` to `high`, written in ASCII digits; else an error naming `what`."""
    if not WHOLE_NUMBER.fullmatch(text) or not low <= int(text) <= high:
        raise FaceAlgebraError(f"data {spec!r}: {what} must be a whole number from {low} to {high:,}, not {text!r}")
    return int(text)
