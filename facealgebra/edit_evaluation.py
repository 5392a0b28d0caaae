"""`eval --edits`: do the catalogue's edits land on photos, and is the person kept? Each photo is edited as `arith`
edits it (photo + or - the attribute, in its own layers, applied to the photo at its own size); the judges read
the largest face before and after (judges/edits.py says which faces are eligible for each edit and when it has
landed), and dlib's descriptor of the photo before and after gives the identity distance (kept: L2 < 0.6).
The same judging, over a range of scales, two layer sets and two decoders on calibration photos, calibrates how
each attribute is drawn and its scale (calibrate).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from facealgebra import editing
from facealgebra.algebra import Term, evaluate
from facealgebra.align import PhotoInput
from facealgebra.catalogue import Catalogue, model_catalogue, moves_mouth, removes_worn
from facealgebra.checkpoint import LoadedModel
from facealgebra.errors import FaceAlgebraError
from facealgebra.images import load_image
from facealgebra.judges.catalogue_build import TUNED_WHEN_SUBTRACTED, UNTUNED, chosen_layers
from facealgebra.judges.edits import TESTS
from facealgebra.judges.identity import SAME_PERSON
from facealgebra.judges.labelling import PARSER_SIDE
from facealgebra.judges.reading import Judges

# Calibration: the steps tried (multiples of an attribute's average change), the share of a sign's faces that must
# keep the person, the fewest eligible faces a sign needs to count, and the landing rates that count as a tie,
# which goes to the smaller step (or the fewer layers). The goal on new faces is 95 %; the calibration asks 97 %
# of its 100 faces, since they flatter: at the 95 % limit, grey-hair (54 of 56 kept) kept the person on 92 % of
# the held-out CelebA photos, and - smile (pooled with + smile) on 82 % of the held-out generated faces.
SCALES = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0)
KEPT_GOAL, MIN_ELIGIBLE, TIE = 0.97, 3, 0.05


def edit_names(text: str, known: Sequence[str]) -> list[str]:
    """--edits all, or names separated by commas, each in the catalogue."""
    names = list(known) if text == "all" else [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise FaceAlgebraError(f"--edits {text!r}: {unknown[0] + ' is ' if unknown else ''}not an attribute of the "
                               f"model's catalogue (known: {', '.join(known)}; or all)")
    return names


def judge_edits(loaded: LoadedModel, catalogue: Catalogue, names: Sequence[str], paths: Sequence[Path],
                photos: PhotoInput, scales: Sequence[float], log: Callable[[str], None]) -> tuple[int, dict]:
    """Edit every photo with each name, sign and scale (a multiple of the catalogue's own step) and judge it:
    (photos read, tallies[(name, sign, scale)] = eligible, landed, kept and the identity distances)."""
    judges = Judges(parser_side=PARSER_SIDE)
    edits = [(name, sign) for name in names for sign in (1, -1) if (name, sign) in TESTS]
    steps = {(name, sign): catalogue.code(name, every_layer=False, model_label=loaded.path.stem, negative=sign < 0)
             for name, sign in edits}
    tallies = {(name, sign, scale): {"eligible": 0, "landed": 0, "kept": 0, "distances": []}
               for name, sign in edits for scale in scales}
    read = skipped = 0
    for path in paths:
        photo = load_image(path)
        try:
            code, placement = editing.face_code(loaded, photos, photo, str(path))
        except FaceAlgebraError:
            skipped += 1
            continue
        places = judges.places(photo)
        if not places:
            skipped += 1
            continue
        before = judges.read_frames([places[0].frame])[0]
        before_identity = judges.identity.descriptor(photo)
        read += 1
        for name, sign in edits:
            eligible, landed = TESTS[(name, sign)][1]
            if not eligible(before):
                continue
            region = catalogue.region(name)
            removes = removes_worn(region, [sign])
            where = replace(placement, region=region, tuned=catalogue.drawn_tuned([name], [sign]), removes=removes,
                            moves=moves_mouth(region, [name]))
            bare = removes and not catalogue.worn([name], code.layers)  # as arith: nothing worn, nothing taken off
            for scale in scales:
                edited = code if bare else evaluate([Term(1.0, str(path)), Term(float(sign * scale), name)],
                                                    [code, steps[(name, sign)]], name)
                after_photo = editing.edit_photo(loaded, photo, [(code, edited, where)], 1.0)
                after_places = judges.places(after_photo)
                tally = tallies[(name, sign, scale)]
                tally["eligible"] += 1
                if not after_places:  # the edit hid the face from the detector: neither landed nor kept
                    tally["distances"].append(float("inf"))
                    continue
                after = judges.read_frames([after_places[0].frame])[0]
                distance = float(np.linalg.norm(judges.identity.descriptor(after_photo) - before_identity))
                tally["landed"] += bool(landed(before, after))
                tally["kept"] += distance < SAME_PERSON
                tally["distances"].append(distance)
        log(f"edits: {read} photos read")
    if skipped:
        log(f"edits: skipped {skipped} of {len(paths)} photos with no face found")
    return read, tallies


def evaluate_edits(loaded: LoadedModel, paths: Sequence[Path], photos: PhotoInput, names_text: str,
                   log: Callable[[str], None]) -> dict:
    """Per attribute and sign: eligible faces, how many the edit landed on, how many kept the person, and the
    median identity distance (see the module docstring)."""
    catalogue = model_catalogue(loaded.path, loaded.fingerprint, loaded.path.stem)
    read, tallies = judge_edits(loaded, catalogue, edit_names(names_text, catalogue.names), paths, photos, (1.0,), log)
    rows = {}
    for (name, sign, _), tally in tallies.items():
        count = tally["eligible"]
        rows[f"{'+' if sign > 0 else '-'} {name}"] = {
            "faces": TESTS[(name, sign)][0], "eligible": count, "landed": tally["landed"], "kept": tally["kept"],
            "success": tally["landed"] / count if count else None,
            "identity_kept": tally["kept"] / count if count else None,
            "median_identity_distance": float(np.median(tally["distances"])) if count else None}
    return {"photos": read, "edits": rows}


def layer_choices(catalogue: Catalogue, name: str) -> list[tuple[int, ...]]:
    """The layer sets calibration tries for an attribute: those its AUC chooses (catalogue_build.chosen_layers, as
    built, whatever an earlier calibration chose), and those widened by its best-read layer outside them (none when
    it edits every layer). Reading is not drawing: blond is read best in z1 (AUC 0.91 against 0.74 in z2), but the
    decoder draws hair colour from z2 as well."""
    row = catalogue.names.index(name)
    chosen = tuple(int(layer) for layer in np.flatnonzero(chosen_layers(catalogue.auc[row:row + 1])[0]))
    rest = [layer for layer in np.argsort(-np.nan_to_num(catalogue.auc[row], nan=-1.0)) if layer not in chosen]
    return [chosen] + ([tuple(sorted(chosen + (int(rest[0]),)))] if rest else [])


def sign_drawings(name: str, sign: int) -> tuple[bool, ...]:
    """Whether calibration may draw `+ name` (sign 1) or `- name` (-1) tuned (True) or by the model's own decoder
    (False), in the order a tie prefers them: tuned first. A decoder tuned to a face holds on to it and draws some
    changes faintly: faces-large's `+ smile` at 5 landed on 29 of 40 development photos tuned, and at 2.5 untuned on
    32, the person kept on 40 and 39 (docs/judges.md). Glasses are drawn untuned only (a tuned decoder stops
    drawing them: catalogue_build.UNTUNED), `- smile` tuned only (catalogue_build.TUNED_WHEN_SUBTRACTED)."""
    if name in UNTUNED:
        return (False,)
    return (True,) if sign < 0 and name in TUNED_WHEN_SUBTRACTED else (True, False)


def drawing_choices(catalogue: Catalogue, name: str) -> list[tuple[tuple[int, ...], bool]]:
    """The drawings calibration tries for an attribute, (layers, tuned): each of layer_choices, drawn tuned and
    then untuned where either sign may be (sign_drawings)."""
    drawings = [tuned for tuned in (True, False) if any(tuned in sign_drawings(name, sign) for sign in (1, -1))]
    return [(layers, tuned) for tuned in drawings for layers in layer_choices(catalogue, name)]


def with_drawings(catalogue: Catalogue, choices: dict[str, tuple[tuple[int, ...], bool | tuple[bool, bool]]]
                  ) -> Catalogue:
    """A copy of the catalogue whose named attributes edit the given layers, drawn tuned or not (one choice for
    both signs, or (+, -))."""
    layers = catalogue.layers.copy()
    untuned = [catalogue.untuned_of(name, False) for name in catalogue.names]
    negative = [catalogue.untuned_of(name, True) for name in catalogue.names]
    for name, (chosen, tuned) in choices.items():
        row = catalogue.names.index(name)
        layers[row] = False
        layers[row, list(chosen)] = True
        plus, minus = tuned if isinstance(tuned, tuple) else (tuned, tuned)
        untuned[row], negative[row] = not plus, not minus
    return replace(catalogue, layers=layers, untuned=untuned, negative_untuned=negative)


def calibrate(loaded: LoadedModel, catalogue: Catalogue, paths: Sequence[Path], photos: PhotoInput,
              log: Callable[[str], None], names: Sequence[str] | None = None) -> tuple[Catalogue, dict]:
    """The catalogue with each named attribute's layers (among layer_choices), and for + and - its decoder (tuned
    or not, sign_drawings) and scale (among SCALES), chosen on these photos by choose_drawing (the others as they
    were), and the counts they were chosen from: {name: {(layers, tuned): {scale: {sign: (eligible, landed,
    kept)}}}}."""
    names = list(catalogue.names if names is None else names)
    # each attribute alone: what a `-` takes away with it (catalogue.also_subtracted) keeps its own step when shipped
    unit = replace(catalogue, scale=np.ones(len(catalogue.names), np.float32), negative_scale=None,
                   negative_also=None)
    choices = {name: drawing_choices(catalogue, name) for name in names}
    table: dict[str, dict] = {name: {} for name in names}
    for index in range(max(len(ways) for ways in choices.values())):
        tried = {name: ways[index] for name, ways in choices.items() if index < len(ways)}
        _, tallies = judge_edits(loaded, with_drawings(unit, tried), list(tried), paths, photos, SCALES, log)
        for (name, sign, scale), tally in tallies.items():
            table[name].setdefault(tried[name], {}).setdefault(scale, {})[sign] = (
                tally["eligible"], tally["landed"], tally["kept"])
    scale, negative = catalogue.scale.copy(), catalogue.negative_scales()
    chosen = {}
    for name in names:
        row = catalogue.names.index(name)
        layers, tuned, (scale[row], negative[row]) = choose_drawing(
            table[name], {sign: sign_drawings(name, sign) for sign in (1, -1)})
        chosen[name] = (layers, tuned)
    return replace(with_drawings(catalogue, chosen), scale=scale, negative_scale=negative), table


def choose_drawing(counts: dict[tuple[tuple[int, ...], bool], dict[float, dict[int, tuple[int, int, int]]]],
                   allowed: dict[int, tuple[bool, ...]] | None = None
                   ) -> tuple[tuple[int, ...], tuple[bool, bool], tuple[float, float]]:
    """The layers, the (+, -) decoders (tuned or not) and the (+, -) scales to ship, from {(layers, tuned): {scale:
    {sign: (eligible, landed, kept)}}} (the narrowest layers first) and the decoders each sign may take (in the
    order a tie prefers them; default: tuned, then untuned). For each layer set, each sign's decoder and scale:
    choose_scale's for each decoder, and the first decoder whose landing rate is within TIE of the best; then the
    first layer set whose landing rate (the mean of its signs') is within TIE of the best set's. A sign with too
    few faces to judge takes the other's decoder (where it may) and scale, and with neither the smallest scale
    tried is shipped, tuned where it may be."""
    allowed = allowed or {1: (True, False), -1: (True, False)}
    picks = {}
    for layers in dict.fromkeys(layers for layers, _ in counts):
        signs = {}
        for sign in (1, -1):
            judged = [(tuned, pick) for tuned in allowed[sign] if (layers, tuned) in counts
                      for pick in [choose_scale({scale: by_sign[sign] for scale, by_sign in
                                                 counts[(layers, tuned)].items() if sign in by_sign})]
                      if pick is not None]
            if judged:
                best = max(landing for _, (_, landing) in judged)
                signs[sign] = next((tuned, step, landing) for tuned, (step, landing) in judged
                                   if landing >= best - TIE)
        for sign in (1, -1):
            if sign not in signs:
                other = signs.get(-sign)
                if other and other[0] in allowed[sign]:
                    signs[sign] = (other[0], other[1], None)
                else:
                    tuned = allowed[sign][0]
                    by_scale = counts.get((layers, tuned)) or next(iter(counts.values()))
                    signs[sign] = (tuned, other[1] if other else min(by_scale, default=1.0), None)
        landings = [landing for _, _, landing in signs.values() if landing is not None]
        picks[layers] = ((signs[1][0], signs[-1][0]), (signs[1][1], signs[-1][1]),
                         float(np.mean(landings)) if landings else 0.0)
    best = max(landing for _, _, landing in picks.values())
    layers = next(layers for layers, (_, _, landing) in picks.items() if landing >= best - TIE)
    return layers, picks[layers][0], picks[layers][1]


def choose_scale(counts: dict[float, tuple[int, int, int]]) -> tuple[float, float] | None:
    """One sign's scale and its landing rate, from {scale: (eligible, landed, kept)}; None with fewer than
    MIN_ELIGIBLE faces. Among the scales that keep the person on at least KEPT_GOAL of the faces, the smallest
    whose landing rate is within TIE of the best; the smallest scale tried (landing rate 0) when none does."""
    if not counts or min(eligible for eligible, _, _ in counts.values()) < MIN_ELIGIBLE:
        return None
    admissible = {scale: landed / eligible for scale, (eligible, landed, kept) in counts.items()
                  if kept >= KEPT_GOAL * eligible}
    if not admissible:
        return min(counts), 0.0
    best = max(admissible.values())
    scale = min(scale for scale, landed in admissible.items() if landed >= best - TIE)
    return scale, admissible[scale]


def report_lines(result: dict) -> list[str]:
    from facealgebra.evaluate import table

    lines = ["", f"edits on {result['photos']} photos (judged offline; identity kept: dlib L2 < 0.6 before/after)"]
    lines += table(["edit", "eligible", "success", "identity kept", "median L2", "eligible faces -> landed when"], [
        [name, str(row["eligible"]), "-" if row["success"] is None else f"{row['success']:.0%}",
         "-" if row["identity_kept"] is None else f"{row['identity_kept']:.0%}",
         "-" if row["median_identity_distance"] is None else f"{row['median_identity_distance']:.2f}", row["faces"]]
        for name, row in result["edits"].items()])
    return lines
