"""One model, many photos: the explorer's edits, made by the same functions as `arith` so that the page's picture
and the command it shows give the same pixels.

A photo is read, its faces found and the chosen face encoded once (Explorer.open, Explorer.choose); each slider
move is then arith's own path from there: the expression's terms parsed from the very words the command shows,
editing.Arithmetic for the edited code, editing.edit_photo for the decode and the paste.
"""

from __future__ import annotations

import shlex
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
from PIL import Image

from facealgebra import editing
from facealgebra.algebra import edited_term, parse
from facealgebra.align import Face, Placement, PhotoInput, pick_face
from facealgebra.checkpoint import LoadedModel
from facealgebra.errors import FaceAlgebraError
from facealgebra.explore.controls import Controls
from facealgebra.images import grid
from facealgebra.latents import Latents
from facealgebra.operands import Operand, read_operand

STRIP_STEPS = 7
STRIP_SIDE = 160  # pixels on a strip tile's longer side


@dataclass
class Session:
    """One tab's photo: what the command calls it, its faces (left to right; [None] when photos are not aligned),
    the chosen one's number from 1, its code and where it lies."""

    photo: Image.Image
    name: str
    faces: list[Face | None]
    chosen: int
    code: Latents
    placement: Placement

    @property
    def output(self) -> str:
        return f"{Path(self.name).stem}-edited.png"


class Explorer:
    """The model, how photos become its input, and the sliders' terms, each read once as arith reads it."""

    def __init__(self, loaded: LoadedModel, photos: PhotoInput, controls: Controls, model: str):
        self.loaded, self.photos, self.controls, self.model = loaded, photos, controls, model
        self.operands: dict[str, Operand] = {control.term: read_operand(control.term) for control in controls.sliders}
        self.lock = threading.Lock()  # one model: edits take turns (and torch runs one thread, see load_for_editing)

    # ---- a photo -----------------------------------------------------------------------------------------------
    def open(self, photo: Image.Image, name: str) -> Session:
        """Find the photo's faces and encode the largest (the face arith edits without --face)."""
        with self.lock:
            faces = self.photos.faces(photo, name)
            largest = pick_face(faces, None, name) if faces[0] is not None else None
            number = next(index for index, face in enumerate(faces, start=1) if face is largest)
            code, placement = editing.face_code(self.loaded, self.photos, photo, name, largest)
        return Session(photo, name, faces, number, code, placement)

    def choose(self, session: Session, number: int) -> None:
        """Edit face `number` (from 1, left to right) from now on: arith's --face NUMBER."""
        if not 1 <= number <= len(session.faces):
            raise FaceAlgebraError(f"face {number}: the photo has {len(session.faces)} (numbered from 1)")
        with self.lock:
            session.code, session.placement = editing.face_code(self.loaded, self.photos, session.photo,
                                                                session.name, session.faces[number - 1])
            session.chosen = number

    # ---- edits -------------------------------------------------------------------------------------------------
    def expression(self, session: Session, weights: Mapping[str, float]) -> list[str]:
        """The words of arith's expression: the photo, then each moved slider, in the sliders' order."""
        for key in weights:
            self.controls.by_key(key)  # a key the page does not know is refused, not dropped
        words = [session.name]
        for control in self.controls.sliders:
            weight = round(float(weights.get(control.key, 0.0)), 2)
            if not abs(weight) <= control.limit:
                raise FaceAlgebraError(f"slider {control.key} at {weight}: it runs from -{control.limit:g} to "
                                       f"{control.limit:g}")
            if weight:
                words += ["+" if weight > 0 else "-", f"{abs(weight):g}*{control.term}"]
        return words

    def command(self, session: Session, weights: Mapping[str, float]) -> str:
        """The arith command that writes what `edit` returns."""
        words = ["facealgebra", "arith", *self.expression(session, weights)]
        if len(session.faces) > 1:
            words += ["--face", str(session.chosen)]
        return shlex.join([*words, "--model", self.model, "-o", session.output])

    def strokes(self, session: Session, weights: Mapping[str, float]) -> list[tuple[Latents, Latents, Placement]]:
        """The edit as arith draws it: (code, edited code, placement) rows, drawn one after another (one row unless
        the expression mixes attributes drawn differently: editing.Arithmetic.strokes); each placement says the
        region the change lands in and whether the decoder tuned to the face draws it."""
        words = self.expression(session, weights)
        terms = parse(words)
        operands = {**self.operands, session.name: session.photo}
        target = edited_term(terms, [term.operand == session.name for term in terms], None)
        arithmetic = editing.Arithmetic(self.loaded, self.photos, terms, operands, target, None, " ".join(words))
        return arithmetic.strokes(arithmetic.apply([(session.code, session.placement)]))

    def edit(self, session: Session, weights: Mapping[str, float]) -> Image.Image:
        """The photo at its own size, edited as the shown command edits it."""
        with self.lock:
            return editing.edit_photo(self.loaded, session.photo, self.strokes(session, weights), 1.0)

    def strip(self, session: Session, weights: Mapping[str, float], key: str) -> tuple[np.ndarray, list[float]]:
        """uint8 (C, H, W) tiles of the photo, shrunk, with slider `key` at STRIP_STEPS values over its range
        and the others where they are; and those values."""
        control = self.controls.by_key(key)
        values = [round(float(value), 2) for value in np.linspace(-control.limit, control.limit, STRIP_STEPS)]
        with self.lock:
            edits = [self.strokes(session, {**weights, key: value}) for value in values]
            # each tile drawn as its arith command draws it: the one-stroke values drawn alike (region, decoder,
            # and whether frames are painted out or the mouth moved) at once, the others one by one
            alike: dict[tuple[str, bool, bool, bool], list[int]] = {}
            for row, strokes in enumerate(edits):
                if len(strokes) == 1:  # from the face's own code, as every first stroke is
                    where = strokes[0][2]
                    alike.setdefault((where.region, where.tuned, where.removes, where.moves), []).append(row)
            tiles = [None] * len(edits)
            for rows in alike.values():
                drawn = editing.photo_tiles(self.loaded, session.photo, session.code, edits[rows[0]][0][2],
                                            editing.stack([edits[row][0][1] for row in rows]), STRIP_SIDE)
                for row, tile in zip(rows, drawn):
                    tiles[row] = tile
            for row, strokes in enumerate(edits):
                if tiles[row] is None:
                    tiles[row] = editing.strokes_tile(self.loaded, session.photo, strokes, STRIP_SIDE)
            tiles = np.stack(tiles)
        return grid(tiles, columns=len(tiles)), values
