"""Signing-preservation measures computed from landmarks alone.

Handshape is compared through finger-joint flexion angles: they do not depend on hand size, body
proportions or where the hand is, so they compare a signer with an avatar of other proportions.
Facial-grammar series are distances between face-mesh points divided by the inter-ocular distance,
so they do not depend on face size or distance to the camera. Each series is compared by its
correlation r and its gain (std of the output's series over the original's): a series can correlate
well and still be damped to a faint trace. Hand-to-face contact is compared in face widths.

The series, the gain, "moving" and the contact error follow the definitions of the independent
read-back (``/work/shared/tools/readback.py``: MediaPipe and dlib, none of signanon's code), from
which the issues' figures come; ``tests/test_evaluation_readback.py`` checks the two agree. One
difference: "moving" is judged on every frame where the original shows a face (the read-back: where
both do; the same wherever the output keeps the face), so that a series the output cannot be read
on at all (no face, too few faces) is reported lost, not still.
"""

from __future__ import annotations

import numpy as np

from ..landmarks import geometry, layout
from ..landmarks.geometry import flexion_angles  # noqa: F401  (re-exported)
from ..landmarks.grammar import (  # noqa: F401  (re-exported: the series evaluate compares)
    FACE_SERIES, brow_furrow, brow_raise, eye_openness, mouth_opening, mouth_width,
)
from ..landmarks.regions import FACE_OVAL, FINGER_NAMES, FINGERTIPS, FLEXION_JOINTS


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


# A hand of the original moving faster than this (hand lengths per second, about 1.5 m/s for an
# adult hand) counts as fast: a camera smears it, and the original's own read of its fingers is
# least trustworthy there. On 12 of the 13 benchmark clips with hands the output's finger angles
# read 0.6-6.8 deg further off on fast hands than on steady ones (asl_webcam: 18 of 22 hands fast),
# and 0.08-0.22 of the fast hands were lost on 8 (`benchmarks/hands_issue11.txt`).
FAST_HAND_LS = 8.0


def _fast(speed: np.ndarray) -> np.ndarray:
    """bool, the shape of ``speed`` (hand lengths per second): at :data:`FAST_HAND_LS` or more (NaN: False)."""
    return np.nan_to_num(speed, nan=-1.0) >= FAST_HAND_LS


def _split_by_speed(diff: np.ndarray, has_o: np.ndarray, has_a: np.ndarray, speed_o: np.ndarray | None) -> dict:
    """Handshape error and recall of the original's steady and fast hands (:data:`FAST_HAND_LS`).

    diff: (T, 2, 15) |flexion difference| (NaN unless both hands present); has_o, has_a: bool
    (T, 2); speed_o: float (T, 2) hand lengths per second of the original's hands (NaN: unknown,
    in neither group), or None (no frame rate: every entry None).
    """
    out: dict = {"fast_hand_ls": FAST_HAND_LS}
    for name in ("steady", "fast"):
        if speed_o is None:
            out.update({f"handshape_angle_error_{name}_deg": None, f"hand_recall_{name}": None, f"original_{name}_hand_frames": None})
            continue
        group = _fast(speed_o) if name == "fast" else (np.isfinite(speed_o) & ~_fast(speed_o))
        shown = has_o & group
        out[f"handshape_angle_error_{name}_deg"] = _nanmean(diff[group])
        out[f"hand_recall_{name}"] = float(has_a[shown].mean()) if shown.any() else None
        out[f"original_{name}_hand_frames"] = int(shown.sum())
    return out


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


# ---------------------------------------------------------------------------------------------
# Facial-grammar strength (gain) and hand-to-face contact: the definitions of the independent
# read-back (/work/shared/tools/readback.py), computed here with signanon's own regions/geometry.

MIN_SERIES_FRAMES = 5  # fewer frames with a face in both clips: no r and no gain (a moving series is lost)
MOVING_STD_IOD = 0.01  # a face series the original "really moves": std >= 0.01 inter-ocular distances
MOVING_STD_DEG = 1.0  # the same for head angles, in degrees (signanon's own choice; no read-back)
DAMPED_GAIN = 0.7  # a moving series whose output std is under 0.7 of the original's is damped ...
DAMPED_R = 0.6  # ... and so is one that correlates under 0.6
EXAGGERATED_GAIN = 1.4  # above this the output overdoes the movement (the 0.7-1.4 band)
# the face oval's widest points (cheek edges, both in regions.FACE_OVAL): the face width
FACE_WIDTH_POINTS = (FACE_OVAL[28], FACE_OVAL[8])  # (234, 454)
CONTACT_NEAR_FW = 0.5  # the original's hand counts as at the face within half a face width
CONTACT_KEPT_FW = 0.1  # the output keeps a contact when its distance is within 0.1 face widths


def series_gain(original: np.ndarray, anonymized: np.ndarray) -> float | None:
    """How strongly the output moves where the original moves: std(anonymized) / std(original).

    Both float (T,) in one unit (inter-ocular distances or degrees), NaN where a face is missing;
    frames where either is NaN are left out. None with fewer than MIN_SERIES_FRAMES frames or a
    constant original. 1 = same amplitude, < 1 damped, > 1 exaggerated.
    """
    a, b = np.asarray(original, np.float64), np.asarray(anonymized, np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < MIN_SERIES_FRAMES or a[keep].std() < 1e-9:
        return None
    return float(b[keep].std() / a[keep].std())


def grammar_entry(name: str, original: np.ndarray, anonymized: np.ndarray) -> dict:
    """One face_grammar row of report.json: r, gain, stds, whether the original moves it, flags.

    original, anonymized: float (T,), NaN where that clip shows no face. Face series are in
    inter-ocular distances, head angles (HEAD_SERIES) in degrees. ``moving``: the original's std
    over its own face frames (``original_std_own``) >= MOVING_STD_IOD
    (MOVING_STD_DEG for head angles), whether or not the output shows a face there. ``lost``: a
    moving series the output shows a face on in fewer than MIN_SERIES_FRAMES of those frames (no
    r, no gain: nothing to follow it on). ``damped``: a moving series, not lost, with gain <
    DAMPED_GAIN or r < DAMPED_R (or no r). ``status``: "still", "lost", "ok", "damped" or
    "exaggerated" (gain > EXAGGERATED_GAIN). r, gain, ``original_std`` and ``anonymized_std`` are
    over the ``frames`` where both clips show a face (the read-back's).
    """
    a, b = np.asarray(original, np.float64), np.asarray(anonymized, np.float64)
    own = np.isfinite(a)
    both = own & np.isfinite(b)
    n = int(both.sum())
    r = pearson(a, b) if n >= MIN_SERIES_FRAMES else float("nan")
    r = r if np.isfinite(r) else None
    gain = series_gain(a, b)
    std_o = float(np.std(a[both])) if n else None
    std_own = float(np.std(a[own])) if own.any() else None
    is_head = name in HEAD_SERIES
    moving = std_own is not None and std_own >= (MOVING_STD_DEG if is_head else MOVING_STD_IOD)
    lost = bool(moving and n < MIN_SERIES_FRAMES)
    damped = bool(moving and not lost and (gain is None or gain < DAMPED_GAIN or r is None or r < DAMPED_R))
    if not moving:
        status = "still"
    elif lost:
        status = "lost"
    elif damped:
        status = "damped"
    else:
        status = "exaggerated" if gain > EXAGGERATED_GAIN else "ok"
    return {
        "r": r,
        "gain": gain,
        "frames": n,
        "original_frames": int(own.sum()),
        "original_std": std_o,
        "original_std_own": std_own,
        "anonymized_std": float(np.std(b[both])) if n else None,
        "unit": "degrees" if is_head else "inter-ocular distances",
        "moving": bool(moving),
        "damped": damped,
        "lost": lost,
        "status": status,
    }


def _hand_face_distance(hand_xy: np.ndarray, face_xy: np.ndarray, face_width: float) -> float:
    """min over hand and face points of the 2-D distance, / face_width (pixels / pixels)."""
    gaps = np.linalg.norm(hand_xy[:, None, :] - face_xy[None, :, :], axis=-1)
    return float(gaps.min() / face_width)


def contact_series(data: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """Hand-to-face distance per frame and hand, in face widths: float64 (T, 2), NaN where the
    hand or the face is missing.

    The distance runs from the nearest of the hand's 21 points to the nearest present face point
    (mesh and irises), in the image plane; the face width is the distance between the face oval's
    widest points (FACE_WIDTH_POINTS). Hand axis 0 = the signer's left, 1 = right.
    """
    data, conf = np.asarray(data, np.float64), np.asarray(conf)
    out = np.full((len(data), 2), np.nan)
    faces = geometry.face_present(conf)
    width_rows = [layout.FACE.start + i for i in FACE_WIDTH_POINTS]
    for t in np.nonzero(faces)[0]:
        rows = np.arange(layout.FACE.start, layout.FACE.stop)
        face_xy = data[t, rows[conf[t, rows] > 0], :2]
        width = float(np.linalg.norm(data[t, width_rows[0], :2] - data[t, width_rows[1], :2])) + 1e-9
        for h, hand_rows in enumerate(geometry.HAND_ROWS):
            if geometry.hand_present(conf[t], h):
                out[t, h] = _hand_face_distance(data[t, hand_rows, :2], face_xy, width)
    return out


def contact_section(original: np.ndarray, anonymized: np.ndarray) -> dict:
    """Hand-to-face contact kept? Over hands (frame, side) where the original's hand is within
    CONTACT_NEAR_FW face widths of the face and both clips show that hand and a face: the mean
    |distance(output) - distance(original)| in face widths, and the share within CONTACT_KEPT_FW.

    original, anonymized: (T, 2) from :func:`contact_series`. ``contact_hands_lost``: near-face
    hands of the original with no hand or face in the output (not in the error).
    """
    near = np.isfinite(original) & (original < CONTACT_NEAR_FW)
    both = near & np.isfinite(anonymized)
    errors = np.abs(anonymized[both] - original[both])
    return {
        "contact_error_face_widths": float(errors.mean()) if errors.size else None,
        "contact_kept_rate": float((errors <= CONTACT_KEPT_FW).mean()) if errors.size else None,
        "contact_frames": int(errors.size),
        "contact_hands_lost": int((near & ~np.isfinite(anonymized)).sum()),
        "contact_near_face_widths": CONTACT_NEAR_FW,
    }


def compare_signing(original: tuple, anonymized: tuple, fps: float | None = None) -> dict:
    """Compare the signing of two clips frame by frame (the first min(T_o, T_a) frames).

    original, anonymized: (data (T, 586, 3), conf (T, 586), frame width px) each; fps: the
    original's frame rate, for the split of the hands into steady and fast ones (None: no split,
    those entries None). Returns the
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
    speed_o = geometry.hand_speed(do, co, fps) if fps else None
    signing.update(_split_by_speed(np.abs(flex_o - flex_a), has_o, has_a, speed_o))
    signing.update(_trajectory_section(traj_o, traj_a))
    fs_o, fs_a = face_series(do, co, wo), face_series(da, ca, wa)
    grammar = {name: grammar_entry(name, fs_o[name], fs_a[name]) for name in fs_o}
    signing["moving_series"] = [k for k, v in grammar.items() if v["moving"]]
    signing["damped_series"] = [k for k, v in grammar.items() if v["damped"]]
    signing["lost_series"] = [k for k, v in grammar.items() if v["lost"]]
    signing["exaggerated_series"] = [k for k, v in grammar.items() if v["status"] == "exaggerated"]
    cont_o, cont_a = contact_series(do, co), contact_series(da, ca)
    signing.update(contact_section(cont_o, cont_a))
    signing["original_face_frames"] = int(geometry.face_present(co).sum())
    signing["anonymized_face_frames"] = int(geometry.face_present(ca).sum())
    series = {
        "handshape_error_deg": per_frame_shape,
        # 1 where a hand of the original moves at FAST_HAND_LS or more, else 0 (NaN: no frame rate)
        "fast_hand": np.full(n, np.nan) if speed_o is None else _fast(speed_o).any(axis=1).astype(np.float64),
        "face_original": fs_o,
        "face_anonymized": fs_a,
        "wrist_original": traj_o[:, :, 0],
        "wrist_anonymized": traj_a[:, :, 0],
        "contact_original": cont_o,
        "contact_anonymized": cont_a,
    }
    return {"signing": signing, "face_grammar": grammar, "series": series}


OUT_OF_GOAL = ("damped", "exaggerated")  # grammar_entry statuses outside the r >= 0.6, gain 0.7-1.4
# the signing figures that the reader check repeats beside the comparison's own
READER_SIGNING_KEYS = ("hand_recall", "handshape_angle_error_deg", "contact_error_face_widths")


def add_reader_check(compared: dict, reader: dict) -> dict:
    """Put the landmark reader's agreement with itself beside the comparison's figures, in place.

    compared: :func:`compare_signing` of the original against the anonymized video; reader: the
    same of the original against a copy of it nobody could tell from it
    (``evaluate.write_reader_copy``), i.e. how far the reader follows the original when nothing
    changed. Each face_grammar row gains ``reader_r``, ``reader_gain`` and ``at_reader_limit``: out
    of the goal here (damped, or exaggerated past EXAGGERATED_GAIN) and in the reader's own re-read
    as well. ``signing`` gains ``reader_<key>`` for READER_SIGNING_KEYS and
    ``out_of_goal_at_reader_limit``. Returns ``compared``.
    """
    signing, grammar = compared["signing"], compared["face_grammar"]
    for key in READER_SIGNING_KEYS:
        signing[f"reader_{key}"] = reader["signing"].get(key)
    for name, row in grammar.items():
        own = reader["face_grammar"][name]
        row["reader_r"], row["reader_gain"] = own["r"], own["gain"]
        row["at_reader_limit"] = row["status"] in OUT_OF_GOAL and own["status"] in OUT_OF_GOAL
    signing["out_of_goal_at_reader_limit"] = [k for k, v in grammar.items() if v["at_reader_limit"]]
    return compared
