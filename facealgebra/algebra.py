"""Latent arithmetic: parse `a.jpg - b.jpg + 1.5*smile.npz` into weighted terms, and sum their codes per layer.

Grammar, over the command line's words:
    expression := [sign] term (sign term)*        sign := "+" | "-"  (a word of its own)
    term       := [weight "*"] operand            weight := a finite number, e.g. 1.5 or -0.5
An operand is an image, a .npz or a folder; the caller turns each into one code (no I/O here, no torch).
A sign glued to a file name (`-b.jpg`) is refused rather than guessed: it could be a file of that name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Collection, Sequence

import numpy as np

from facealgebra.errors import FaceAlgebraError
from facealgebra.latents import MAX_CODE, Latents, stray_value

SIGNS = {"+": 1.0, "-": -1.0}
MAX_WEIGHT = 100.0  # codes lie within a few units of 0: a larger weight only throws the result off the prior
STDIN = "-"  # as a term: each photo path read from stdin in turn (a batch edit)


class ExpressionError(FaceAlgebraError):
    """A malformed expression; the message quotes the expression and points at the token at fault."""

    def __init__(self, tokens: Sequence[str], index: int | None, problem: str):
        self.tokens, self.index = list(tokens), index
        if index is None:
            super().__init__(f"expression: {problem}")
        else:
            super().__init__(f"expression {' '.join(tokens)!r}: token {index + 1} {tokens[index]!r}: {problem}")


@dataclass(frozen=True)
class Term:
    weight: float  # the sign folded in: `- b.jpg` is Term(-1.0, "b.jpg")
    operand: str


# ---- parsing ---------------------------------------------------------------------------------------------------
def parse(tokens: Sequence[str]) -> list[Term]:
    if not tokens:
        raise ExpressionError(tokens, None, "empty; write terms such as a.jpg - b.jpg + c.jpg")
    terms: list[Term] = []
    sign: float | None = None  # the sign waiting for its term
    for index, token in enumerate(tokens):
        if token == STDIN and stdin_term(tokens, index, sign is not None or not terms):
            if any(term.operand == STDIN for term in terms):
                raise ExpressionError(tokens, index, "a second '-': photos come from stdin once")
            terms.append(Term(1.0 if sign is None else sign, STDIN))
            sign = None
            continue
        if token in SIGNS:
            if sign is not None:
                raise ExpressionError(tokens, index, f"a second sign after {tokens[index - 1]!r}; expected a term")
            sign = SIGNS[token]  # a leading sign is allowed: `- a.jpg + b.jpg` is b - a
            continue
        weight, operand = parse_term(tokens, index)
        if terms and sign is None:
            raise ExpressionError(tokens, index, "expected + or - before this term")
        terms.append(Term((1.0 if sign is None else sign) * weight, operand))
        sign = None
    if sign is not None:
        raise ExpressionError(tokens, len(tokens) - 1, "a sign needs a term after it")
    return terms


def stdin_term(tokens: Sequence[str], index: int, term_expected: bool) -> bool:
    """Is the `-` at `index` the stdin term? Where a term is expected (first, or after a sign), a `-` followed by
    a sign or by nothing cannot be a sign: `- + 1.2*smile.npz`, `a.npz + -`. A leading `- a.jpg` stays a sign."""
    following = tokens[index + 1] if index + 1 < len(tokens) else None
    return term_expected and (following is None or following in SIGNS)


def parse_term(tokens: Sequence[str], index: int) -> tuple[float, str]:
    token = tokens[index]
    if not token.strip():
        raise ExpressionError(tokens, index, "an empty term")
    if token.startswith("--"):
        raise ExpressionError(tokens, index, "not an option of this command (see --help)")
    if "*" not in token:
        if token[0] in SIGNS:
            raise ExpressionError(tokens, index, f"put a space after the sign ({token[0]} {token[1:]}), "
                                                 f"or write ./{token} for a file of that name")
        return 1.0, token
    weight_text, _, operand = token.partition("*")
    try:
        weight = float(weight_text)
    except ValueError:
        raise ExpressionError(tokens, index, f"{weight_text!r} before '*' is not a number") from None
    if not abs(weight) <= MAX_WEIGHT:  # also refuses inf and nan
        raise ExpressionError(tokens, index, f"the weight must be a finite number from -{MAX_WEIGHT:g} to "
                                             f"{MAX_WEIGHT:g}")
    if not operand.strip():
        raise ExpressionError(tokens, index, "a weight needs a term after '*', as in 1.5*smile.npz")
    if operand[0] in SIGNS:
        raise ExpressionError(tokens, index, "put the sign before the weight, as in -0.5*b.jpg")
    return weight, operand


def parse_layers(text: str, option: str) -> tuple[int, ...]:
    """`1,3` -> (1, 3): ladder layers are numbered from 1 (shallow, low-level) to L (deep, high-level)."""
    try:
        layers = tuple(sorted({int(part) for part in text.split(",")}))
    except ValueError:
        raise FaceAlgebraError(f"{option} {text!r}: expected layer numbers such as 1 or 1,3") from None
    if any(layer < 1 for layer in layers):
        raise FaceAlgebraError(f"{option} {text!r}: layers are numbered from 1")
    return layers


def check_layers(layers: Collection[int], num_layers: int, option: str) -> None:
    too_deep = [layer for layer in layers if layer > num_layers]
    if too_deep:
        raise FaceAlgebraError(f"{option} {too_deep[0]}: the model has {num_layers} layers (1 to {num_layers})")


# ---- evaluation ------------------------------------------------------------------------------------------------
def evaluate(terms: Sequence[Term], codes: Sequence[Latents], name: str,
             layers: Collection[int] | None = None, base: int = 0) -> Latents:
    """sum_i w_i z_i, layer by layer, over one-row codes (codes[i] is terms[i]'s).

    With `layers` (1-based), only those layers are summed; the others are copied unchanged from the code of term
    `base` (the face being edited), which is how lighting changes while identity stays.
    """
    result = []
    for layer in range(len(codes[0].layers)):
        if layers is not None and layer + 1 not in layers:
            result.append(codes[base].layers[layer].copy())
            continue
        total = np.float32(terms[0].weight) * codes[0].layers[layer]
        for term, code in zip(terms[1:], codes[1:]):
            total = total + np.float32(term.weight) * code.layers[layer]
        check_sum(terms, codes, name, layer, total)
        result.append(total)
    return Latents(tuple(result), (name,), codes[0].fingerprint)


def check_sum(terms: Sequence[Term], codes: Sequence[Latents], name: str, layer: int, total: np.ndarray) -> None:
    """Refuse a sum that is no code (see MAX_CODE), naming the term that weighs most in it."""
    value = stray_value(total)
    if value is None:
        return
    heaviest = max(zip(terms, codes), key=lambda pair: float(np.abs(pair[0].weight * pair[1].layers[layer]).max()))
    raise FaceAlgebraError(f"expression {name!r}: layer z{layer + 1} of the result reaches {value:g}, beyond the "
                           f"+-{MAX_CODE:g} where codes lie; its largest term is {heaviest[0].operand!r}: use a "
                           "smaller weight, or codes made by encode")


def edited_term(terms: Sequence[Term], is_photo: Sequence[bool], onto: str | None) -> int | None:
    """The index of the term whose photo an edit lands on: the term --onto names; else the stdin term; else the
    last photo with a + sign (c in a - b + c, face.jpg in face.jpg + 1.5*smile.npz); None when no photo has one."""
    if onto is not None:
        matches = [index for index, term in enumerate(terms) if term.operand == onto]
        if not matches:
            raise FaceAlgebraError(f"--onto {onto}: not a term of the expression (terms: "
                                   f"{', '.join(term.operand for term in terms)})")
        if not is_photo[matches[-1]]:
            raise FaceAlgebraError(f"--onto {onto}: not a photo; an edit lands on a photo term (an image file)")
        return matches[-1]
    stdin = [index for index, term in enumerate(terms) if term.operand == STDIN]
    if stdin:
        return stdin[0]
    photos = [index for index, (term, photo) in enumerate(zip(terms, is_photo)) if photo and term.weight > 0]
    return photos[-1] if photos else None


def interpolate(start: Latents, end: Latents, steps: int, spherical: bool) -> Latents:
    """`steps` codes from start to end (one row each), straight (lerp) or along the great circle (slerp).

    slerp keeps the norm near the prior's typical shell, where a straight line would pass nearer its centre.
    """
    fractions = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    layers = []
    for a, b in zip(start.layers, end.layers):
        layers.append(slerp(a[0], b[0], fractions) if spherical else (1 - fractions) * a + fractions * b)
    names = tuple(f"{start.names[0]} -> {end.names[0]} @ {f:.3f}" for f in fractions[:, 0])
    return Latents(tuple(layers), names, start.fingerprint)


def slerp(a: np.ndarray, b: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    cosine = float(np.dot(a, b) / norms) if norms > 0 else 1.0
    angle = math.acos(min(1.0, max(-1.0, cosine)))
    if math.sin(angle) < 1e-6:  # (anti)parallel: the great circle is not defined, the straight line is
        return (1 - fractions) * a + fractions * b
    return (np.sin((1 - fractions) * angle) * a + np.sin(fractions * angle) * b) / np.float32(math.sin(angle))


def traversal(base: Latents, directions: Latents, layers: Sequence[int], value_range: float, steps: int) -> Latents:
    """Codes for a traversal figure, in the order rows x panels (one per traversed layer) x steps.

    Row r keeps every layer of base[r] but the traversed one, which walks along the unit direction of
    directions[r]'s code at that layer, from -value_range to +value_range, one step per column.
    """
    values = np.linspace(-value_range, value_range, steps, dtype=np.float32)
    rows, panels = len(base), len(layers)
    result = [np.repeat(z, panels * steps, axis=0).reshape(rows, panels, steps, -1) for z in base.layers]
    for panel, layer in enumerate(layers):
        code = directions.layers[layer - 1]
        norms = np.linalg.norm(code, axis=1, keepdims=True)
        unit = np.where(norms > 0, code / np.maximum(norms, 1e-12), np.float32(1.0 / np.sqrt(code.shape[1])))
        result[layer - 1][:, panel] = values[None, :, None] * unit[:, None, :]
    names = tuple(f"{name} z{layer}={value:+.2f}" for name in base.names for layer in layers for value in values)
    return Latents(tuple(z.reshape(rows * panels * steps, -1) for z in result), names, base.fingerprint)
