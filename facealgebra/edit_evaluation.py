"""`eval --edits`: do the catalogue's edits land on photos, and is the person kept? Each photo is edited as `arith`
edits it (photo + or - the attribute, in its own layers, applied to the photo at its own size); the judges read
the largest face before and after (judges/edits.py says which faces are eligible for each edit and when it has
landed), and dlib's descriptor of the photo before and after gives the identity distance (kept: L2 < 0.6).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from facealgebra import editing
from facealgebra.algebra import Term, evaluate
from facealgebra.align import PhotoInput
from facealgebra.catalogue import model_catalogue
from facealgebra.checkpoint import LoadedModel
from facealgebra.errors import FaceAlgebraError
from facealgebra.images import load_image
from facealgebra.judges.edits import TESTS
from facealgebra.judges.identity import SAME_PERSON
from facealgebra.judges.labelling import PARSER_SIDE
from facealgebra.judges.reading import Judges


def edit_names(text: str, known: Sequence[str]) -> list[str]:
    """--edits all, or names separated by commas, each in the catalogue."""
    names = list(known) if text == "all" else [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise FaceAlgebraError(f"--edits {text!r}: {unknown[0] + ' is ' if unknown else ''}not an attribute of the "
                               f"model's catalogue (known: {', '.join(known)}; or all)")
    return names


def evaluate_edits(loaded: LoadedModel, paths: Sequence[Path], photos: PhotoInput, names_text: str,
                   log: Callable[[str], None]) -> dict:
    """Per attribute and sign: eligible faces, how many the edit landed on, how many kept the person, and the
    median identity distance (see the module docstring)."""
    catalogue = model_catalogue(loaded.path, loaded.fingerprint, loaded.path.stem)
    names = edit_names(names_text, catalogue.names)
    judges = Judges(parser_side=PARSER_SIDE)
    edits = [(name, sign) for name in names for sign in (1, -1) if (name, sign) in TESTS]
    tallies = {(name, sign): {"eligible": 0, "landed": 0, "kept": 0, "distances": []} for name, sign in edits}
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
            edited = evaluate([Term(1.0, str(path)), Term(float(sign), name)], [code, direction], name)
            after_photo = editing.edit_photo(loaded, photo, [(code, edited, placement)], 1.0)
            after_places = judges.places(after_photo)
            tally = tallies[(name, sign)]
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
    rows = {}
    for (name, sign), tally in tallies.items():
        count = tally["eligible"]
        rows[f"{'+' if sign > 0 else '-'} {name}"] = {
            "faces": TESTS[(name, sign)][0], "eligible": count, "landed": tally["landed"], "kept": tally["kept"],
            "success": tally["landed"] / count if count else None,
            "identity_kept": tally["kept"] / count if count else None,
            "median_identity_distance": float(np.median(tally["distances"])) if count else None}
    return {"photos": read, "edits": rows}


def report_lines(result: dict) -> list[str]:
    from facealgebra.evaluate import table

    lines = ["", f"edits on {result['photos']} photos (judged offline; identity kept: dlib L2 < 0.6 before/after)"]
    lines += table(["edit", "eligible", "success", "identity kept", "median L2", "eligible faces -> landed when"], [
        [name, str(row["eligible"]), "-" if row["success"] is None else f"{row['success']:.0%}",
         "-" if row["identity_kept"] is None else f"{row['identity_kept']:.0%}",
         "-" if row["median_identity_distance"] is None else f"{row['median_identity_distance']:.2f}", row["faces"]]
        for name, row in result["edits"].items()])
    return lines
