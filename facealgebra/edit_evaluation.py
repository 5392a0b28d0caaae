"""`eval --edits`: do the catalogue's edits land on photos, and is the person kept? Each photo is edited as `arith`
edits it (photo + or - the attribute, in its own layers, applied to the photo at its own size); the judges read
the largest face before and after (judges/edits.py says which faces are eligible for each edit and when it has
landed), and dlib's descriptor of the photo before and after gives the identity distance (kept: L2 < 0.6).
The same judging, over a range of scales on training photos, calibrates each attribute's scale
(calibrate_scales).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from facealgebra import editing
from facealgebra.algebra import Term, evaluate
from facealgebra.align import PhotoInput
from facealgebra.catalogue import Catalogue, model_catalogue
from facealgebra.checkpoint import LoadedModel
from facealgebra.errors import FaceAlgebraError
from facealgebra.images import load_image
from facealgebra.judges.edits import TESTS
from facealgebra.judges.identity import SAME_PERSON
from facealgebra.judges.labelling import PARSER_SIDE
from facealgebra.judges.reading import Judges

# Calibration: the steps tried (multiples of an attribute's average change), the share of faces that must keep
# the person (both signs pooled), the fewest eligible faces a sign needs to count, and the landing rates (mean over
# the signs) that count as a tie, which goes to the smaller step.
SCALES = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0)
KEPT_GOAL, MIN_ELIGIBLE, TIE = 0.95, 3, 0.05


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
            direction = catalogue.code(name, every_layer=False, model_label=loaded.path.stem)
            where = replace(placement, region=catalogue.region(name))
            for scale in scales:
                edited = evaluate([Term(1.0, str(path)), Term(float(sign * scale), name)], [code, direction], name)
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


def calibrate_scales(loaded: LoadedModel, catalogue: Catalogue, paths: Sequence[Path], photos: PhotoInput,
                     log: Callable[[str], None], names: Sequence[str] | None = None) -> tuple[np.ndarray, dict]:
    """Each attribute's scale, chosen on these photos by choose_scale among SCALES (only `names`' when given: the
    others keep the catalogue's), and the counts it was chosen from: {name: {scale: [(sign, eligible, landed,
    kept), ...]}}."""
    names = list(catalogue.names if names is None else names)
    unit = replace(catalogue, scale=np.ones(len(catalogue.names), np.float32))
    _, tallies = judge_edits(loaded, unit, names, paths, photos, SCALES, log)
    table: dict[str, dict[float, list]] = {name: {} for name in names}
    for (name, sign, scale), tally in tallies.items():
        table[name].setdefault(scale, []).append((sign, tally["eligible"], tally["landed"], tally["kept"]))
    chosen = np.array([choose_scale({scale: [counts[1:] for counts in signs] for scale, signs in table[name].items()})
                       if name in table else scale for name, scale in zip(catalogue.names, catalogue.scale)],
                      np.float32)
    return chosen, table


def choose_scale(counts: dict[float, list[tuple[int, int, int]]]) -> float:
    """The scale to ship, from {scale: [(eligible, landed, kept) for each sign]}. Signs with fewer than
    MIN_ELIGIBLE faces are left out. Among the scales that keep the person on at least KEPT_GOAL of the faces
    (both signs pooled: one face in 25 is 4 points), the smallest whose landing rate (the mean of the signs') is
    within TIE of the best; the smallest scale tried when none keeps the person, or nothing was judged."""
    admissible = {}
    for scale, signs in counts.items():
        signs = [sign for sign in signs if sign[0] >= MIN_ELIGIBLE]
        eligible, kept = sum(sign[0] for sign in signs), sum(sign[2] for sign in signs)
        if signs and kept >= KEPT_GOAL * eligible:
            admissible[scale] = float(np.mean([landed / count for count, landed, _ in signs]))
    if not admissible:
        return min(counts, default=1.0)
    best = max(admissible.values())
    return min(scale for scale, landed in admissible.items() if landed >= best - TIE)


def report_lines(result: dict) -> list[str]:
    from facealgebra.evaluate import table

    lines = ["", f"edits on {result['photos']} photos (judged offline; identity kept: dlib L2 < 0.6 before/after)"]
    lines += table(["edit", "eligible", "success", "identity kept", "median L2", "eligible faces -> landed when"], [
        [name, str(row["eligible"]), "-" if row["success"] is None else f"{row['success']:.0%}",
         "-" if row["identity_kept"] is None else f"{row['identity_kept']:.0%}",
         "-" if row["median_identity_distance"] is None else f"{row['median_identity_distance']:.2f}", row["faces"]]
        for name, row in result["edits"].items()])
    return lines
