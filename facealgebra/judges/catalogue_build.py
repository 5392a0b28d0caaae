"""Learn a model's attribute catalogue (catalogue.py) from faces that the judges have labelled.

Labels: each attribute is a rule on the judges' readings (labelling.COLUMNS) that says yes (1), no (0) or
"unsure" (NaN: between the two thresholds, or a colour the parser could not read); the thresholds were chosen by
looking at the faces on each side (docs/judges.md).

Directions: one least-squares fit of every face's code on all the attributes' labels at once,
z = c + sum_k w_k a_k, so that w_k is the change of the code from faces without attribute k to faces with it
*with the other attributes held fixed*: smiles and open mouths go together, and so do glasses and age, and a
plain difference of class means would carry the one into the other (plat's balanced vectors, by regression).
Unsure labels enter the fit at the attribute's mean, and so move nothing.

Layers: for each attribute and layer, the AUC of the projection of the layer's code on the layer's direction,
positives against negatives, each half of the faces scored by a fit on the other half. An attribute edits the
layers whose AUC is within LAYER_MARGIN of its best layer's and at least MIN_AUC (its best layer always).

Regions: an expression (LOWER_FACE) lands below the eyes only (photoedit.blend_mask), glasses in the band along
the eyes, a hair colour (HAIR_COLOURS) on the hair alone; every other attribute on the whole head. The model draws
a smile with a squint and moving brows, which carry who the person is: on the 100 calibration photos, `+ smile` and `- smile` at scale 2.5 on the lower face alone landed on 80 of the 100 eligible
faces and kept the person on 99, against 73 and 96 on the whole head (docs/judges.md).

Subtracting a smile: the smile's direction is learned with the open mouth held fixed, so `- smile` alone leaves the
mouth open and the teeth showing. A user who takes a smile away wants the mouth closed: `- smile` also takes away
mouth-open at its own `-` step (NEGATIVE_ALSO). On the calibration photos (50 CelebA, 50 unseen generated faces),
`- smile` at 2.5 then landed on 50 of 56 smiling faces instead of 39, the person kept on 55 (docs/judges.md).

Scales start at 1 (the average change itself); edit_evaluation.calibrate sets them, and may widen the layers by
one, by editing photos and judging the results.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from facealgebra.catalogue import Catalogue
from facealgebra.judges.labelling import COLUMNS

Rule = Callable[[dict[str, np.ndarray]], np.ndarray]
LAYER_MARGIN, MIN_AUC = 0.08, 0.6


def two_sided(values: np.ndarray, yes: np.ndarray, no: np.ndarray) -> np.ndarray:
    """1 where `yes`, 0 where `no`, NaN elsewhere or where `values` is NaN."""
    labels = np.where(yes, 1.0, np.where(no, 0.0, np.nan))
    return np.where(np.isnan(values), np.nan, labels)


def chroma(r: dict[str, np.ndarray]) -> np.ndarray:
    return np.hypot(r["hair_a"], r["hair_b"])


# name -> (the rule in words, the rule)
ATTRIBUTES: dict[str, tuple[str, Rule]] = {
    "glasses": ("eyeglasses > 0.4% of the frame; none: < 0.05%",
                lambda r: two_sided(r["glasses"], r["glasses"] > 0.004, r["glasses"] < 0.0005)),
    "smile": ("FER happy > 0.6; none: < 0.2",
              lambda r: two_sided(r["happy"], r["happy"] > 0.6, r["happy"] < 0.2)),
    "mouth-open": ("inner mouth > 0.3% of the frame; none: < 0.05%",
                   lambda r: two_sided(r["mouth_open"], r["mouth_open"] > 0.003, r["mouth_open"] < 0.0005)),
    "blond": ("hair L* > 45 and b* > 15; none: L* < 35",
              lambda r: two_sided(r["hair_L"], (r["hair_L"] > 45) & (r["hair_b"] > 15), r["hair_L"] < 35)),
    "black-hair": ("hair L* < 18; none: L* > 28",
                   lambda r: two_sided(r["hair_L"], r["hair_L"] < 18, r["hair_L"] > 28)),
    "grey-hair": ("hair L* > 40 and chroma < 6; none: chroma > 10 or L* < 30",
                  lambda r: two_sided(r["hair_L"], (r["hair_L"] > 40) & (chroma(r) < 6),
                                      (chroma(r) > 10) | (r["hair_L"] < 30))),
    "dark-skin": ("skin ITA < -10 deg; none: ITA > 40 deg",
                  lambda r: two_sided(r["skin_ita"], r["skin_ita"] < -10, r["skin_ita"] > 40)),
    "hat": ("hat > 5% of the frame; none: < 0.5%",
            lambda r: two_sided(r["hat"], r["hat"] > 0.05, r["hat"] < 0.005)),
}

LOWER_FACE = {"smile", "mouth-open"}
ACROSS_THE_EYES = {"glasses"}  # drawn in the band along the eyes (photoedit.EYE_BAND): the mouth and hair stay
# the hair's colour, drawn on the hair alone (headregion.py's hair map): the model's change for a hair colour also
# relights the face and its shadows, which carry who the person is (docs/judges.md)
HAIR_COLOURS = {"blond", "black-hair", "grey-hair"}
# drawn by the model's own decoder: one tuned to a face without glasses (25 steps) learns its pixels and stops
# drawing them (weights/README.md, faces-large)
UNTUNED = {"glasses"}
# `- smile` is drawn tuned whatever the calibration finds: the model's own decoder lands it more often on the
# calibration faces (52 of 56 at 2.5, against 45 at 5 tuned), but looked at on CelebA 000001, 000009, 000013 and
# 000017 it smudges the lower face dark, which no judge reads (docs/judges.md)
TUNED_WHEN_SUBTRACTED = {"smile"}
# `- smile` takes the open mouth away too (see the module docstring)
NEGATIVE_ALSO = {"smile": "mouth-open"}


def regions(names: Sequence[str] = tuple(ATTRIBUTES)) -> list[str]:
    """Each named attribute's region."""
    return ["lower-face" if name in LOWER_FACE else "eyes" if name in ACROSS_THE_EYES else
            "hair" if name in HAIR_COLOURS else "head" for name in names]


def untuned(names: Sequence[str] = tuple(ATTRIBUTES)) -> list[bool]:
    """Whether each named attribute's change is drawn by the model's own decoder before calibration (UNTUNED);
    calibration may draw others so too (edit_evaluation.drawing_choices)."""
    return [name in UNTUNED for name in names]


def negative_also(names: Sequence[str] = tuple(ATTRIBUTES)) -> list[str]:
    """The attribute each named one's `- name` takes away with it ("" for none)."""
    return [NEGATIVE_ALSO.get(name, "") for name in names]


def attribute_labels(readings: np.ndarray) -> np.ndarray:
    """(N, K) labels (1, 0 or NaN) of every attribute, from a readings table (N, len(COLUMNS))."""
    columns = {name: readings[:, index] for index, name in enumerate(COLUMNS)}
    with np.errstate(invalid="ignore"):
        return np.stack([rule(columns) for _, rule in ATTRIBUTES.values()], axis=1)


def fit_directions(codes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(K, D): each attribute's change of the code, the others held fixed (least squares on all labels)."""
    filled = np.where(np.isnan(labels), np.nanmean(labels, axis=0), labels)
    design = np.concatenate([np.ones((len(codes), 1)), filled], axis=1)
    weights, *_ = np.linalg.lstsq(design, codes, rcond=None)
    return weights[1:]


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: how often a positive scores above a negative (ties count half)."""
    ranks = np.argsort(np.argsort(scores, kind="stable"), kind="stable").astype(float)
    for value in np.unique(scores):  # ties share their mean rank
        tied = scores == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    count_pos, count_neg = positive.sum(), (~positive).sum()
    if not count_pos or not count_neg:
        return float("nan")
    return float((ranks[positive].sum() - count_pos * (count_pos - 1) / 2) / (count_pos * count_neg))


def layer_aucs(codes: np.ndarray, labels: np.ndarray, dims: tuple[int, ...]) -> np.ndarray:
    """(K, L): cross-validated AUC of each layer's projection on the attribute's direction (two halves)."""
    half = np.arange(len(codes)) % 2 == 0
    projections = np.zeros((labels.shape[1], len(dims), len(codes)))
    bounds = np.cumsum([0, *dims])
    for fit, test in ((half, ~half), (~half, half)):
        directions = fit_directions(codes[fit], labels[fit])
        for layer, (start, end) in enumerate(zip(bounds[:-1], bounds[1:])):
            projections[:, layer, test] = directions[:, start:end] @ codes[test, start:end].T
    result = np.full((labels.shape[1], len(dims)), np.nan)
    for k in range(labels.shape[1]):
        known = ~np.isnan(labels[:, k])
        for layer in range(len(dims)):
            result[k, layer] = auc(projections[k, layer, known], labels[known, k] == 1)
    return result


def chosen_layers(aucs: np.ndarray) -> np.ndarray:
    """(K, L) bool: the layers each attribute edits (see the module docstring)."""
    best = np.nanmax(aucs, axis=1, keepdims=True)
    chosen = (aucs >= best - LAYER_MARGIN) & (aucs >= MIN_AUC)
    chosen[np.arange(len(aucs)), np.nanargmax(aucs, axis=1)] = True
    return chosen


def build_catalogue(codes: np.ndarray, readings: np.ndarray, dims: tuple[int, ...], fingerprint: str) -> Catalogue:
    """The catalogue of a model from its codes (N, D) of faces and the judges' readings of the same faces."""
    labels = attribute_labels(readings)
    directions = fit_directions(codes, labels)
    aucs = layer_aucs(codes, labels, dims)
    bounds = np.cumsum([0, *dims])
    return Catalogue(fingerprint, list(ATTRIBUTES), [rule for rule, _ in ATTRIBUTES.values()],
                     [directions[:, start:end] for start, end in zip(bounds[:-1], bounds[1:])],
                     chosen_layers(aucs), aucs, (labels == 1).sum(axis=0), (labels == 0).sum(axis=0),
                     np.ones(len(ATTRIBUTES), np.float32), regions(), negative_also=negative_also(),
                     untuned=untuned(), negative_untuned=untuned())
