"""Facial-grammar series of one face mesh: brow raise and furrow, eye openness, mouth opening and
width, each a distance between mesh points divided by the inter-ocular distance.

Shared by every stage that measures a face (the evaluation, the re-enactment's gain calibration),
with the definitions of the independent read-back (``/work/shared/tools/readback.py``), from which
the issues' figures come. Each function takes a ``(478, 3)`` (or ``(468, 3)``) face mesh in pixels
and uses image x, y only; it returns a float in inter-ocular distances.
"""

from __future__ import annotations

import numpy as np

from . import geometry
from .regions import (
    BROW_LOWER_L, BROW_LOWER_R, BROW_UPPER_L, BROW_UPPER_R, INNER_LIP_CENTRE, LID_CENTRE_L,
    LID_CENTRE_R, MOUTH_CORNERS,
)  # fmt: skip


def _lid_to_brow(face: np.ndarray, brow: tuple[int, ...], lid_upper: int) -> float:
    """Vertical image distance (pixels) from the mean of the brow points down to the upper lid."""
    return float(face[lid_upper, 1] - np.mean(face[list(brow), 1]))


def brow_raise(face: np.ndarray) -> float:
    """Height of the upper brow edge above the upper eyelid's centre, both eyes, / IOD.

    face: (478, 3) (or (468, 3)) face mesh in pixels; image y only (the read-back's definition,
    so that the figures of ``/work/shared/tools/readback.py`` and of evaluate agree). Larger =
    brows raised (the yes/no-question marker).
    """
    face = np.asarray(face, np.float64)
    right = _lid_to_brow(face, BROW_UPPER_R, LID_CENTRE_R[0])
    left = _lid_to_brow(face, BROW_UPPER_L, LID_CENTRE_L[0])
    return (right + left) / 2 / geometry.inter_ocular(face)


def brow_furrow(face: np.ndarray) -> float:
    """Image distance between the inner brow ends (points 55 and 285), / IOD.

    Smaller = brows drawn together (the WH-question marker, a frown); the series falls as the
    signer furrows.
    """
    face = np.asarray(face, np.float64)
    gap = face[BROW_LOWER_R[-1], :2] - face[BROW_LOWER_L[-1], :2]
    return float(np.linalg.norm(gap)) / geometry.inter_ocular(face)


def eye_openness(face: np.ndarray) -> float:
    """Mean lower-lid minus upper-lid image height of both eyes, / IOD (near 0 = eyes closed)."""
    face = np.asarray(face, np.float64)
    right = face[LID_CENTRE_R[1], 1] - face[LID_CENTRE_R[0], 1]
    left = face[LID_CENTRE_L[1], 1] - face[LID_CENTRE_L[0], 1]
    return float((right + left) / 2) / geometry.inter_ocular(face)


def mouth_opening(face: np.ndarray) -> float:
    """Lower minus upper inner-lip image height (points 14 and 13), / IOD (about 0 = closed)."""
    face = np.asarray(face, np.float64)
    upper, lower = INNER_LIP_CENTRE
    return float(face[lower, 1] - face[upper, 1]) / geometry.inter_ocular(face)


def mouth_width(face: np.ndarray) -> float:
    """Distance between the mouth corners (points 61 and 291), / IOD."""
    face = np.asarray(face, np.float64)
    return float(np.linalg.norm(face[MOUTH_CORNERS[0], :2] - face[MOUTH_CORNERS[1], :2])) / geometry.inter_ocular(face)


FACE_SERIES = {
    "brow_raise": brow_raise,
    "brow_furrow": brow_furrow,
    "eye_openness": eye_openness,
    "mouth_opening": mouth_opening,
    "mouth_width": mouth_width,
}


def grammar(face: np.ndarray) -> dict[str, float]:
    """Every :data:`FACE_SERIES` measure of one face mesh, by name."""
    return {name: float(fn(face)) for name, fn in FACE_SERIES.items()}
