"""The attribute catalogue of a model: named directions in its code (glasses, smile, blond, ...), learned from
thousands of faces labelled by the offline judges (judges/catalogue_build.py makes it), shipped beside the model
as `<model>.catalogue.npz` and tied to its fingerprint. Reading one needs numpy only; editing never needs the
judges.

Each attribute holds one direction per layer (the code's change from faces without it to faces with it, the other
attributes held fixed), the layers it edits (those it lives in by per-layer AUC, widened by one where calibration
finds that the edit lands more so), each layer's AUC, how many faces it was learned from, and its scale: how many
times its direction one unit of the name adds. The direction is an average change, which the decoder draws faintly
on a face that is far from that average; the scale is the step that makes the edit land on most faces while keeping
the person, calibrated by the judges on photos (edit_evaluation.calibrate). `+ glasses` adds scale x direction in
its own layers only: the other layers stay the face's; `+ 0.5*glasses` adds half of that.
File: numpy's .npz, read with allow_pickle=False: `format`, `fingerprint`, `names` (K,), `rules` (K,) the label
each was learned from, `z1` ... `zL` (K, d_l), `layers` (K, L) bool, `auc` (K, L), `positives`, `negatives` (K,),
`scale` (K,; a catalogue without it reads as scale 1), `negative_scale` (K,; the step of `- name`: adding teeth and
closing a mouth are different edits; a catalogue without it subtracts `scale`), `negative_also` (K,; the attribute
that `- name` takes away with it, "" for none: `- smile` closes the open mouth too), `region` (K,; where on the face
each edit lands, photoedit.blend_mask: "head", "lower-face" for an expression, "eyes" for what is worn across them,
"hair" for the hair's colour; a catalogue without it reads as "head"), `untuned` (K,; True where the edit's change
is drawn by the model's own decoder rather than by one tuned to the face, editing.face_decoder: a decoder tuned to a
face without glasses learns that face's pixels and no longer draws glasses on it; a catalogue without it reads as
False).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facealgebra.errors import FaceAlgebraError
from facealgebra.latents import Latents

CATALOGUE_FORMAT = "facealgebra-catalogue/1"
REGIONS = ("head", "lower-face", "eyes", "hair")  # where an attribute's edit lands (photoedit.blend_mask)
# The attributes of the lower face drawn by moving the photo's own mouth along the flow of the model's change
# (warping.py) rather than by adding the change. A smile: held out it landed more often so (`faces` CelebA 75 -> 81 %,
# docs/judges.md). Not mouth-open: moved, `+ mouth-open` landed less often (held out with `faces`, 31 -> 17 % on
# CelebA): the flow stretches the closed lips where the model paints a dark open mouth.
MOVED = ("smile",)
# A face wears what a `- name` edit of the eyes region takes away when its code reads above WORN along the
# attribute's unit direction (Catalogue.worn). Chosen with faces-large's glasses on development faces (neither held
# out nor used by the catalogue), judged by the face parser: CelebA training photos 000001-000300 and generated
# faces 3000-3249, the first 80 without glasses of each. The largest threshold that passes 95 % of the 59 faces with
# glasses: 0.5 (40 of 40 generated, 18 of 19 CelebA; 32 of the 160 without glasses are read as wearing them, and
# painted). At 1.0: 49 of 59 and 17 of 160.
WORN = 0.5


@dataclass(frozen=True)
class AttributeName:
    """An expression term naming a catalogue attribute (`glasses`), resolved once the model is loaded."""

    name: str


@dataclass
class Catalogue:
    fingerprint: str
    names: list[str]
    rules: list[str]
    directions: list[np.ndarray]  # per layer (K, d_l)
    layers: np.ndarray  # (K, L) bool: the layers each attribute edits
    auc: np.ndarray  # (K, L)
    positives: np.ndarray  # (K,)
    negatives: np.ndarray
    scale: np.ndarray  # (K,)
    regions: list[str] | None = None  # (K,) one of REGIONS; None: "head" for all
    negative_scale: np.ndarray | None = None  # (K,) the step of `- name`; None: `scale`, as for `+ name`
    negative_also: list[str] | None = None  # (K,) an attribute `- name` takes away too ("": none); None: none
    untuned: list[bool] | None = None  # (K,) drawn by the model's own decoder, not the face's tuned one; None: none
    negative_untuned: list[bool] | None = None  # (K,) the same for `- name`; None: as `untuned`

    def also_subtracted(self, name: str) -> str:
        """The attribute that `- name` takes away with it, at that attribute's own `-` step ("" for none)."""
        return self.negative_also[self.names.index(name)] if self.negative_also else ""

    def negative_scales(self) -> np.ndarray:
        """(K,) the step each attribute takes when subtracted."""
        return (self.scale if self.negative_scale is None else self.negative_scale).astype(np.float32).copy()

    def region(self, name: str) -> str:
        """Where the attribute's edit lands on the face (photoedit.blend_mask)."""
        return self.regions[self.names.index(name)] if self.regions else "head"

    def drawn_tuned(self, names: Sequence[str], weights: Sequence[float] | None = None) -> bool:
        """Whether an edit adding `names` (with these weights: a negative one subtracts, and takes the attribute's
        `-` drawing; None: all added) is drawn by the decoder tuned to the face: not if any of them is untuned."""
        weights = [1.0] * len(names) if weights is None else weights
        return not any(self.untuned_of(name, weight < 0) for name, weight in zip(names, weights))

    def untuned_of(self, name: str, negative: bool) -> bool:
        """Whether `+ name` (or `- name`) is drawn by the model's own decoder."""
        drawings = self.negative_untuned if negative and self.negative_untuned is not None else self.untuned
        return bool(drawings and drawings[self.names.index(name)])

    def untuned_note(self, name: str) -> str:
        """', untuned' when both signs of the attribute are drawn by the model's own decoder, ', untuned +' (or -)
        when one is, else ''."""
        plus, minus = self.untuned_of(name, False), self.untuned_of(name, True)
        return ", untuned" if plus and minus else ", untuned +" if plus else ", untuned -" if minus else ""

    def save(self, path: str | Path) -> None:
        from facealgebra.fileio import atomic_path

        arrays = {f"z{layer + 1}": direction.astype(np.float32) for layer, direction in enumerate(self.directions)}
        with atomic_path(path) as temporary:
            with open(temporary, "wb") as handle:
                np.savez(handle, format=np.array(CATALOGUE_FORMAT), fingerprint=np.array(self.fingerprint),
                         names=np.array(self.names), rules=np.array(self.rules), layers=self.layers, auc=self.auc,
                         positives=self.positives, negatives=self.negatives,
                         scale=self.scale.astype(np.float32), negative_scale=self.negative_scales(),
                         region=np.array([self.region(name) for name in self.names]),
                         negative_also=np.array([self.also_subtracted(name) for name in self.names]),
                         untuned=np.array([self.untuned_of(name, False) for name in self.names]),
                         negative_untuned=np.array([self.untuned_of(name, True) for name in self.names]), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "Catalogue":
        try:
            with np.load(path, allow_pickle=False) as file:
                if str(file["format"]) != CATALOGUE_FORMAT:
                    raise FaceAlgebraError(f"{path}: not an attribute catalogue ({CATALOGUE_FORMAT})")
                count = len([key for key in file.files if key.startswith("z")])
                names = [str(n) for n in file["names"]]
                scale = file["scale"] if "scale" in file.files else np.ones(len(names), np.float32)
                negative = file["negative_scale"] if "negative_scale" in file.files else None
                also = [str(n) for n in file["negative_also"]] if "negative_also" in file.files else None
                if also and not set(also) <= set(names) | {""}:
                    raise ValueError(f"unknown attribute {sorted(set(also) - set(names) - {''})[0]!r}")
                regions = [str(r) for r in file["region"]] if "region" in file.files else None
                if regions and not set(regions) <= set(REGIONS):
                    raise ValueError(f"unknown region {sorted(set(regions) - set(REGIONS))[0]!r}")
                untuned, negative_untuned = ([bool(u) for u in file[key]] if key in file.files else None
                                             for key in ("untuned", "negative_untuned"))
                return cls(str(file["fingerprint"]), names, [str(r) for r in file["rules"]],
                           [file[f"z{layer + 1}"] for layer in range(count)], file["layers"].astype(bool),
                           file["auc"], file["positives"], file["negatives"], scale, regions, negative,
                           also, untuned, negative_untuned)
        except (OSError, KeyError, ValueError) as exc:
            raise FaceAlgebraError(f"{path}: cannot read the attribute catalogue ({exc})") from None

    def code(self, name: str, every_layer: bool, model_label: str, negative: bool = False) -> Latents:
        """The attribute's step (scale x direction; the negative scale for a term that subtracts it) as one code:
        zero outside its layers unless `every_layer` (--layers given, which then chooses the layers). Subtracted,
        it carries the `-` step of the attribute it takes away too (also_subtracted)."""
        if name not in self.names:
            raise FaceAlgebraError(f"{name}: no such file, and not an attribute of {model_label}'s catalogue "
                                   f"(known: {', '.join(self.names)})")
        layers = self.step(name, every_layer, negative)
        also = self.also_subtracted(name) if negative else ""
        if also:
            layers = tuple(mine + theirs for mine, theirs in zip(layers, self.step(also, every_layer, True)))
        return Latents(layers, (name,), self.fingerprint)

    def step(self, name: str, every_layer: bool, negative: bool) -> tuple[np.ndarray, ...]:
        """One attribute's own step, per layer (1, d_l)."""
        row = self.names.index(name)
        scale = np.float32(self.negative_scales()[row] if negative else self.scale[row])
        return tuple(direction[row:row + 1] * scale if every_layer or self.layers[row, layer] else
                     np.zeros_like(direction[row:row + 1]) for layer, direction in enumerate(self.directions))


    def worn(self, names: list[str], code: tuple[np.ndarray, ...]) -> bool:
        """Whether a face wears what `names` take away (`- glasses`): its code (one row per layer) reads above WORN
        along each attribute's direction, in the attribute's own layers. A face the model reads as bare is left as
        it is, rather than painted where it wears nothing (a brow, a shadow along the eyes)."""
        for name in names:
            step = self.step(name, every_layer=False, negative=False)
            length = math.sqrt(sum(float(np.sum(layer * layer)) for layer in step))
            if length == 0 or sum(float(np.sum(z[:1] * layer)) for z, layer in zip(code, step)) / length < WORN:
                return False
        return True


def removes_worn(region: str, weights: list[float]) -> bool:
    """Whether an edit that lands in `region` with these term weights takes away what is worn across the eyes
    (`- glasses`: every term subtracts), which is painted out of the photo (inpaint.py) rather than added."""
    return region == "eyes" and all(weight < 0 for weight in weights)


def moves_mouth(region: str, names: list[str]) -> bool:
    """Whether an edit of these attributes is drawn by moving the photo's own pixels (warping.py) rather than by
    adding the model's change: an expression of the lower face whose every attribute is in MOVED."""
    return region == "lower-face" and bool(names) and all(name in MOVED for name in names)


def expression_region(catalogue: Catalogue | None, attributes: list[str]) -> str:
    """Where an expression's edit lands: the region its attributes share ("lower-face" when each of them is of
    the lower face), else the whole head, as for any expression with a photo, a .npz or a folder beside the
    edited face (`attributes` then comes empty)."""
    regions = {catalogue.region(name) for name in attributes} if catalogue and attributes else {"head"}
    return regions.pop() if len(regions) == 1 else "head"


def catalogue_path(model_path: Path) -> Path:
    """Where a model's catalogue sits: beside it, `faces.safetensors` -> `faces.catalogue.npz` (a run folder's
    model.safetensors -> model.catalogue.npz)."""
    return model_path.with_name(f"{model_path.stem}.catalogue.npz")


def model_catalogue(model_path: Path, fingerprint: str, model_label: str, term: str | None = None) -> Catalogue:
    """The catalogue of a loaded model; an error that says how to make one when it has none or another's (and,
    for an expression's `term`, that it is no file either)."""
    path = catalogue_path(model_path)
    if not path.is_file():
        prefix = f"{term}: no such file, and " if term else ""
        raise FaceAlgebraError(f"{prefix}model {model_label} has no attribute catalogue ({path} is missing): build "
                               "one with python examples/build_catalogue.py --model MODEL (needs the judges extra)")
    catalogue = Catalogue.load(path)
    if catalogue.fingerprint != fingerprint:
        raise FaceAlgebraError(f"{path} was learned for another model (fingerprint {catalogue.fingerprint[:12]}, "
                               f"the model's is {fingerprint[:12]}): rebuild it with examples/build_catalogue.py")
    return catalogue


def looks_like_name(text: str) -> bool:
    """A term that is no file and could be an attribute's name: no suffix, no folder."""
    path = Path(text)
    return not path.exists() and not path.suffix and "/" not in text and "\\" not in text and bool(text)
