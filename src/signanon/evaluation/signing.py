"""Signing-preservation measures computed from landmarks alone.

Handshape is compared through finger-joint flexion angles: they do not depend on hand size, body
proportions or where the hand is, so they compare a signer with an avatar of other proportions.
Facial-grammar series are distances between face-mesh points divided by the inter-ocular distance,
so they do not depend on face size or distance to the camera.
"""

from __future__ import annotations

import numpy as np

from ..landmarks import geometry, layout
from ..landmarks.regions import (
    BROW_UPPER_L, BROW_UPPER_R, EYE_INNER_L, EYE_INNER_R, EYE_OUTER_L, EYE_OUTER_R, FINGER_NAMES,
    FINGERTIPS, FLEXION_JOINTS, INNER_LIP_CENTRE, LID_CENTRE_L, LID_CENTRE_R, MOUTH_CORNERS,
)  # fmt: skip


def flexion_angles(hand: np.ndarray) -> np.ndarray:
    """Bending at each of the 15 finger joints, in degrees.

    hand: (21, 3) float, MediaPipe Hands points (any consistent units; x, y, z).
    Returns (15,) float64 in [0, 180]: 0 = straight, larger = more bent; order of FLEXION_JOINTS.
    """
    hand = np.asarray(hand, np.float64)
    idx = np.array(FLEXION_JOINTS)
    incoming = hand[idx[:, 1]] - hand[idx[:, 0]]
    outgoing = hand[idx[:, 2]] - hand[idx[:, 1]]
    cos = np.sum(incoming * outgoing, axis=1) / (
        np.linalg.norm(incoming, axis=1) * np.linalg.norm(outgoing, axis=1) + 1e-12
    )
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def brow_raise(face: np.ndarray) -> float:
    """Mean distance of the brow points from the line through the four eye corners, / IOD.

    face: (478, 3) (or (468, 3)) face mesh in pixels; only x, y are used. Larger = brows raised.
    """
    face = np.asarray(face, np.float64)
    a = (face[EYE_OUTER_R, :2] + face[EYE_INNER_R, :2]) / 2
    b = (face[EYE_OUTER_L, :2] + face[EYE_INNER_L, :2]) / 2
    direction = (b - a) / (np.linalg.norm(b - a) + 1e-9)
    normal = np.array([-direction[1], direction[0]])
    brows = face[list(BROW_UPPER_R + BROW_UPPER_L), :2]
    return float(np.mean(np.abs((brows - a) @ normal))) / geometry.inter_ocular(face)


def eye_openness(face: np.ndarray) -> float:
    """Mean upper-to-lower eyelid distance of both eyes, / IOD (near 0 = eyes closed)."""
    face = np.asarray(face, np.float64)
    right = np.linalg.norm(face[LID_CENTRE_R[0], :2] - face[LID_CENTRE_R[1], :2])
    left = np.linalg.norm(face[LID_CENTRE_L[0], :2] - face[LID_CENTRE_L[1], :2])
    return float((right + left) / 2) / geometry.inter_ocular(face)


def mouth_opening(face: np.ndarray) -> float:
    """Distance between the inner lips (points 13 and 14), / IOD."""
    face = np.asarray(face, np.float64)
    return float(np.linalg.norm(face[INNER_LIP_CENTRE[0], :2] - face[INNER_LIP_CENTRE[1], :2])) / geometry.inter_ocular(face)


def mouth_width(face: np.ndarray) -> float:
    """Distance between the mouth corners (points 61 and 291), / IOD."""
    face = np.asarray(face, np.float64)
    return float(np.linalg.norm(face[MOUTH_CORNERS[0], :2] - face[MOUTH_CORNERS[1], :2])) / geometry.inter_ocular(face)


FACE_SERIES = {
    "brow_raise": brow_raise,
    "eye_openness": eye_openness,
    "mouth_opening": mouth_opening,
    "mouth_width": mouth_width,
}


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equally long series, NaN-aware (pairs with a NaN are skipped)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3:
        return float("nan")
    a, b = a[keep] - a[keep].mean(), b[keep] - b[keep].mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


# ---------------------------------------------------------------------------------------------
# Head pose, whole-clip series and the comparison of two clips (added for `signanon evaluate`).

HEAD_SERIES = ("head_pitch", "head_yaw", "head_roll")
# Hand points followed as trajectories: the wrist and the five fingertips (MediaPipe Hands).
TRAJECTORY_POINTS = (layout.WRIST, *FINGERTIPS)


def face_series(data: np.ndarray, conf: np.ndarray, width: int) -> dict[str, np.ndarray]:
    """Facial-grammar and head-pose series of a clip.

    data: float (T, 586, 3) and conf (T, 586) in the layout of :mod:`signanon.landmarks.layout`;
    width: frame width in pixels (scales z). Returns name -> float64 (T,), NaN where no face: the
    FACE_SERIES measures (/ inter-ocular distance) and HEAD_SERIES angles (degrees).
    """
    faces = np.asarray(data)[:, layout.FACE]
    has = geometry.face_present(conf)
    out = {name: np.full(len(faces), np.nan) for name in (*FACE_SERIES, *HEAD_SERIES)}
    for t in np.nonzero(has)[0]:
        face = geometry.to_metric(faces[t], width)
        for name, fn in FACE_SERIES.items():
            out[name][t] = fn(face)
        for name, value in zip(HEAD_SERIES, geometry.head_angles(face)):
            out[name][t] = value
    return out


def hand_flexion_series(data: np.ndarray, conf: np.ndarray, width: int) -> np.ndarray:
    """Flexion angles of both hands: float64 (T, 2, 15) degrees, NaN where the hand is missing.

    Hand axis 0 = the signer's left hand, 1 = right (layout order).
    """
    data = np.asarray(data)
    out = np.full((len(data), 2, len(FLEXION_JOINTS)), np.nan)
    for h, rows in enumerate(geometry.HAND_ROWS):
        for t in np.nonzero(geometry.hand_present(conf, h))[0]:
            out[t, h] = flexion_angles(geometry.to_metric(data[t, rows], width))
    return out


def hand_trajectories(data: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """Wrist and fingertip positions in shoulder widths around the shoulder midpoint.

    Returns float64 (T, 2, 6, 2): hand (left, right), TRAJECTORY_POINTS, image (x, y) minus the
    shoulder midpoint, divided by the shoulder width (image plane). NaN where the hand or the
    shoulders are missing. This removes where the signer stands and how big they appear.
    """
    data, conf = np.asarray(data, np.float64), np.asarray(conf)
    out = np.full((len(data), 2, len(TRAJECTORY_POINTS), 2), np.nan)
    left, right = data[:, layout.LEFT_SHOULDER, :2], data[:, layout.RIGHT_SHOULDER, :2]
    shoulders = geometry.body_present(conf)
    width = np.linalg.norm(left - right, axis=1)
    centre = (left + right) / 2
    for h, rows in enumerate(geometry.HAND_ROWS):
        ok = geometry.hand_present(conf, h) & shoulders & (width > 1e-6)
        pts = data[:, rows.start + np.array(TRAJECTORY_POINTS), :2]
        norm = (pts - centre[:, None]) / np.maximum(width, 1e-6)[:, None, None]
        out[ok, h] = norm[ok]
    return out


def _nanmean(values: np.ndarray) -> float | None:
    """Mean of the finite values, None when there are none."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None


def _hand_presence(data: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """bool (T, 2): each hand present (left, right) by the shared rule."""
    return np.stack([geometry.hand_present(conf, 0), geometry.hand_present(conf, 1)], axis=1)


def _handshape_section(flex_o: np.ndarray, flex_a: np.ndarray) -> dict:
    diff = np.abs(flex_o - flex_a)  # (T, 2, 15), NaN unless both hands present
    per_frame = np.array([_nanmean(row) for row in diff.reshape(len(diff), -1)], np.float64)
    per_frame[~np.isfinite(per_frame)] = np.nan
    finger = {name: _nanmean(diff[..., 3 * i : 3 * i + 3]) for i, name in enumerate(FINGER_NAMES)}
    # Chance level: the original against itself a quarter to three quarters of the clip away
    # (cyclic shifts): what handshapes of the same signer that do not belong together score.
    n = len(flex_o)
    shifts = range(max(1, n // 4), max(2, n - n // 4 + 1), max(1, n // 8))
    shifted = [np.abs(flex_o - np.roll(flex_o, k, axis=0)) for k in shifts] if n > 1 else []
    chance = _nanmean(np.stack(shifted)) if shifted else None
    pairs = np.isfinite(diff).all(axis=2)
    return {
        "handshape_angle_error_deg": _nanmean(diff),
        "handshape_angle_error_median_deg": float(np.median(diff[np.isfinite(diff)])) if np.isfinite(diff).any() else None,
        "handshape_angle_error_per_finger_deg": finger,
        "handshape_angle_error_chance_deg": chance,
        "handshape_pairs": int(pairs.sum()),
        "per_frame_handshape_error_deg": per_frame,
    }


def _trajectory_section(traj_o: np.ndarray, traj_a: np.ndarray) -> dict:
    dist = np.linalg.norm(traj_o - traj_a, axis=-1)  # (T, 2, 6) shoulder widths
    wrist_r = [pearson(traj_o[:, h, 0, c], traj_a[:, h, 0, c]) for h in range(2) for c in range(2)]
    wrist_r = [r for r in wrist_r if np.isfinite(r)]
    return {
        "trajectory_error_sw": _nanmean(dist),
        "wrist_error_sw": _nanmean(dist[:, :, 0]),
        "fingertip_error_sw": _nanmean(dist[:, :, 1:]),
        "wrist_r": float(np.mean(wrist_r)) if wrist_r else None,
    }


def compare_signing(original: tuple, anonymized: tuple) -> dict:
    """Compare the signing of two clips frame by frame (the first min(T_o, T_a) frames).

    original, anonymized: (data (T, 586, 3), conf (T, 586), frame width px) each. Returns the
    ``signing`` and ``face_grammar`` sections of ``report.json`` plus ``series`` (per-frame arrays
    for plots): see the keys. Recall counts frames where the original shows a hand (per hand); the
    handshape error is the mean absolute flexion-angle difference over joints of hands present in
    both, in degrees; trajectories are in shoulder widths.
    """
    (do, co, wo), (da, ca, wa) = original, anonymized
    n = min(len(do), len(da))
    do, co, da, ca = do[:n], co[:n], da[:n], ca[:n]
    has_o, has_a = _hand_presence(do, co), _hand_presence(da, ca)
    flex_o, flex_a = hand_flexion_series(do, co, wo), hand_flexion_series(da, ca, wa)
    traj_o, traj_a = hand_trajectories(do, co), hand_trajectories(da, ca)
    signing = {
        "frames_compared": n,
        "hand_recall": float(has_a[has_o].mean()) if has_o.any() else None,
        "hand_recall_left": float(has_a[has_o[:, 0], 0].mean()) if has_o[:, 0].any() else None,
        "hand_recall_right": float(has_a[has_o[:, 1], 1].mean()) if has_o[:, 1].any() else None,
        "hand_extra_rate": float(has_a[~has_o].mean()) if (~has_o).any() else None,
        "original_hand_frames": int(has_o.sum()),
        "anonymized_hand_frames": int(has_a.sum()),
    }
    shape = _handshape_section(flex_o, flex_a)
    per_frame_shape = shape.pop("per_frame_handshape_error_deg")
    signing.update(shape)
    signing.update(_trajectory_section(traj_o, traj_a))
    fs_o, fs_a = face_series(do, co, wo), face_series(da, ca, wa)
    grammar = {}
    for name in fs_o:
        both = np.isfinite(fs_o[name]) & np.isfinite(fs_a[name])
        grammar[name] = {
            "r": pearson(fs_o[name], fs_a[name]),
            "frames": int(both.sum()),
            "original_std": float(np.std(fs_o[name][both])) if both.any() else None,
            "anonymized_std": float(np.std(fs_a[name][both])) if both.any() else None,
        }
    series = {
        "handshape_error_deg": per_frame_shape,
        "face_original": fs_o,
        "face_anonymized": fs_a,
        "wrist_original": traj_o[:, :, 0],
        "wrist_anonymized": traj_a[:, :, 0],
    }
    return {"signing": signing, "face_grammar": grammar, "series": series}
