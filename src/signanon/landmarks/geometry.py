"""Geometry every stage shares: pixel units, presence of a part, similarity fits, head angles,
finger flexion.

Units
-----
In the shared frame array (float32 ``(586, 3)``, see :mod:`.layout`) the image parts (body, face,
hands) hold x, y in image pixels and MediaPipe's z, which is scaled like a *normalised* x. Times the
frame width it becomes pixels: :func:`to_metric` does that, and every stage that needs 3-D pixel
geometry calls it instead of scaling z itself.

Presence
--------
A point is present when its confidence is > 0 (the landmark stage sets it to 0 for missing and
non-finite points). A *part* is present by one rule per part, used by every stage:

* face:  all 468 face-mesh points present (the 10 iris points are a separate part,
  :func:`irises_present`: the estimator may run without iris refinement);
* hand:  all 21 points of that hand present;
* body:  both shoulders present (every body measure of signanon is relative to them).

Each rule takes confidence ``(..., 586)`` (whole frames) or ``(..., n)`` (the part alone: 478 face,
21 hand, 33 body points) and returns a bool of shape ``(...)``; ``data`` of the matching shape
``(..., 586 or n, 3)``, when given, must also be finite on the part.
"""

from __future__ import annotations

import math

import numpy as np

from . import layout, regions

Similarity = tuple[float, np.ndarray, np.ndarray]
"""``(s, R, t)``: scale s > 0, rotation R (3, 3) float64, translation t (3,) float64; maps points
p (N, 3) to ``s * p @ R.T + t``."""


# --- units ---------------------------------------------------------------------------------------


def to_metric(points: np.ndarray, width: float) -> np.ndarray:
    """Landmark coordinates with z in pixels: x, y px and MediaPipe z -> x, y, z px.

    points: float (..., 3) (any rows of the image parts: body, face, hands); width: the frame
    width in pixels. Returns a new float64 (..., 3) array, z multiplied by ``width``.
    """
    out = np.array(points, np.float64)
    out[..., 2] *= float(width)
    return out


# --- presence ------------------------------------------------------------------------------------


_FACE_MESH = slice(0, 468)  # within the face part
_IRISES = slice(468, layout.N_FACE)
_SHOULDERS = [layout.LEFT_SHOULDER, layout.RIGHT_SHOULDER]
HAND_ROWS = (layout.LEFT_HAND, layout.RIGHT_HAND)
"""Rows of the hands, by side: 0 = the signer's left hand, 1 = their right (layout order)."""


def _all_present(confidence, part: slice, rows, data) -> np.ndarray | np.bool_:
    """All ``rows`` of ``part`` present; confidence/data are whole frames (..., 586) or the part
    alone (..., part size)."""
    conf = np.asarray(confidence)
    if conf.shape[-1] != layout.NUM_POINTS:
        if conf.shape[-1] != part.stop - part.start:
            raise ValueError(f"confidence must end in {layout.NUM_POINTS} or the part's "
                             f"{part.stop - part.start} points, got shape {conf.shape}")
        part = slice(0, part.stop - part.start)
    rows = np.arange(part.start, part.stop)[rows]
    ok = (conf[..., rows] > 0).all(axis=-1)
    if data is not None:
        ok = ok & np.isfinite(np.asarray(data)[..., rows, :]).all(axis=(-1, -2))
    return ok


def face_present(confidence: np.ndarray, data: np.ndarray | None = None) -> np.ndarray | np.bool_:
    """Whether the face is present: all 468 mesh points.

    confidence: (..., 586) frames or (..., 478) face parts -> bool (...).
    """
    return _all_present(confidence, layout.FACE, _FACE_MESH, data)


def irises_present(confidence: np.ndarray, data: np.ndarray | None = None) -> np.ndarray | np.bool_:
    """Whether both irises (face points 468..477) are present.

    confidence: (..., 586) frames or (..., 478) face parts -> bool (...).
    """
    return _all_present(confidence, layout.FACE, _IRISES, data)


def hand_present(
    confidence: np.ndarray, side: int, data: np.ndarray | None = None
) -> np.ndarray | np.bool_:
    """Whether one hand is present: all its 21 points. side: 0 = signer's left, 1 = right.

    confidence: (..., 586) frames or (..., 21) hand parts -> bool (...).
    """
    return _all_present(confidence, HAND_ROWS[side], slice(None), data)


def body_present(confidence: np.ndarray, data: np.ndarray | None = None) -> np.ndarray | np.bool_:
    """Whether the body is present: both shoulders.

    confidence: (..., 586) frames or (..., 33) body parts -> bool (...).
    """
    return _all_present(confidence, layout.BODY, _SHOULDERS, data)


UPRIGHT_NOSE_RISE = 0.2  # shoulder widths the nose lies at least above the shoulders' middle (image y)
UPRIGHT_SHOULDER_TILT = 45.0  # degrees the line between the shoulders may tilt from level at most


def upright_body_present(confidence: np.ndarray, data: np.ndarray) -> bool:
    """Whether one frame shows a signer's body: both shoulders (:func:`body_present`), the head up,
    its nose (pose point 0) at least :data:`UPRIGHT_NOSE_RISE` shoulder widths above the middle of
    its shoulders (image y; the 2-D distance between the shoulders), the shoulders' line within
    :data:`UPRIGHT_SHOULDER_TILT` degrees of level, and the left shoulder on the image's right.

    MediaPipe Pose takes a hand and forearm coming in at the frame's edge for a tiny body: on the
    192x144 NGT numbers clip slid in from the right, shoulders 2-19 px apart at visibility 0.98-1.0,
    the "nose" from 16 px below them (upside down) to 0.04-0.24 shoulder widths above, drawn as a
    tumbling avatar a tenth of the signer's size. A signer's nose, read by our Holistic on every
    frame of the nine shared clips and five framings: at least 0.44 shoulder widths above on the
    signing clips (median 0.55-0.65), 0.28 on a talking head cut at the chest. A nose not found
    (confidence 0) does not count against the body. The shoulders' line of those bodies tilts 17-85
    degrees (the one 85 degrees off has its nose 0.24 shoulder widths up); a signer's, at most 10
    (the webcam clip), 1-5 on the others.

    A signer faces the camera: the left shoulder (pose point 11) lies right of the right one in
    the image. As a signer leaves through the side of a tilted picture, MediaPipe read the part
    still in the frame as a body turned round, shoulders crossed, a third of the signer's width,
    nose up and shoulders level enough for the checks above (the DGS clip left through the left
    edge and turned 20 degrees: 2 frames), and the avatar drew it shrunk with an arm raised over
    its head, then held and faded that pose. Crossed shoulders, read by our Holistic on every frame
    of the seven shared clips and 32 framings of them (~4300 frames with a body): 23 frames, all of
    them bodies coming in or leaving at an edge, 21 of them already failing the checks above.

    confidence: (586,) float32; data: (586, 3) float32, x and y in pixels.
    """
    if not body_present(confidence):
        return False
    b = layout.BODY.start
    nose = b + layout.NOSE
    ls, rs = data[b + layout.LEFT_SHOULDER, :2], data[b + layout.RIGHT_SHOULDER, :2]
    if ls[0] < rs[0]:  # turned round: not a signer facing the camera
        return False
    if confidence[nose] <= 0:
        return True
    dx, dy = np.abs(ls - rs)
    if math.degrees(math.atan2(dy, dx)) > UPRIGHT_SHOULDER_TILT:
        return False
    width = float(np.linalg.norm(ls - rs))
    rise = float((ls[1] + rs[1]) / 2.0 - data[nose, 1])  # > 0: the nose above the shoulders' middle
    return bool(rise >= UPRIGHT_NOSE_RISE * width)


# --- similarity transforms -----------------------------------------------------------------------


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> Similarity:
    """Least-squares similarity transform (Umeyama 1991): ``dst ≈ s * src @ R.T + t``.

    src, dst: (N, 3) float arrays of corresponding points, N >= 3, any one unit. Returns
    ``(s, R, t)``: scale s > 0, a proper rotation R (3, 3) float64 (det +1, no reflection),
    translation t (3,) float64.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    cov = b.T @ a / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[2] = -1.0
    rot = (u * d) @ vt
    var_s = (a * a).sum() / len(src)
    s = float((sig * d).sum() / var_s) if var_s > 0 else 1.0
    t = mu_d - s * rot @ mu_s
    return s, rot, t


def apply_similarity(sim: Similarity, points: np.ndarray) -> np.ndarray:
    """``s * points @ R.T + t``: points (N, 3) float -> (N, 3) float64."""
    s, rot, t = sim
    return s * np.asarray(points, np.float64) @ rot.T + t


def invert_similarity(sim: Similarity) -> Similarity:
    """The inverse transform of ``sim``."""
    s, rot, t = sim
    return 1.0 / s, rot.T, -(rot.T @ t) / s


def fit_stable(src: np.ndarray, dst: np.ndarray) -> Similarity:
    """Similarity between two face meshes (478 or 468, 3) on the points that move little with
    expression (:data:`regions.STABLE`): head pose and size, without the expression."""
    rows = np.asarray(regions.STABLE, np.intp)
    return similarity_fit(np.asarray(src)[rows], np.asarray(dst)[rows])


# --- angles and face measures --------------------------------------------------------------------


def rotation_angles(rot: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a head rotation R (3, 3) (x right, y down, z away).

    yaw: about the vertical axis, pitch: about the horizontal axis (nod), roll: in the image plane
    (tilt). R = Ry(yaw) @ Rx(pitch) @ Rz(roll).
    """
    r = np.asarray(rot, np.float64)
    pitch = np.degrees(np.arcsin(np.clip(-r[1, 2], -1.0, 1.0)))
    yaw = np.degrees(np.arctan2(r[0, 2], r[2, 2]))
    roll = np.degrees(np.arctan2(r[1, 0], r[1, 1]))
    return float(yaw), float(pitch), float(roll)


def head_angles(face: np.ndarray) -> np.ndarray:
    """Head pitch, yaw and roll in degrees from one face mesh, without a reference face.

    face: (478, 3) (or (468, 3)) with x, y, z in the same units (pixels: see :func:`to_metric`).
    Axes: x from the right to the left outer eye corner, y from forehead (10) to chin (152), made
    orthogonal. Returns float64 (3,): pitch (chin towards the camera > 0), yaw (eye line turning
    into depth), roll (eye line tilting in the image, clockwise > 0); each in (-180, 180], 0 for a
    frontal upright face.
    """
    face = np.asarray(face, np.float64)
    x = face[regions.EYE_OUTER_L] - face[regions.EYE_OUTER_R]
    y = face[regions.CHIN] - face[regions.FOREHEAD]
    x /= np.linalg.norm(x) + 1e-12
    z = np.cross(x, y)
    z /= np.linalg.norm(z) + 1e-12
    y = np.cross(z, x)
    pitch = np.degrees(np.arctan2(-y[2], y[1]))
    yaw = np.degrees(np.arctan2(x[2], x[0]))
    roll = np.degrees(np.arctan2(x[1], x[0]))
    return np.array([pitch, yaw, roll])


def inter_ocular(face: np.ndarray) -> float:
    """Image-plane distance (x, y) between the outer eye corners of a face mesh (478 or 468, 2+),
    in its units, + 1e-9 so that it can divide."""
    face = np.asarray(face, np.float64)
    return float(np.linalg.norm(face[regions.EYE_OUTER_L, :2] - face[regions.EYE_OUTER_R, :2])) + 1e-9


def flexion_angles(hand: np.ndarray) -> np.ndarray:
    """Bending at each of the 15 finger joints, in degrees.

    hand: (21, 3) float, MediaPipe Hands points (any consistent units; x, y, z).
    Returns (15,) float64 in [0, 180]: 0 = straight, larger = more bent; order of
    :data:`~.regions.FLEXION_JOINTS` (per finger, thumb first: its base joint, middle joint, last
    joint; finger ``f``'s middle joint is entry ``3 * f + 1``).
    """
    hand = np.asarray(hand, np.float64)
    idx = np.array(regions.FLEXION_JOINTS)
    incoming = hand[idx[:, 1]] - hand[idx[:, 0]]
    outgoing = hand[idx[:, 2]] - hand[idx[:, 1]]
    cos = np.sum(incoming * outgoing, axis=1) / (
        np.linalg.norm(incoming, axis=1) * np.linalg.norm(outgoing, axis=1) + 1e-12
    )
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


# --- motion --------------------------------------------------------------------------------------


def hand_speed(data: np.ndarray, conf: np.ndarray, fps: float) -> np.ndarray:
    """How fast each hand moves, in hand lengths per second.

    data: float (T, 586, 3) and conf (T, 586) frames (x, y in pixels); fps: frames per second.
    Returns float64 (T, 2) (hand 0 = the signer's left, 1 = right): the mean image-plane
    displacement of the hand's 21 points to the neighbouring frame that moves it most (the one
    before or after, where that frame has the hand too), over the hand's length (wrist to the middle
    finger's knuckle, image plane), times ``fps``. NaN where the hand is missing, has no neighbour
    with the hand, or is seen end-on (length under 1e-6).
    """
    data = np.asarray(data, np.float64)
    out = np.full((len(data), 2), np.nan)
    for h, rows in enumerate(HAND_ROWS):
        pts = data[:, rows, :2]  # (T, 21, 2)
        ok = np.asarray(hand_present(conf, h), bool)
        length = np.linalg.norm(pts[:, layout.MIDDLE[0]] - pts[:, layout.WRIST], axis=-1)
        step = np.full((len(data), 2), np.nan)  # displacement to the frame before / after, px
        if len(data) > 1:
            moved = np.linalg.norm(pts[1:] - pts[:-1], axis=-1).mean(axis=-1)
            both = ok[1:] & ok[:-1]
            step[1:, 0] = np.where(both, moved, np.nan)
            step[:-1, 1] = np.where(both, moved, np.nan)
        seen = ok & np.isfinite(step).any(axis=1) & (length > 1e-6)
        out[seen, h] = np.nanmax(step[seen], axis=1) / length[seen] * float(fps)
    return out
