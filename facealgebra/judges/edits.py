"""When does an edit land? For each catalogue attribute and sign: which faces are eligible (the judges' reading of
the photo before), and whether the edited photo's reading moved as named. Pure functions of two readings
(reading.Judges.read_frames). Expression edits must keep the skin's colour: FER can be fooled by colour (greyed
teeth lower 'happy', warmer skin raises it), so a smile that changes the skin tone by SKIN_KEPT degrees of ITA or
more does not count.
"""

from __future__ import annotations

import math
from typing import Callable

Reading = dict
Test = tuple[Callable[[Reading], bool], Callable[[Reading, Reading], bool]]  # (eligible, landed)

GLASSES_ON, GLASSES_OFF = 0.004, 0.0005  # eyeglasses' share of the frame: has them / has none
HAPPY_MOVE = 0.25  # FER 'happy' rises (or falls) by this much
SKIN_KEPT = 8.0  # degrees of ITA
ITA_MOVE = 10.0
HAIR_MOVE = 5.0  # L*
MOUTH_OPEN, MOUTH_CLOSED = 0.003, 0.0005
HAT_ON, HAT_OFF = 0.05, 0.005


def known(*values) -> bool:
    return all(value is not None and not (isinstance(value, float) and math.isnan(value)) for value in values)


def delta(before: Reading, after: Reading, key: str) -> float:
    return after[key] - before[key] if known(before[key], after[key]) else float("nan")


def happy(reading: Reading) -> float:
    return reading["expression"]["happy"]


def skin_kept(before: Reading, after: Reading) -> bool:
    return abs(delta(before, after, "skin_ita")) < SKIN_KEPT  # NaN (no skin seen) is not kept


def chroma(reading: Reading) -> float:
    return math.hypot(reading["hair_a"], reading["hair_b"]) if known(reading["hair_a"], reading["hair_b"]) else \
        float("nan")


# (attribute, sign) -> (eligible before, landed after); the words say the same for the README and the report
TESTS: dict[tuple[str, int], tuple[str, Test]] = {
    ("glasses", 1): ("without glasses -> glasses seen",
                     (lambda b: b["glasses"] < GLASSES_OFF, lambda b, a: a["glasses"] > GLASSES_ON)),
    ("glasses", -1): ("with glasses -> none seen",
                      (lambda b: b["glasses"] > GLASSES_ON, lambda b, a: a["glasses"] < GLASSES_OFF)),
    ("smile", 1): ("not smiling (happy < 0.5) -> happy +0.25, skin ITA within 8 deg",
                   (lambda b: happy(b) < 0.5, lambda b, a: happy(a) - happy(b) >= HAPPY_MOVE and skin_kept(b, a))),
    ("smile", -1): ("smiling (happy > 0.5) -> happy -0.25, skin ITA within 8 deg",
                    (lambda b: happy(b) > 0.5, lambda b, a: happy(b) - happy(a) >= HAPPY_MOVE and skin_kept(b, a))),
    ("mouth-open", 1): ("mouth closed -> inner mouth seen",
                        (lambda b: b["mouth_open"] < MOUTH_CLOSED, lambda b, a: a["mouth_open"] > MOUTH_OPEN)),
    ("mouth-open", -1): ("mouth open -> closed",
                         (lambda b: b["mouth_open"] > MOUTH_OPEN, lambda b, a: a["mouth_open"] < MOUTH_CLOSED)),
    ("blond", 1): ("dark hair (L* < 35) -> hair L* +5 and b* +3 (lighter, yellower)",
                   (lambda b: known(b["hair_L"]) and b["hair_L"] < 35,
                    lambda b, a: delta(b, a, "hair_L") >= HAIR_MOVE and delta(b, a, "hair_b") >= 3)),
    ("blond", -1): ("blond (L* > 45, b* > 15) -> hair L* -5",
                    (lambda b: known(b["hair_L"]) and b["hair_L"] > 45 and b["hair_b"] > 15,
                     lambda b, a: delta(b, a, "hair_L") <= -HAIR_MOVE)),
    ("black-hair", 1): ("hair L* > 25 -> L* -5",
                        (lambda b: known(b["hair_L"]) and b["hair_L"] > 25,
                         lambda b, a: delta(b, a, "hair_L") <= -HAIR_MOVE)),
    ("black-hair", -1): ("hair L* < 18 -> L* +5",
                         (lambda b: known(b["hair_L"]) and b["hair_L"] < 18,
                          lambda b, a: delta(b, a, "hair_L") >= HAIR_MOVE)),
    ("grey-hair", 1): ("hair chroma > 10 -> chroma -4 and L* +3",
                       (lambda b: chroma(b) > 10,
                        lambda b, a: chroma(b) - chroma(a) >= 4 and delta(b, a, "hair_L") >= 3)),
    ("grey-hair", -1): ("hair chroma < 6 and L* > 40 -> chroma +4",
                        (lambda b: chroma(b) < 6 and known(b["hair_L"]) and b["hair_L"] > 40,
                         lambda b, a: chroma(a) - chroma(b) >= 4)),
    ("dark-skin", 1): ("every face -> skin ITA -10 deg",
                       (lambda b: known(b["skin_ita"]), lambda b, a: delta(b, a, "skin_ita") <= -ITA_MOVE)),
    ("dark-skin", -1): ("every face -> skin ITA +10 deg",
                        (lambda b: known(b["skin_ita"]), lambda b, a: delta(b, a, "skin_ita") >= ITA_MOVE)),
    ("hat", 1): ("no hat -> hat seen", (lambda b: b["hat"] < HAT_OFF, lambda b, a: a["hat"] > HAT_ON)),
    ("hat", -1): ("hat -> none seen", (lambda b: b["hat"] > HAT_ON, lambda b, a: a["hat"] < HAT_OFF)),
}
