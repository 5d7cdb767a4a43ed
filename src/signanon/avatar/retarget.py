"""Retargeting: the signer's landmarks -> one canonical body with the signer's motion.

The avatar's face, hands and torso have *canonical* sizes (fixed ratios of the shoulder width, see
:class:`BodyProportions`); the arms have the signer's own lengths (measured in the calibration), so
that each hand is where the signer's is relative to the shoulders: where a sign is made is part of
the sign. The bones' 2-D directions, their foreshortening and the hand shapes come from the source.
The avatar fills the frame like the signer: its shoulder width is the signer's median shoulder
width and its shoulder centre follows the signer's.

Coordinates: the landmark layout of :mod:`signanon.landmarks.layout` (x, y in source pixels, z
normalised like x). Everything produced here is in output pixels (the output frame has the source's
size), z in the same pixel units (smaller = closer to the camera).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..errors import NoPersonError
from ..landmarks import geometry, layout
from ..landmarks.rate import frames_at_rate, weight_at_rate
from ..landmarks.regions import (
    BODY_FACE_POINTS, BODY_HAND_POINTS, BROW_UPPER, EYE_OUTER, HAND_POINTS_IN_BODY, NOSE_BRIDGE,
)
from .skeleton import AvatarPose

FACE_ANCHOR = NOSE_BRIDGE  # the face-mesh point the avatar's face hangs from
_BROW_ROWS = layout.FACE.start + np.array(BROW_UPPER)  # the upper brows' rows in the shared layout
NECK_BELOW_ANCHOR = 1.25  # face units from the face anchor down to the neck's top (as body.py draws it)

# (shoulder, elbow, wrist, hand rows) per side, MediaPipe Pose indices.
_SIDES = (
    (layout.LEFT_SHOULDER, layout.LEFT_ELBOW, layout.LEFT_WRIST, layout.LEFT_HAND),
    (layout.RIGHT_SHOULDER, layout.RIGHT_ELBOW, layout.RIGHT_WRIST, layout.RIGHT_HAND),
)


@dataclass(frozen=True)
class BodyProportions:
    """The canonical signer, every length a ratio of the shoulder width (MediaPipe shoulder points).

    The defaults are typical adult proportions as MediaPipe measures them: upper arm 0.88, forearm
    (elbow to wrist) 0.78, palm (wrist to middle-finger knuckle, 3-D) 0.24, face unit (outer eye
    corners) 0.30, the nose bridge 0.68 above the shoulder centre, hips 0.62 wide and 1.45 below.
    """

    upper_arm: float = 0.88
    forearm: float = 0.78
    palm: float = 0.24
    face_unit: float = 0.30
    neck: float = 0.68
    hip_width: float = 0.62
    torso: float = 1.45
    min_foreshortening: float = 0.15  # a bone pointing at the camera keeps at least this much
    max_foreshortening: float = 1.05
    # The arms' bones: the signer's own lengths (Calibration.bone_refs), or with False the canonical
    # upper_arm and forearm above. Canonical arms put the hands where the signer's are not: the
    # wrist ends where the signer's bone directions, at the canonical lengths, lead. DGS ZUG's arms
    # measure 0.91 (upper) and 0.62 (forearm) shoulder widths, and her hands, held at the waist and
    # chest, were drawn 0.19 shoulder widths (0.7 face widths) higher than hers on average (read
    # back by the independent Holistic, the hand's centre against the shoulders'), a sign made at
    # the stomach drawn at the chest. The signer's lengths: 0.09 (benchmarks/hands_issue11.txt,
    # session 48). The arms' proportions are then the signer's; the face, the only part dlib
    # identifies, and the hands and torso stay canonical.
    signer_arms: bool = True
    hand_depth_range: tuple[float, float] = (0.8, 1.3)  # hand size change with distance, clipped
    # In close-up video the hands are nearer the camera than the shoulders and look bigger than
    # the canonical ratio; the avatar's hands may grow with the signer's median palm, up to this
    # factor (never shrink). Off by default: at 1.4 the close-up asl_webcam lost hand recall (read
    # back 0.95 -> 0.76: bigger hands cover the face and each other more).
    max_hand_boost: float = 1.0
    # A hand drawn with a palm (wrist to middle knuckle) under min_palm_px output pixels is drawn
    # bigger, up to that size and at most max_small_hand_boost times: a 15 px palm's fingers are
    # 2-3 px wide, and their angles read back ~2 deg further off (DGS ZUG downscaled to a third,
    # 3 reads: 14.8 -> 12.8 deg at 22 px; benchmarks/hands_issue11.txt, session 14).
    min_palm_px: float = 22.0
    max_small_hand_boost: float = 1.5
    # Likewise a face whose unit (outer eye corners) would be drawn under min_face_px output pixels
    # is drawn bigger, up to that size and at most max_small_face_boost times, hanging from a raised
    # anchor so that the neck's top stays where it was: on a ~20 px face the mouthing is a few
    # pixels. DGS ZUG at a third of its size (face unit 19 px), bench, 3 reads, same look: mouth
    # r/gain 0.41/1.36 -> 0.63/1.46, finger angles 14.1 -> 12.5 deg, no face redrawn by the
    # identity guard (3); at 1.5x r 0.76, but the head visibly outgrows the body. Guard off, one
    # look, the 192x144 NGT clip (face unit 23 px): brow furrow r 0.38 -> 0.60, mouth width
    # 0.38 -> 0.69, eyes 0.15 -> 0.53, mouth opening 0.06 -> 0.62 (default palette; 0.43 on the
    # bench's re-encoded copy). The look the guard picks on so small a face is another matter
    # (IdentityGuardConfig.small_face_px; benchmarks/signing_issue11.txt, sessions 18-19).
    min_face_px: float = 30.0
    max_small_face_boost: float = 1.25
    face_contact_near: float = 0.35  # face units: hand fully face-relative below this distance
    face_contact_far: float = 1.4  # face units: hand fully body-relative above this distance
    # Two hands closer than hand_contact_near palms (nearest points, 2-D) keep the signer's offset
    # between them in palm units, fading out by hand_contact_far. The canonical hands (and, before
    # signer_arms, the canonical arms) put the avatar's hands closer together than the signer's: on
    # DGS ZUG zoomed in, 0.06-0.4 palms apart where the signer's were 1.0-1.3, and MediaPipe lost
    # one of the overlapping hands.
    hand_contact_near: float = 1.5
    hand_contact_far: float = 3.0
    # The canonical hands (and, before signer_arms, the canonical arms) can put a hand past the
    # frame's edge where the signer's is inside it (DGS ZUG at a third, rotated: hands held at the
    # waist near the bottom edge drawn half out of the frame, and the read-back lost them). A hand
    # whose points come nearer an edge than the signer's do (or than hand_edge_margin palms,
    # whichever is less) is moved back in, with its wrist and half its elbow; two hands near each
    # other move together. None: never.
    hand_edge_margin: float | None = 0.5
    # A signer's hand that an edge cuts (near the camera: the sample clip cut tight holds her hand
    # low, wrist below the frame, fingers rising into it) is bigger than the canonical one, so the
    # avatar's, with its outer end as far out as hers, reached 11-44 px less far into the frame and
    # the read-back lost it. Its inner end now comes as far into the frame as hers (where
    # hand_edge_margin is set).
    hand_edge_reach: bool = True
    # An arm whose hand MediaPipe does not see and whose pose elbow or wrist lies past the frame's
    # edge is the pose model's guess (wrist visibility 0.03-0.3 on clips cut tight). Followed, a
    # guess that bent the arm up drew a relaxed hand beside the face where the signer shows none
    # (the sample clip cut to its top 70%: 39 arm-frames). Such an arm hangs at rest from the
    # shoulder instead, blended with the guess by the wrist's visibility: at rest under
    # unseen_arm_rest[0], followed over unseen_arm_rest[1], fading in over unseen_arm_fade shoulder
    # widths past the edge (an arm in the frame: see unseen_elbow_rest). None: always followed.
    unseen_arm_rest: tuple[float, float] | None = (0.35, 0.65)
    unseen_arm_fade: float = 0.1
    # An unseen hand's arm guessed INSIDE the frame: a portrait video pillarboxed into a landscape
    # frame puts the cut-off arm over a black bar, where the pose model guesses it with elbow
    # visibility 0.10-0.19 (arms the signer shows: 0.29-0.99 on the shared clips). Such an arm hangs
    # at rest too, by its elbow's visibility: at rest under unseen_elbow_rest[0], followed over
    # unseen_elbow_rest[1] (the arm's trust is the lesser of this and the edge rule's). None: never.
    unseen_elbow_rest: tuple[float, float] | None = (0.2, 0.3)
    # The canonical neck (and the small-face boost's raised anchor) can put the avatar's brows above
    # the frame's top edge where the signer's are inside it: the 192x144 NGT clip with its top 15%
    # cut off (brows 1-3 px below the edge) drew the avatar's 9-12 px above it on every frame, the
    # eyes and brows cut off. The head is moved down (the neck shortens) until its brows are as far
    # below the top edge as the signer's, or face_edge_margin face units, whichever is less.
    # brow_height: the avatar's brows' top above point 168 in face units (the canonical face
    # asset's upper brow points). None: never.
    face_edge_margin: float | None = 0.3
    brow_height: float = 0.2
    # A clip between black bars (a portrait video uploaded as 16:9, a landscape one posted as 9:16)
    # shows the signer in its picture, not its frame: the rule that keeps hands in the frame
    # (hand_edge_margin, hand_edge_reach) keeps them in the picture's box (Calibration.picture),
    # where the run found one. DGS ZUG cut tight and letterboxed: the avatar held her low hands
    # 20-28 px below the picture, over the bar, and the read-back lost 13 of 55.
    hands_in_picture: bool = True
    # The canonical neck stands upright in the frame. A camera held crooked turns the whole
    # picture: a 20-degree turn left the avatar's head 0.23 shoulder widths beside the signer's,
    # over a skewed bare neck. Where the signer's head (median over the calibration) leans from
    # upright over their shoulders by more than lean_follow[0] degrees, the neck leans that way,
    # fully past lean_follow[1]. A head held within 10 degrees of upright is posture (the shared
    # clips' signers: -1.7 to 8.3), drawn upright as before. None: always upright.
    lean_follow: tuple[float, float] | None = (10.0, 16.0)

    def __post_init__(self) -> None:
        if self.lean_follow is not None and not (
            len(self.lean_follow) == 2 and 0.0 <= self.lean_follow[0] < self.lean_follow[1] <= geometry.UPRIGHT_SHOULDER_TILT
        ):
            raise ValueError(
                f"lean_follow must be (from, full) degrees with 0 <= from < full <= {geometry.UPRIGHT_SHOULDER_TILT:g}, "
                f"got {self.lean_follow!r}"
            )
        for name in ("unseen_arm_rest", "unseen_elbow_rest"):
            band = getattr(self, name)
            if band is not None and not (len(band) == 2 and 0.0 <= band[0] < band[1] <= 1.0):
                raise ValueError(f"{name} must be (low, high) visibilities with 0 <= low < high <= 1, got {band!r}")
        if self.unseen_arm_fade < 0.0:
            raise ValueError(f"unseen_arm_fade must be >= 0 shoulder widths, got {self.unseen_arm_fade!r}")
        if self.face_edge_margin is not None and self.face_edge_margin < 0.0:
            raise ValueError(f"face_edge_margin must be >= 0 face units or None, got {self.face_edge_margin!r}")


@dataclass(frozen=True)
class ScaleTracking:
    """How the avatar follows a signer whose size in the frame changes (walking toward the camera,
    a zoom). Each frame's size is measured against the calibration, as a ratio: the 3-D distance of
    the outer eye corners when the face is seen (turning the head or body barely changes it), else
    the 2-D shoulder width. The ratio's running median over ``window`` frames (a hand over the face
    throws single frames off) is smoothed in the log domain with weight ``smoothing`` per frame.
    ``window`` and ``smoothing`` are tuned at 30 fps: :meth:`at_rate` keeps them as long in seconds
    on faster video.

    enabled:  False keeps the calibration's size for the whole video.
    limits:   (min, max) ratio to the calibration size.
    """

    enabled: bool = True
    window: int = 9
    smoothing: float = 0.25
    limits: tuple[float, float] = (0.2, 5.0)

    def at_rate(self, fps: float) -> "ScaleTracking":
        """These settings for video at ``fps`` frames/s: the same at 30 fps and below; above, the
        median over as many seconds and the smoothing as fast in seconds (:mod:`~signanon.landmarks.rate`:
        at 60 fps a window of 18 frames, weight 0.134)."""
        return replace(self, window=frames_at_rate(self.window, fps), smoothing=weight_at_rate(self.smoothing, fps))


class ScaleTracker:
    """Per-frame size of the signer relative to the calibration (see :class:`ScaleTracking`).

    Call once per frame, in order, with that frame's metric landmarks (586, 3) float64 (z in px)
    and confidence (586,); returns the smoothed ratio (float, 1 = calibration size).
    """

    def __init__(self, calibration: "Calibration", config: ScaleTracking = ScaleTracking()):
        self.calibration = calibration
        self.config = config
        self._recent: deque[float] = deque(maxlen=max(1, config.window))
        self._log: float | None = None

    def measure(self, p: np.ndarray, conf: np.ndarray) -> float | None:
        """This frame's size ratio, unsmoothed, or None when nothing measurable is seen."""
        cal = self.calibration
        if _face_present(conf):
            f = p[layout.FACE]
            fu = float(np.linalg.norm(f[EYE_OUTER[0]] - f[EYE_OUTER[1]]))
            if fu > 1e-3 and cal.face_unit > 1e-3:
                return fu / cal.face_unit
        w = float(np.linalg.norm(p[layout.LEFT_SHOULDER, :2] - p[layout.RIGHT_SHOULDER, :2]))
        return w / cal.shoulder_width if w > 1e-3 else None

    def __call__(self, p: np.ndarray, conf: np.ndarray) -> float:
        if not self.config.enabled:
            return 1.0
        r = self.measure(p, conf)
        if r is not None:
            self._recent.append(float(np.log(np.clip(r, *self.config.limits))))
        if not self._recent:
            return 1.0
        target = float(np.median(self._recent))
        if self._log is None:
            self._log = target
        else:
            self._log += self.config.smoothing * (target - self._log)
        return float(np.exp(self._log))


@dataclass(frozen=True)
class Calibration:
    """What was measured on the signer (source pixels unless noted).

    shoulder_width:  median 2-D shoulder width.
    shoulder_centre: (2,) median shoulder centre (used by the neutral pose).
    bone_refs:       (2, 2) reference 2-D lengths [side][upper arm, forearm] (high percentile).
    palm_refs:       (2,) median 3-D palm length per hand (left, right).
    face_unit:       median 3-D distance between the outer eye corners.
    head_offset:     (2,) median (point 168 - shoulder centre) in shoulder widths: where the signer
                     holds their head over their shoulders (a camera turned about its axis turns it).
    eyes_to_anchor:  (2,) median (point 168 - mid of the pose eyes) in face units.
    picture:         (x0, y0, x1, y1) the picture's box inside black bars, or None (no bars).
    """

    width: int
    height: int
    shoulder_width: float
    shoulder_centre: np.ndarray
    bone_refs: np.ndarray
    palm_refs: np.ndarray
    face_unit: float
    head_offset: np.ndarray
    eyes_to_anchor: np.ndarray
    picture: tuple[float, float, float, float] | None = None

    def scaled(self, ratio: float) -> "Calibration":
        """The same signer ``ratio`` times as large in the frame (every pixel length scaled)."""
        if ratio == 1.0:
            return self
        return replace(
            self,
            shoulder_width=self.shoulder_width * ratio,
            bone_refs=self.bone_refs * ratio,
            palm_refs=self.palm_refs * ratio,
            face_unit=self.face_unit * ratio,
        )


# ----------------------------------------------------------------------------------------------
# small geometry helpers


def _unit(v: np.ndarray) -> tuple[np.ndarray, float]:
    n = float(np.hypot(v[0], v[1]))
    if n < 1e-9:
        return np.array([0.0, 1.0]), 0.0
    return v[:2] / n, n


def _smoothstep(x: float, lo: float, hi: float) -> float:
    t = min(1.0, max(0.0, (x - lo) / (hi - lo)))
    return t * t * (3.0 - 2.0 * t)


_FACE_MESH_POINTS = 468  # of the 478 face points: the mesh, not the 10 irises (absent without refinement)


def _face_touch(src_hand: np.ndarray, src_face: np.ndarray, unit: float, prop: BodyProportions) -> tuple[float, int, int]:
    """(weight in [0, 1], hand point, face point): how fully a source hand (21, 2+) counts as at the
    face (1 within ``face_contact_near`` face units of the face mesh, fading out by
    ``face_contact_far``), its point nearest the face and the mesh point it is nearest. src_face:
    (478, 2+) source face points; unit: source pixels per face unit."""
    gaps = np.linalg.norm(src_hand[:, None, :2] - src_face[None, :_FACE_MESH_POINTS, :2], axis=-1) / unit
    k, f = np.unravel_index(int(np.argmin(gaps)), gaps.shape)
    return 1.0 - _smoothstep(float(gaps[k, f]), prop.face_contact_near, prop.face_contact_far), int(k), int(f)


def _rot(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def palm_length(hand: np.ndarray) -> float:
    """A rotation-robust hand size: mean 3-D length of wrist->index/middle/pinky knuckles.

    hand: (21, 3) points with z in the same units as x, y.
    """
    w = hand[layout.WRIST]
    return float(np.mean([np.linalg.norm(hand[k] - w) for k in (5, 9, 17)]) * 1.02)


def _has(conf: np.ndarray, *idx: int) -> bool:
    return all(conf[i] > 0 for i in idx)


def _hand_present(conf: np.ndarray, rows: slice) -> bool:
    """The shared hand rule (:func:`~signanon.landmarks.geometry.hand_present`) by the hand's rows."""
    return bool(geometry.hand_present(conf, geometry.HAND_ROWS.index(rows)))


def _face_present(conf: np.ndarray) -> bool:
    """The shared face rule (:func:`~signanon.landmarks.geometry.face_present`)."""
    return bool(geometry.face_present(conf))


def _wrist_source(p: np.ndarray, conf: np.ndarray, side: int) -> np.ndarray:
    """The forearm's end: the hand model's wrist when the hand is seen, else the pose wrist."""
    _, _, wrist, rows = _SIDES[side]
    if _hand_present(conf, rows):
        return p[rows.start]
    return p[wrist]


# ----------------------------------------------------------------------------------------------
# relaxed hand


def rest_arm(tilt: float, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit image directions ``(2,)`` of an arm hanging relaxed: (upper arm, forearm), the upper
    arm 9 degrees out from straight down, the forearm 4 degrees in, turned with the shoulder line.
    tilt: the shoulder line's angle (radians, right shoulder to left; 0 = level, as
    :meth:`Retargeter._shoulders` gives it); side: 0 left (the image's right), 1 right."""
    out = 1.0 if side == 0 else -1.0
    r = _rot(tilt)
    upper = r @ np.array([out * np.sin(np.radians(9)), np.cos(np.radians(9))])
    fore = r @ np.array([-out * np.sin(np.radians(4)), np.cos(np.radians(4))])
    return upper, fore


def relaxed_hand(wrist: np.ndarray, direction: np.ndarray, palm: float, side: int) -> np.ndarray:
    """A relaxed hand hanging from ``wrist``: (21, 3) float32 MediaPipe Hands points.

    wrist: (3,) position; direction: (2,) image direction from wrist towards the fingers;
    palm: palm length in pixels; side: 0 = signer's left hand, 1 = right. The hand is seen in
    three-quarter view, back of the hand towards the camera, thumb towards the body's midline.
    """
    # (across, along, depth) in palm lengths; across > 0 = thumb side.
    t = np.array(
        [
            (0.00, 0.00, 0.00),
            (0.20, 0.18, -0.10), (0.36, 0.42, -0.18), (0.44, 0.66, -0.24), (0.46, 0.86, -0.28),
            (0.24, 0.94, 0.00), (0.25, 1.30, -0.10), (0.24, 1.50, -0.20), (0.22, 1.66, -0.30),
            (0.06, 1.00, 0.02), (0.06, 1.38, -0.10), (0.05, 1.60, -0.22), (0.04, 1.77, -0.34),
            (-0.11, 0.95, 0.04), (-0.12, 1.29, -0.08), (-0.13, 1.50, -0.19), (-0.13, 1.66, -0.30),
            (-0.26, 0.86, 0.06), (-0.28, 1.12, -0.04), (-0.29, 1.28, -0.12), (-0.29, 1.42, -0.20),
        ]
    )
    t[:, 0] *= 0.75  # three-quarter view: the hand is turned, so it looks narrower
    d, _ = _unit(np.asarray(direction, np.float64))
    # across axis: perpendicular to d; pick the sign so the thumb points to the body's midline
    # (signer's left hand is on the image's right, so its thumb points to image-left).
    perp = np.array([-d[1], d[0]])
    if (perp[0] > 0) == (side == 0):
        perp = -perp
    xy = np.outer(t[:, 0], perp) + np.outer(t[:, 1], d)
    out = np.empty((21, 3))
    out[:, :2] = np.asarray(wrist[:2]) + xy * palm
    out[:, 2] = (wrist[2] if len(wrist) > 2 else 0.0) + t[:, 2] * palm
    return out.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# calibration


def _robust_high(values: list[float], fallback: float) -> float:
    if len(values) < 3:
        return fallback
    return float(np.percentile(values, 90))


def _calibrate(
    frames: Sequence[tuple[np.ndarray, np.ndarray]],
    width: int,
    height: int,
    prop: BodyProportions,
    picture: tuple[float, float, float, float] | None = None,
) -> Calibration:
    sw, centres = [], []
    bones: list[list[list[float]]] = [[[], []], [[], []]]
    palms: list[list[float]] = [[], []]
    face_units, head_offsets, eye_offsets = [], [], []
    for data, conf in frames:
        if not geometry.upright_body_present(conf, data):
            continue
        p = geometry.to_metric(data, width)
        ls, rs = p[layout.LEFT_SHOULDER, :2], p[layout.RIGHT_SHOULDER, :2]
        w = float(np.linalg.norm(ls - rs))
        if w < 1e-3:
            continue
        centre = (ls + rs) / 2
        sw.append(w)
        centres.append(centre)
        for side, (sh, el, wr, rows) in enumerate(_SIDES):
            if conf[el] > 0.5:
                bones[side][0].append(float(np.linalg.norm(p[el, :2] - p[sh, :2])))
                if conf[wr] > 0.5 or _hand_present(conf, rows):
                    end = _wrist_source(p, conf, side)
                    bones[side][1].append(float(np.linalg.norm(end[:2] - p[el, :2])))
            if _hand_present(conf, rows):
                palms[side].append(palm_length(p[rows]))
        if _face_present(conf):
            f = p[layout.FACE]
            fu = float(np.linalg.norm(f[EYE_OUTER[0]] - f[EYE_OUTER[1]]))
            if fu > 1e-3:
                face_units.append(fu)
                head_offsets.append((f[FACE_ANCHOR, :2] - centre) / w)
                if _has(conf, 2, 5):
                    eyes = (p[2, :2] + p[5, :2]) / 2
                    eye_offsets.append((f[FACE_ANCHOR, :2] - eyes) / fu)
    if not sw:
        raise NoPersonError("no person found: the body was not detected in any calibration frame")
    s = float(np.median(sw))
    refs = np.array(
        [
            [
                max(_robust_high(bones[side][0], prop.upper_arm * s), 0.8 * prop.upper_arm * s),
                max(_robust_high(bones[side][1], prop.forearm * s), 0.8 * prop.forearm * s),
            ]
            for side in (0, 1)
        ]
    )
    palm_all = palms[0] + palms[1]
    palm_default = float(np.median(palm_all)) if palm_all else prop.palm * s
    palm_refs = np.array([float(np.median(v)) if v else palm_default for v in palms])
    fu = float(np.median(face_units)) if face_units else prop.face_unit * s
    head = np.median(head_offsets, axis=0) if head_offsets else np.array([0.0, -prop.neck])
    eyes = np.median(eye_offsets, axis=0) if eye_offsets else np.array([0.0, 0.0])
    return Calibration(
        width=width,
        height=height,
        shoulder_width=s,
        shoulder_centre=np.median(centres, axis=0),
        bone_refs=refs,
        palm_refs=palm_refs,
        face_unit=fu,
        head_offset=head,
        eyes_to_anchor=eyes,
        picture=_checked_picture(picture, frames, width, height),
    )


def _checked_picture(
    picture: tuple[float, float, float, float] | None, frames: Sequence[tuple[np.ndarray, np.ndarray]], width: int, height: int,
) -> tuple[float, float, float, float] | None:
    """``picture`` where the middle of every face and hand MediaPipe found on ``frames`` lies
    inside it (give or take 5 % of the frame), else None: a signer seen over a "bar" is in front
    of a dark backdrop, not beside padding. Single points are not checked: a hand the picture's
    edge cuts has its hidden points guessed past it, and the pose's body points over a real bar
    are the pose model's guesses."""
    if picture is None:
        return None
    lo, hi = np.array(picture[:2]), np.array(picture[2:])
    tol = 0.05 * np.array([width, height])
    for data, conf in frames:
        for rows in (layout.FACE, layout.LEFT_HAND, layout.RIGHT_HAND):
            seen = conf[rows] > 0
            if seen.any():
                middle = data[rows][seen, :2].mean(axis=0)
                if (middle < lo - tol).any() or (middle > hi + tol).any():
                    return None
    return (float(picture[0]), float(picture[1]), float(picture[2]), float(picture[3]))


# ----------------------------------------------------------------------------------------------
# the retargeter


class Retargeter:
    """Maps one frame of landmarks to an :class:`AvatarPose` with the canonical proportions."""

    def __init__(
        self,
        calibration: Calibration,
        proportions: BodyProportions = BodyProportions(),
        scale: ScaleTracking = ScaleTracking(),
    ):
        self.calibration = calibration
        self.proportions = proportions
        self.scale = ScaleTracker(calibration, scale)  # frames must come in order

    @classmethod
    def calibrate(
        cls,
        frames: Sequence[tuple[np.ndarray, np.ndarray]],
        width: int,
        height: int,
        proportions: BodyProportions = BodyProportions(),
        scale: ScaleTracking = ScaleTracking(),
        picture: tuple[float, float, float, float] | None = None,
    ) -> "Retargeter":
        """Measure the signer on the first frames: each ``(data (586,3) float32, confidence (586,))``.
        ``picture``: the picture's box ``(x0, y0, x1, y1)`` px inside black bars, if the clip has
        them (:class:`~signanon.video.bars.BarFinder`).

        Frames with missing parts are fine; raises NoPersonError if no frame shows the shoulders.
        """
        return cls(_calibrate(frames, width, height, proportions, picture), proportions, scale)

    # -- public ---------------------------------------------------------------------------------

    @property
    def shoulder_width(self) -> float:
        """The avatar's shoulder width in output pixels."""
        return self.calibration.shoulder_width

    def __call__(self, data: np.ndarray, confidence: np.ndarray) -> AvatarPose | None:
        """The avatar for one frame; None when the frame has no body (no shoulders, or not head up).

        Frames must come in video order: the signer's size is tracked from frame to frame.
        """
        if not geometry.upright_body_present(confidence, data):
            return None
        p = geometry.to_metric(data, self.calibration.width)
        cal = self.calibration.scaled(self.scale(p, confidence))  # the signer's size now
        body = np.zeros((layout.N_BODY, 3))
        valid = np.zeros(layout.N_BODY, bool)
        centre, tilt = self._shoulders(p, body, valid, cal)
        anchor, face_scale, src_anchor = self._head(p, confidence, centre, tilt, cal)
        hands: list[np.ndarray | None] = [None, None]
        for side in (0, 1):
            hands[side] = self._arm(p, confidence, side, body, valid, (anchor, face_scale, src_anchor), cal, tilt)
        if hands[0] is not None and hands[1] is not None:
            self._keep_hand_gap(p, confidence, hands, body, valid, src_anchor, cal)
        self._keep_hands_in_frame(p, hands, body, valid, cal)
        self._hips(centre, tilt, body, valid, cal.shoulder_width)
        self._face_points(p, confidence, anchor, face_scale, src_anchor, body, valid, cal)
        body[:, 2] -= body[[layout.LEFT_SHOULDER, layout.RIGHT_SHOULDER], 2].mean()
        return AvatarPose(
            body=body.astype(np.float32),
            body_valid=valid,
            left_hand=None if hands[0] is None else hands[0].astype(np.float32),
            right_hand=None if hands[1] is None else hands[1].astype(np.float32),
            face_anchor=anchor.astype(np.float32),
            face_scale=float(face_scale),
            hand_scale=self._hand_boost(cal.shoulder_width),
        )

    def neutral_pose(self) -> AvatarPose:
        """Arms relaxed down, relaxed hands, the face at its rest place (``face`` is None)."""
        cal, prop = self.calibration, self.proportions
        s = cal.shoulder_width
        boost = self._hand_boost(s)
        c = np.asarray(cal.shoulder_centre, np.float64)
        body = np.zeros((layout.N_BODY, 3))
        valid = np.zeros(layout.N_BODY, bool)
        hands = []
        for side, (sh, el, wr, _) in enumerate(_SIDES):
            sign = 1.0 if side == 0 else -1.0  # signer's left is the image's right
            body[sh, :2] = c + [sign * s / 2, 0.0]
            up, fo = rest_arm(0.0, side)
            upper, fore = self._arm_lengths(cal, side)
            body[el, :2] = body[sh, :2] + up * upper
            body[wr, :2] = body[el, :2] + fo * fore
            body[el, 2], body[wr, 2] = -0.05 * s, -0.1 * s
            valid[[sh, el, wr]] = True
            hand = relaxed_hand(body[wr], fo, prop.palm * s * boost, side)
            hands.append(hand)
            self._pose_hand_points(hand, side, body, valid)
        self._hips(c, 0.0, body, valid, s)
        face_scale, raise_by = self._face_size(s)
        anchor = c + self._neck_direction() * prop.neck * s + np.array([0.0, -raise_by])
        self._rest_face_points(anchor, face_scale, body, valid)
        return AvatarPose(
            body=body.astype(np.float32),
            body_valid=valid,
            left_hand=hands[0],
            right_hand=hands[1],
            face_anchor=anchor.astype(np.float32),
            face_scale=float(face_scale),
            hand_scale=boost,
        )

    # -- parts ----------------------------------------------------------------------------------

    def _hand_boost(self, shoulder_width: float) -> float:
        """Factor (>= 1) on the canonical hand size for an avatar ``shoulder_width`` output px wide:
        the signer's median palm over the canonical palm for their shoulder width, clipped to
        [1, ``max_hand_boost``], times what brings a palm under ``min_palm_px`` up to it (at most
        ``max_small_hand_boost``)."""
        cal, prop = self.calibration, self.proportions
        ratio = float(np.median(cal.palm_refs)) / max(prop.palm * cal.shoulder_width, 1e-6)
        boost = float(np.clip(ratio, 1.0, prop.max_hand_boost))
        palm_px = prop.palm * shoulder_width * boost
        return boost * float(np.clip(prop.min_palm_px / max(palm_px, 1e-6), 1.0, prop.max_small_hand_boost))

    def _face_size(self, shoulder_width: float) -> tuple[float, float]:
        """(face_scale, raise_by) for an avatar ``shoulder_width`` output px wide: the canonical face
        unit, grown towards ``min_face_px`` (at most ``max_small_face_boost`` times), and how far
        (px) its anchor rises so that the neck's top (NECK_BELOW_ANCHOR face units below it, as drawn)
        stays put."""
        prop = self.proportions
        base = prop.face_unit * shoulder_width
        boost = float(np.clip(prop.min_face_px / max(base, 1e-6), 1.0, prop.max_small_face_boost))
        return base * boost, (boost - 1.0) * NECK_BELOW_ANCHOR * base

    def _arm_lengths(self, cal: Calibration, side: int) -> tuple[float, float]:
        """(upper arm, forearm) of ``side``'s arm drawn unforeshortened, in output px: the signer's
        (:attr:`Calibration.bone_refs`) or, without :attr:`BodyProportions.signer_arms`, the
        canonical ratios of the shoulder width."""
        prop = self.proportions
        if prop.signer_arms:
            return float(cal.bone_refs[side][0]), float(cal.bone_refs[side][1])
        return prop.upper_arm * cal.shoulder_width, prop.forearm * cal.shoulder_width

    def _fore(self, length: float, ref: float) -> float:
        prop = self.proportions
        return float(np.clip(length / max(ref, 1e-6), prop.min_foreshortening, prop.max_foreshortening))

    def _shoulders(
        self, p: np.ndarray, body: np.ndarray, valid: np.ndarray, cal: Calibration
    ) -> tuple[np.ndarray, float]:
        s = cal.shoulder_width
        ls, rs = p[layout.LEFT_SHOULDER], p[layout.RIGHT_SHOULDER]
        centre = (ls + rs) / 2
        d, n = _unit(ls[:2] - rs[:2])
        if n == 0.0:
            d = np.array([1.0, 0.0])
        half = 0.5 * s * float(np.clip(n / s, 0.6, 1.1))
        body[layout.LEFT_SHOULDER, :2] = centre[:2] + d * half
        body[layout.RIGHT_SHOULDER, :2] = centre[:2] - d * half
        body[layout.LEFT_SHOULDER, 2] = ls[2]
        body[layout.RIGHT_SHOULDER, 2] = rs[2]
        valid[[layout.LEFT_SHOULDER, layout.RIGHT_SHOULDER]] = True
        tilt = float(np.arctan2(d[1], d[0]))
        return centre, tilt

    def _head(
        self, p: np.ndarray, conf: np.ndarray, centre: np.ndarray, tilt: float, cal: Calibration
    ) -> tuple[np.ndarray, float, np.ndarray | None]:
        """(face_anchor (2,), face_scale, the source's point 168 or None)."""
        prop = self.proportions
        s = cal.shoulder_width
        src = None
        if _face_present(conf):
            src = p[layout.FACE.start + FACE_ANCHOR, :2]
        elif _has(conf, 2, 5):
            src = (p[2, :2] + p[5, :2]) / 2 + cal.eyes_to_anchor * cal.face_unit
        face_scale, raise_by = self._face_size(s)
        lift = _rot(tilt) @ np.array([0.0, -raise_by])
        if src is None:  # the canonical neck, square to the shoulders
            return centre[:2] + _rot(tilt) @ np.array([0.0, -prop.neck * s]) + lift, face_scale, None
        # rest place: the canonical neck, upright or leaning with the signer's head (a camera held
        # crooked: BodyProportions.lean_follow); the signer's shoulder tilt and head movement reach
        # the head through ``motion``, the signer's own head offset minus their median one
        rest = self._neck_direction() * prop.neck * s
        motion = (src - centre[:2]) / s - cal.head_offset
        anchor = centre[:2] + rest + motion * s + lift
        return self._keep_face_in_frame(p, conf, anchor, face_scale), face_scale, src

    def _neck_direction(self) -> np.ndarray:
        """(2,) unit vector from the shoulders' centre up the avatar's neck: upright, or leaning
        with the signer's head as :attr:`BodyProportions.lean_follow` says (clipped to the upright
        body rule's :data:`~signanon.landmarks.geometry.UPRIGHT_SHOULDER_TILT`)."""
        follow = self.proportions.lean_follow
        offset = self.calibration.head_offset
        lean = float(np.degrees(np.arctan2(offset[0], -offset[1])))  # > 0: the head towards the image's right
        if follow is None or abs(lean) <= follow[0]:
            return np.array([0.0, -1.0])
        lean = float(np.clip(lean, -geometry.UPRIGHT_SHOULDER_TILT, geometry.UPRIGHT_SHOULDER_TILT))
        lean = np.radians(lean * _smoothstep(abs(lean), follow[0], follow[1]))
        return np.array([np.sin(lean), -np.cos(lean)])

    def _keep_face_in_frame(self, p: np.ndarray, conf: np.ndarray, anchor: np.ndarray, face_scale: float) -> np.ndarray:
        """``anchor`` (2,) output px, moved down until the avatar's brows (``brow_height`` face units
        above it) are as far below the top edge as the signer's upper brows, or ``face_edge_margin``
        face units, whichever is less; never moved up (see :class:`BodyProportions`)."""
        prop = self.proportions
        if prop.face_edge_margin is None or not _face_present(conf):
            return anchor
        room = float(p[_BROW_ROWS, 1].min())  # the signer's brows to the top edge
        want = min(room, prop.face_edge_margin * face_scale)
        have = float(anchor[1]) - prop.brow_height * face_scale
        return anchor + np.array([0.0, max(want - have, 0.0)])

    def _arm(
        self,
        p: np.ndarray,
        conf: np.ndarray,
        side: int,
        body: np.ndarray,
        valid: np.ndarray,
        head: tuple[np.ndarray, float, np.ndarray | None],
        cal: Calibration,
        tilt: float,
    ) -> np.ndarray | None:
        """Place one arm in ``body``; the hand (21, 3) output px, or None when the hand is unseen.

        head: (face anchor (2,), face scale, the source's point 168 or None) from :meth:`_head`;
        tilt: the shoulder line's angle from :meth:`_shoulders`.
        """
        prop = self.proportions
        anchor, face_scale, src_anchor = head
        s = cal.shoulder_width
        sh, el, wr, rows = _SIDES[side]
        ua_ref, fa_ref = cal.bone_refs[side]
        sh_out = body[sh, :2]
        d1, n1 = _unit(p[el, :2] - p[sh, :2])
        src_wrist = _wrist_source(p, conf, side)
        d2, n2 = _unit(src_wrist[:2] - p[el, :2])
        trust = self._arm_trust(p, conf, side, cal)
        if trust < 1.0:  # a guessed arm: towards the arm at rest, at full length
            r1, r2 = rest_arm(tilt, side)
            d1, _ = _unit(trust * d1 + (1.0 - trust) * r1)
            d2, _ = _unit(trust * d2 + (1.0 - trust) * r2)
            n1, n2 = trust * n1 + (1.0 - trust) * ua_ref, trust * n2 + (1.0 - trust) * fa_ref
        upper, fore = self._arm_lengths(cal, side)
        elbow = sh_out + d1 * upper * self._fore(n1, ua_ref)
        wrist = elbow + d2 * fore * self._fore(n2, fa_ref)
        body[el] = (*elbow, p[el, 2])
        body[wr] = (*wrist, p[wr, 2])
        valid[[el, wr]] = True
        if not _hand_present(conf, rows):
            self._pose_hand_points_from_source(p, side, body, valid, cal)
            return None
        src_hand = p[rows]
        palm_now = palm_length(src_hand)
        depth = float(np.clip(palm_now / cal.palm_refs[side], *prop.hand_depth_range))
        scale = prop.palm * s * self._hand_boost(s) * depth / max(palm_now, 1e-6)
        hand = (src_hand - src_hand[0]) * scale
        hand[:, :2] += wrist
        hand[:, 2] += p[wr, 2]
        if src_anchor is not None and _face_present(conf):
            shift = self._face_contact_shift(p, src_hand, hand, anchor, face_scale, src_anchor, cal)
            if shift is not None:
                hand[:, :2] += shift
                body[el, :2] = elbow + 0.5 * shift  # the elbow follows half-way: no flips
                body[wr, :2] = wrist + shift
        self._pose_hand_points(hand, side, body, valid)
        return hand

    def _arm_trust(self, p: np.ndarray, conf: np.ndarray, side: int, cal: Calibration) -> float:
        """How far ``side``'s arm follows the pose model (1) rather than hanging at rest (0): 1 where
        its hand is seen; else the lesser of the edge rule's trust (by the wrist's visibility where
        the pose elbow or wrist lies past the frame's edge, ``BodyProportions.unseen_arm_rest``)
        and the elbow's visibility's (``unseen_elbow_rest``)."""
        prop = self.proportions
        _, el, wr, rows = _SIDES[side]
        trust = 1.0
        if _hand_present(conf, rows):
            return trust
        if prop.unseen_arm_rest is not None:
            x, y = p[[el, wr], 0], p[[el, wr], 1]
            past = float(np.max([-x, x - cal.width, -y, y - cal.height, np.zeros(2)])) / cal.shoulder_width
            guessed = _smoothstep(past, 0.0, prop.unseen_arm_fade) if prop.unseen_arm_fade > 0 else float(past > 0)
            trust = 1.0 - guessed * (1.0 - _smoothstep(float(conf[wr]), *prop.unseen_arm_rest))
        if prop.unseen_elbow_rest is not None:
            trust = min(trust, _smoothstep(float(conf[el]), *prop.unseen_elbow_rest))
        return trust

    def keep_face_contact(self, pose: AvatarPose, data: np.ndarray, confidence: np.ndarray) -> AvatarPose:
        """``pose`` with each hand near the signer's face moved to the same place on the avatar's
        drawn face: the hand point nearest the face keeps its offset, in face units, from the face
        point nearest it (the chin, a cheek), fully within ``face_contact_near`` face units and
        fading out by ``face_contact_far``, its wrist and half its elbow moving with it.

        The arm places such a hand relative to the nose bridge (:meth:`_face_contact_shift`), which
        keeps a contact only where the avatar's face has the signer's proportions below it: ASL
        HOUSE's hands at the chin (0.85-0.88 face widths below the bridge, the avatar's chin 0.79-0.82
        on its shorter face) read 0.11-0.17 face widths further from the face than the signer's.
        data, confidence: the source frame ((586, 3) pixels, (586,)); ``pose.face`` must be drawn
        (output pixels). Returns a new pose (the same one where nothing is near the face)."""
        if pose.face is None or not _face_present(confidence):
            return pose
        p = geometry.to_metric(data, self.calibration.width)
        src_face = p[layout.FACE]
        unit = float(np.linalg.norm(src_face[EYE_OUTER[0]] - src_face[EYE_OUTER[1]]))
        if unit < 1e-6:
            return pose
        body, hands = pose.body.copy(), [pose.left_hand, pose.right_hand]
        valid = pose.body_valid.copy()
        for side in (0, 1):
            rows = _SIDES[side][3]
            if hands[side] is None or not _hand_present(confidence, rows):
                continue
            w, k, f = _face_touch(p[rows], src_face, unit, self.proportions)
            if w <= 0.0:
                continue
            hand = np.array(hands[side], np.float64)
            target = pose.face[f, :2] + (p[rows][k, :2] - src_face[f, :2]) / unit * pose.face_scale
            self._move_hand(hand, side, w * (target - hand[k, :2]), body, valid)
            hands[side] = hand.astype(np.float32)
        return replace(pose, body=body.astype(np.float32), body_valid=valid, left_hand=hands[0], right_hand=hands[1])

    def _face_closeness(self, p: np.ndarray, src_hand: np.ndarray, cal: Calibration) -> tuple[float, int]:
        """(weight in [0, 1], hand point): how fully a source hand (21, 3) is placed face-relative
        (1 within face_contact_near face units of the face mesh), and its point nearest the face."""
        w, k, _ = _face_touch(src_hand, p[layout.FACE], cal.face_unit, self.proportions)
        return w, k

    def _face_contact_shift(
        self,
        p: np.ndarray,
        src_hand: np.ndarray,
        hand: np.ndarray,
        anchor: np.ndarray,
        face_scale: float,
        src_anchor: np.ndarray,
        cal: Calibration,
    ) -> np.ndarray | None:
        """The 2-D shift that keeps a hand near the face at its face-relative place, or None."""
        w, k = self._face_closeness(p, src_hand, cal)
        if w <= 0.0:
            return None
        target = anchor + (src_hand[k, :2] - src_anchor) / cal.face_unit * face_scale
        return w * (target - hand[k, :2])

    def _keep_hand_gap(
        self,
        p: np.ndarray,
        conf: np.ndarray,
        hands: list[np.ndarray],
        body: np.ndarray,
        valid: np.ndarray,
        src_anchor: np.ndarray | None,
        cal: Calibration,
    ) -> None:
        """Move two nearby hands (each (21, 3) output px, changed in place with their wrists, half
        their elbows and their pose points) so that the offset between their nearest points is
        the source's in palm units. A hand held at the face moves only by the share it is not
        face-relative, so face contacts stay where they are."""
        prop = self.proportions
        src = [p[_SIDES[side][3]] for side in (0, 1)]
        src_palm = 0.5 * (palm_length(src[0]) + palm_length(src[1]))
        out_palm = 0.5 * (palm_length(hands[0]) + palm_length(hands[1]))
        gaps = np.linalg.norm(src[0][:, None, :2] - src[1][None, :, :2], axis=-1)  # (21, 21)
        i, j = np.unravel_index(int(np.argmin(gaps)), gaps.shape)
        w = 1.0 - _smoothstep(float(gaps[i, j]) / max(src_palm, 1e-6), prop.hand_contact_near, prop.hand_contact_far)
        if w <= 0.0:
            return
        wanted = (src[1][j, :2] - src[0][i, :2]) / max(src_palm, 1e-6) * out_palm
        delta = w * (wanted - (hands[1][j, :2] - hands[0][i, :2]))
        at_face = src_anchor is not None and _face_present(conf)
        free = [1.0 - (self._face_closeness(p, src[side], cal)[0] if at_face else 0.0) for side in (0, 1)]
        if free[0] + free[1] < 1e-6:
            return
        for side, share in ((0, -free[0]), (1, free[1])):
            self._move_hand(hands[side], side, share / (free[0] + free[1]) * delta, body, valid)

    def _keep_hands_in_frame(
        self, p: np.ndarray, hands: list[np.ndarray | None], body: np.ndarray, valid: np.ndarray, cal: Calibration,
    ) -> None:
        """Move each hand (21, 3) output px, changed in place with its wrist, half its elbow and its
        pose points, back inside the frame as far as the signer's hand is inside it, up to
        ``hand_edge_margin`` palms from each edge; where an edge cuts the signer's hand, until the
        avatar's reaches as far into the frame as hers (``hand_edge_reach``; see
        :class:`BodyProportions`). Two hands whose nearest points are within ``hand_contact_far``
        palms move as one, keeping their offset."""
        margin = self.proportions.hand_edge_margin
        present = [side for side in (0, 1) if hands[side] is not None]
        if margin is None or not present:
            return
        src = {side: p[_SIDES[side][3]][:, :2] for side in present}
        out = {side: np.asarray(hands[side])[:, :2] for side in present}
        groups = [present]
        if len(present) == 2:
            palm = 0.5 * (palm_length(hands[0]) + palm_length(hands[1]))
            gap = float(np.linalg.norm(out[0][:, None] - out[1][None], axis=-1).min())
            if gap > self.proportions.hand_contact_far * palm:
                groups = [[0], [1]]
        lo, hi = np.zeros(2), np.array([cal.width, cal.height], np.float64)  # the frame's edges
        if cal.picture is not None and self.proportions.hands_in_picture:
            lo, hi = np.array(cal.picture[:2], np.float64), np.array(cal.picture[2:], np.float64)
        for group in groups:
            s_pts = np.concatenate([src[side] for side in group])
            o_pts = np.concatenate([out[side] for side in group])
            cap = margin * max(palm_length(hands[side]) for side in group)
            # room left to the low and high edge on each axis, signer's and avatar's
            want_lo, want_hi = np.minimum(s_pts.min(axis=0) - lo, cap), np.minimum(hi - s_pts.max(axis=0), cap)
            have_lo, have_hi = o_pts.min(axis=0) - lo, hi - o_pts.max(axis=0)
            up_lo, up_hi = want_lo - have_lo, want_hi - have_hi  # px to move away from each edge
            if self.proportions.hand_edge_reach:
                # a signer's hand the edge cuts: the avatar's inner end as far in as hers
                up_lo = np.where(s_pts.min(axis=0) < lo, np.maximum(up_lo, s_pts.max(axis=0) - o_pts.max(axis=0)), up_lo)
                up_hi = np.where(s_pts.max(axis=0) > hi, np.maximum(up_hi, o_pts.min(axis=0) - s_pts.min(axis=0)), up_hi)
            shift = np.maximum(up_lo, 0.0) - np.maximum(up_hi, 0.0)
            if not shift.any():
                continue
            for side in group:
                self._move_hand(hands[side], side, shift, body, valid)

    def _hips(self, centre: np.ndarray, tilt: float, body: np.ndarray, valid: np.ndarray, s: float) -> None:
        prop = self.proportions
        r = _rot(tilt)
        for idx, sign in ((layout.LEFT_HIP, 1.0), (layout.RIGHT_HIP, -1.0)):
            body[idx, :2] = centre[:2] + r @ np.array([sign * prop.hip_width / 2, prop.torso]) * s
            body[idx, 2] = 0.0
            valid[idx] = True

    def _face_points(
        self,
        p: np.ndarray,
        conf: np.ndarray,
        anchor: np.ndarray,
        face_scale: float,
        src_anchor: np.ndarray | None,
        body: np.ndarray,
        valid: np.ndarray,
        cal: Calibration,
    ) -> None:
        """Pose points 0-10 (nose, eyes, ears, mouth) placed relative to the face anchor."""
        if src_anchor is None:
            self._rest_face_points(anchor, face_scale, body, valid)
            return
        k = face_scale / cal.face_unit
        for i in BODY_FACE_POINTS:
            if conf[i] > 0:
                body[i, :2] = anchor + (p[i, :2] - src_anchor) * k
                body[i, 2] = (p[i, 2] - p[0, 2]) * k
                valid[i] = True

    @staticmethod
    def _rest_face_points(anchor: np.ndarray, face_scale: float, body: np.ndarray, valid: np.ndarray) -> None:
        # typical positions in face units relative to point 168 (x towards the image's right)
        rest = {0: (0.0, 0.55), 1: (0.12, 0.02), 2: (0.22, 0.02), 3: (0.34, 0.02), 4: (-0.12, 0.02),
                5: (-0.22, 0.02), 6: (-0.34, 0.02), 7: (0.58, 0.25), 8: (-0.58, 0.25),
                9: (0.13, 0.95), 10: (-0.13, 0.95)}
        for i, (x, y) in rest.items():
            body[i, :2] = anchor + np.array([x, y]) * face_scale
            body[i, 2] = 0.0
            valid[i] = True

    @classmethod
    def _move_hand(cls, hand: np.ndarray, side: int, shift: np.ndarray, body: np.ndarray, valid: np.ndarray) -> None:
        """Move ``hand`` (21, 3) output px by the 2-D ``shift`` in place, its wrist with it and its
        elbow half-way (so the arm does not flip), and set its pose points."""
        _, el, wr, _ = _SIDES[side]
        hand[:, :2] += shift
        body[wr, :2] += shift
        body[el, :2] += 0.5 * shift
        cls._pose_hand_points(hand, side, body, valid)

    @staticmethod
    def _pose_hand_points(hand: np.ndarray, side: int, body: np.ndarray, valid: np.ndarray) -> None:
        for pose_idx, hand_idx in zip(BODY_HAND_POINTS[side], HAND_POINTS_IN_BODY):
            body[pose_idx] = hand[hand_idx]
            valid[pose_idx] = True

    def _pose_hand_points_from_source(
        self, p: np.ndarray, side: int, body: np.ndarray, valid: np.ndarray, cal: Calibration
    ) -> None:
        """Pose pinky/index/thumb when the hand model saw nothing: the source's, moved with the wrist."""
        _, _, wr, _ = _SIDES[side]
        s = cal.shoulder_width
        k = self.proportions.palm * s * self._hand_boost(s) / max(cal.palm_refs[side], 1e-6)
        for pose_idx in BODY_HAND_POINTS[side]:
            body[pose_idx] = body[wr] + (p[pose_idx] - p[wr]) * k
            valid[pose_idx] = True
