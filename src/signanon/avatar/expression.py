"""Expression transfer: the canonical face moved by the signer's expression and head pose.

The signer's own face geometry identifies them, so it is never drawn. Instead the neutral, frontal
canonical mesh (:mod:`.canonical`) is deformed by the signer's **expression** (their mesh minus
their own neutral mesh, after removing head pose and expressed relative to their own face size) and
turned by their **head pose**, so brows, blinks, gaze, mouth shapes, nods and tilts survive while the
face shape does not.

Coordinates
-----------
*Face units*: see :mod:`.canonical` (outer eye corners 1 apart, origin at point 168, x right, y
down, z away from the viewer). Input: mesh point ``i`` is row ``33 + i`` of the shared ``(586, 3)``
frame array; x, y are image pixels and z is MediaPipe's z (:func:`~signanon.landmarks.geometry.to_metric`
makes it pixels). Output: ``(478, 3)`` float32 in output pixels (x right, y down), z a depth in the
same units relative to point 168, smaller = closer.

Presence: a frame's face is used when :func:`~signanon.landmarks.geometry.face_present` says so
(all 468 mesh points present).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..landmarks.geometry import Similarity, face_present, fit_stable, inter_ocular, to_metric
from ..landmarks.regions import (
    BROW_LOWER_L, BROW_LOWER_R, BROW_UPPER_L, BROW_UPPER_R, EYE_INNER_L, EYE_INNER_R, EYE_OUTER_L,
    EYE_OUTER_R, IRIS_L, IRIS_R, LID_LOWER_L, LID_LOWER_R, LID_UPPER_L, LID_UPPER_R, LIP_INNER_LOWER,
    INNER_LIP_CENTRE, LIP_INNER_UPPER, LIP_OUTER_LOWER, LIP_OUTER_UPPER, NOSE_BRIDGE,
)  # fmt: skip
from .canonical import CanonicalFace, load_canonical_face


def _rows(idx: Sequence[int]) -> np.ndarray:
    return np.asarray(idx, np.intp)


def _face_present(confidence: np.ndarray | None) -> bool:
    """The shared face rule (:func:`face_present`) on the face part's (478,) confidence."""
    return confidence is not None and bool(face_present(confidence))


def _normalise(metric: np.ndarray, pose: Similarity) -> np.ndarray:
    """Undo head pose and size: metric (478, 3) -> (478, 3) in the reference's face units."""
    s, rot, t = pose
    return (metric - t) @ rot / s


@dataclass(frozen=True)
class FaceConfig:
    """How much of the signer's expression reaches the canonical face.

    expression_gain: factor on every expression offset (brows, lips, jaw, cheeks); 1 = as signed.
    mouth_gain:      factor on the lips' vertical (and depth) offsets, fading out over
                     ``region_falloff`` (jaw, cheeks); mouth_width_gain on their sideways offsets;
                     brow_gain likewise around the brows; furrow_gain on the brows' sideways
                     offsets (the inner brows drawn together) on top of brow_gain; how far
                     MediaPipe follows a drawn furrow depends on the face, so the furrow choice
                     (:mod:`.furrow_choice`) may draw it at another gain per signer.
                     Set so that MediaPipe, reading the drawn face back, sees the signer's
                     movement at about its own strength (``benchmarks/diag_face_gain.py`` splits the
                     chain). With the neutral mouth at rest (``rest_mouth_quantile``) a drawn mouth
                     reads back at 1.0-1.4 of its drawn opening (DGS ZUG's mouthing 1.42), hence a
                     mouth_gain under 1: on 12 whole clips' moving mouths it reads 0.88-1.31. Before
                     the rest neutral, 1.7 made up for closures the median neutral had cut.
                     mouth_width_gain 1.25 (was 1.1): at 1.1 the moving mouth widths of 16 whole
                     clips read back at 0.49-1.16 of the signer's (lowest: the dark-skin palette's
                     pale lips, then small faces: ASL HOUSE 0.67); at 1.25, guard off, ASL
                     HOUSE 0.76, the widest a talking face's 1.31. 1.18 since the mouth is drawn
                     narrower (:data:`~.canonical.MOUTH_WIDTH`): a narrower mouth's width
                     changes read back larger (at 0.54 wide and 1.25, NGT's dark copy 0.86 ->
                     1.70 on the bench; at 0.54 and 1.1, 11 clips, guard off, 0.75-1.36).
    eye_gain:        factor on the change of the eye opening (ratio to the neutral opening - 1),
                     after :func:`eye_size`'s scaling.
    region_falloff:  face units: the Gaussian width of the mouth and brow regions' edges.
    gaze_gain:       factor on the iris offset from its neutral place in the eye.
    max_eye_opening: cap on the eye-opening ratio (current / neutral) for wide-open eyes.
    max_eye_size:    cap on :func:`eye_size`, the factor on the opening ratio's change that makes
                     the drawn lids move as far as the signer's in inter-ocular units.
    max_offset:      cap (face units) on any point's expression offset: a hand over the face can
                     throw MediaPipe's mesh far off; a yawn moves the chin ~0.4.
    min_brow_gap:    floor on the drawn gap between the inner brow ends, as a share of the
                     canonical face's (0.28 face units): as much of brow_gain x furrow_gain's extra
                     is taken back as keeps a hard frown above it (the furrow choice may draw the
                     furrow at 4 times the signer's, which would draw the brows across each other).
                     A signer whose own brows come nearer keeps their own gap.
    max_mouth_opening: cap (face units) on the drawn inner-lip gap that a mouth_gain above 1 may
                     reach: past ~0.55 the canonical mouth no longer reads as a mouth (a 0.58 yawn
                     drawn at gain 1.6 read back at 0.11, at gain 1 at 0.58). The signer's own
                     opening (gain 1) is never cut.
    min_calibration_frames: fewer usable face frames than this -> no expression is transferred
                     (head pose only), since a neutral estimated from so few frames is unreliable.
    rest_mouth_quantile: the neutral's mouth (lips, fading out over ``region_falloff``) is the
                     median of the calibration frames whose inner-lip gap is within this quantile
                     of their gaps: the mouth at rest. The plain median of a signer who mouths or
                     talks throughout is a parted mouth, and every closure below it was drawn as
                     lips pressed together (talking_woman's mouth reached the drawing at 0.70 of
                     its movement, dgs_zug's at 1.02). 1 = the plain median.
    """

    expression_gain: float = 1.0
    mouth_gain: float = 0.9
    mouth_width_gain: float = 1.18
    brow_gain: float = 1.3
    furrow_gain: float = 1.6
    eye_gain: float = 1.15
    region_falloff: float = 0.12
    gaze_gain: float = 1.0
    max_eye_opening: float = 1.6
    max_eye_size: float = 1.5
    max_offset: float = 0.6
    max_mouth_opening: float = 0.55
    min_brow_gap: float = 0.5
    min_calibration_frames: int = 3
    rest_mouth_quantile: float = 0.15

    def __post_init__(self) -> None:
        if not 0.0 < self.rest_mouth_quantile <= 1.0:
            raise InputError(f"rest_mouth_quantile must be in (0, 1], got {self.rest_mouth_quantile!r}")


def _pair_opening(mesh: np.ndarray, upper: Sequence[int], lower: Sequence[int]) -> np.ndarray:
    """(K,) vertical gaps lower - upper (face units, y down) of the K lid/lip point pairs."""
    return mesh[_rows(lower), 1] - mesh[_rows(upper), 1]


def _iris_offset(mesh: np.ndarray, iris: Sequence[int], outer: int, inner: int) -> np.ndarray:
    """(2,) iris centre relative to the eye-corner midpoint, in units of the eye width (x, y)."""
    mid = 0.5 * (mesh[outer, :2] + mesh[inner, :2])
    width = np.linalg.norm(mesh[outer, :2] - mesh[inner, :2]) + 1e-9
    return (mesh[iris[0], :2] - mid) / width


_MOUTH = tuple(sorted(set(LIP_OUTER_UPPER + LIP_OUTER_LOWER + LIP_INNER_UPPER + LIP_INNER_LOWER)))
_BROWS = tuple(sorted(set(BROW_UPPER_R + BROW_LOWER_R + BROW_UPPER_L + BROW_LOWER_L)))


def eye_size(neutral: np.ndarray, canonical: np.ndarray, upper: Sequence[int], lower: Sequence[int]) -> float:
    """The signer's neutral eye opening over the canonical face's, each in its own inter-ocular
    distances (outer eye corners); neutral, canonical: (478, 3) face units. 0.89 for ASL
    DIFFERENT's signer, 1.34 for DGS ZUG's: a change of the opening ratio is that much larger
    on the signer's eye than on the drawn one."""

    def opening(mesh: np.ndarray) -> float:
        m = np.asarray(mesh, np.float64)
        return float(np.median(_pair_opening(m, upper, lower))) / inter_ocular(m)

    return opening(neutral) / max(opening(canonical), 1e-9)


def region_weights(points: np.ndarray, region: Sequence[int], falloff: float) -> np.ndarray:
    """(N,) weights in [0, 1]: 1 on the region's points and inside their hull's reach, falling off
    as a Gaussian of the distance (face units) to the nearest region point; points (N, 3)."""
    p = np.asarray(points, np.float64)
    d = np.linalg.norm(p[:, None, :2] - p[None, _rows(region), :2], axis=-1).min(axis=1)
    return np.exp(-0.5 * (d / max(falloff, 1e-6)) ** 2)


def offset_gains(canonical: np.ndarray, config: "FaceConfig") -> np.ndarray:
    """(N, 3) per-point, per-axis factors on the expression offsets of the canonical face (N, 3)."""
    mouth = region_weights(canonical, _MOUTH, config.region_falloff)
    brows = region_weights(canonical, _BROWS, config.region_falloff)
    c = config
    along = 1.0 + (c.mouth_gain - 1.0) * mouth + (c.brow_gain - 1.0) * brows
    across = 1.0 + (c.mouth_width_gain - 1.0) * mouth + (c.brow_gain * c.furrow_gain - 1.0) * brows
    return c.expression_gain * np.stack([across, along, along], axis=1)


def _rest_mouth(median: np.ndarray, normed: np.ndarray, canonical: CanonicalFace, config: FaceConfig) -> np.ndarray:
    """The neutral (478, 3) with its mouth region taken from the frames whose mouth is most closed.

    median: (478, 3) per-point median of normed, (F, 478, 3) pose- and size-normalised meshes.
    """
    upper, lower = INNER_LIP_CENTRE
    gaps = normed[:, lower, 1] - normed[:, upper, 1]
    rest = normed[gaps <= np.quantile(gaps, config.rest_mouth_quantile)]
    weights = region_weights(canonical.points, _MOUTH, config.region_falloff)[:, None]
    return median + weights * (np.median(rest, axis=0) - median)


class FaceAnimator:
    """Moves the canonical face with the signer's expression and head pose (see module doc).

    Build with :meth:`calibrate` on the first frames of a video; then call once per frame.
    """

    def __init__(
        self,
        canonical: CanonicalFace,
        neutral: np.ndarray | None,
        width: int,
        height: int,
        config: FaceConfig = FaceConfig(),
    ):
        self.canonical = canonical
        self.neutral = neutral  # (478, 3) float64 signer's neutral in face units, or None
        self.width = int(width)
        self.height = int(height)
        self.config = config
        self.gains = offset_gains(canonical.points, config)  # (478, 3) factors on the offsets
        # (478,) where mouth_gain acts, in [0, 1]
        self.mouth_weights = region_weights(canonical.points, _MOUTH, config.region_falloff)
        self.brow_weights = region_weights(canonical.points, _BROWS, config.region_falloff)  # where the furrow gain acts
        # per eye (its upper lid's first point): eye_size clipped as _transfer_lids uses it
        self.eye_sizes = {} if neutral is None else {
            upper[0]: float(np.clip(eye_size(neutral, canonical.points, upper, lower),
                                    1.0 / max(config.eye_gain, 1.0), config.max_eye_size))
            for upper, lower in ((LID_UPPER_R, LID_LOWER_R), (LID_UPPER_L, LID_LOWER_L))
        }

    @classmethod
    def calibrate(
        cls,
        faces: Sequence[tuple[np.ndarray, np.ndarray]],
        width: int,
        height: int,
        config: FaceConfig = FaceConfig(),
    ) -> "FaceAnimator":
        """Estimate the signer's neutral face from some frames (the first ~90 are plenty).

        faces: per frame ``(points, confidence)``: (478, 3) float (rows 33:511 of the frame array:
        x, y px, MediaPipe z) and (478,) float, 0 = missing. Frames without a face are skipped.
        width, height: the source frame size in pixels.
        The neutral is the per-point median of the pose- and size-normalised meshes (fitted once to
        the canonical face, then again to the first median), so a few expressive frames do not move
        it.
        """
        canonical = load_canonical_face()
        metrics = [
            to_metric(p, width) for p, c in faces if p is not None and _face_present(c)
        ]
        if len(metrics) < max(1, config.min_calibration_frames):
            return cls(canonical, None, width, height, config)
        reference = canonical.points.astype(np.float64)
        for _ in range(2):
            normed = np.stack([_normalise(m, fit_stable(reference, m)) for m in metrics])
            reference = np.median(normed, axis=0)
        return cls(canonical, _rest_mouth(reference, normed, canonical, config), width, height, config)

    def with_canonical(self, canonical: CanonicalFace) -> "FaceAnimator":
        """The same calibrated signer moving another canonical face (a
        :class:`~.canonical.FaceShape` of it: the signer's neutral is in face units, which a shape
        keeps)."""
        return FaceAnimator(canonical, self.neutral, self.width, self.height, self.config)

    def with_config(self, config: FaceConfig) -> "FaceAnimator":
        """The same calibrated face (neutral, frame size) with other gains."""
        return FaceAnimator(self.canonical, self.neutral, self.width, self.height, config)

    def head_pose(self, points: np.ndarray | None, confidence: np.ndarray | None = None):
        """``(s, R, t)`` from face units to the frame's mesh (x, y px, z MediaPipe z x width; see
        :func:`~signanon.landmarks.geometry.similarity_fit`), or None without a face.

        confidence: (478,) face-part confidence; None = all points present."""
        if points is None or (confidence is not None and not _face_present(confidence)):
            return None
        ref = self.neutral if self.neutral is not None else self.canonical.points.astype(np.float64)
        return fit_stable(ref, to_metric(points, self.width))

    def expression(self, points: np.ndarray, confidence: np.ndarray | None = None) -> np.ndarray:
        """(478, 3) float64 canonical face (face units, frontal) with this frame's expression."""
        canon = self.canonical.points.astype(np.float64)
        if self.neutral is None or points is None:
            return canon.copy()
        pose = self.head_pose(points, confidence)
        if pose is None:
            return canon.copy()
        return self._transfer(_normalise(to_metric(points, self.width), pose))

    def _transfer(self, mesh: np.ndarray) -> np.ndarray:
        cfg = self.config
        canon = self.canonical.points.astype(np.float64)
        neutral = self.neutral
        offset = self.gains * (mesh - neutral)
        self._cap_mouth_opening(offset, mesh - neutral)
        self._cap_furrow(offset, mesh - neutral)
        length = np.linalg.norm(offset, axis=1, keepdims=True)
        offset *= np.minimum(1.0, cfg.max_offset / np.maximum(length, 1e-9))
        out = canon + offset
        for upper, lower in ((LID_UPPER_R, LID_LOWER_R), (LID_UPPER_L, LID_LOWER_L)):
            self._transfer_lids(out, mesh, upper, lower)
        for iris, outer, inner in ((IRIS_R, EYE_OUTER_R, EYE_INNER_R), (IRIS_L, EYE_OUTER_L, EYE_INNER_L)):
            self._transfer_iris(out, mesh, iris, outer, inner)
        self._close_lips(out)
        return out

    def _cap_mouth_opening(self, offset: np.ndarray, change: np.ndarray) -> None:
        """Take back as much of mouth_gain's extra (vertical, depth) as keeps the drawn inner-lip
        gap within ``max_mouth_opening`` (never below the signer's own opening at gain 1).
        offset: (478, 3) gained offsets, changed in place; change: (478, 3) mesh - neutral."""
        cfg = self.config
        extra = cfg.expression_gain * (cfg.mouth_gain - 1.0)
        if extra <= 0:
            return
        upper, lower = INNER_LIP_CENTRE
        canon_gap = float(self.canonical.points[lower, 1] - self.canonical.points[upper, 1])
        signer = cfg.expression_gain * float(change[lower, 1] - change[upper, 1])  # gap change at gain 1
        gap = canon_gap + float(offset[lower, 1] - offset[upper, 1])
        if gap <= cfg.max_mouth_opening or signer <= 0:
            return
        # gap(k) = canon_gap + signer * (1 + k * (mouth_gain - 1)), k in [0, 1] the share kept
        kept = float(np.clip((cfg.max_mouth_opening - canon_gap - signer) / (signer * (cfg.mouth_gain - 1.0)), 0.0, 1.0))
        offset[:, 1:] -= ((1.0 - kept) * extra * self.mouth_weights)[:, None] * change[:, 1:]

    def _cap_furrow(self, offset: np.ndarray, change: np.ndarray) -> None:
        """Take back as much of brow_gain x furrow_gain's extra (sideways) as keeps the drawn gap
        between the inner brow ends at least ``min_brow_gap`` of the canonical gap (never below the
        signer's own gap at gain 1). offset: (478, 3) gained offsets, changed in place; change:
        (478, 3) mesh - neutral."""
        cfg = self.config
        extra = cfg.expression_gain * (cfg.brow_gain * cfg.furrow_gain - 1.0)
        if extra <= 0:
            return
        right, left = BROW_LOWER_R[-1], BROW_LOWER_L[-1]  # the inner brow ends (55, 285)
        canon_gap = float(self.canonical.points[left, 0] - self.canonical.points[right, 0])
        floor = cfg.min_brow_gap * canon_gap
        signer = cfg.expression_gain * float(change[left, 0] - change[right, 0])  # gap change at gain 1
        gap = canon_gap + float(offset[left, 0] - offset[right, 0])
        if gap >= floor or signer >= 0:
            return
        # gap(k) = canon_gap + signer * (1 + k * extra), k in [0, 1] the share of the extra kept
        kept = float(np.clip((floor - canon_gap - signer) / (signer * extra), 0.0, 1.0))
        offset[:, 0] -= (1.0 - kept) * extra * self.brow_weights * change[:, 0]

    def _transfer_lids(self, out, mesh, upper, lower) -> None:
        """Eye opening as a ratio of the signer's own neutral opening (a closed eye stays closed).
        The ratio's change is scaled by the eye's size (:func:`eye_size`), so the drawn lids move
        as far as the signer's in inter-ocular units; never by less than 1 / eye_gain, so a closed
        eye is still drawn closed."""
        neutral_gap = _pair_opening(self.neutral, upper, lower)
        gap = _pair_opening(mesh, upper, lower)
        ratio = float(np.median(gap / np.maximum(neutral_gap, 1e-6)))  # one opening per eye: no kinks
        cfg = self.config
        ratio = float(np.clip(1.0 + cfg.eye_gain * self.eye_sizes[upper[0]] * (ratio - 1.0), 0.0, cfg.max_eye_opening))
        canon_gap = _pair_opening(self.canonical.points.astype(np.float64), upper, lower)
        lower_y = out[_rows(lower), 1]
        out[_rows(upper), 1] = lower_y - ratio * canon_gap

    def _transfer_iris(self, out, mesh, iris, outer, inner) -> None:
        """Iris position relative to the eye corners: the signer's offset from their neutral."""
        shift = _iris_offset(mesh, iris, outer, inner) - _iris_offset(self.neutral, iris, outer, inner)
        canon = self.canonical.points.astype(np.float64)
        width = np.linalg.norm(out[outer, :2] - out[inner, :2])
        target = 0.5 * (out[outer, :2] + out[inner, :2]) + (
            _iris_offset(canon, iris, outer, inner) + self.config.gaze_gain * shift
        ) * width
        rows = _rows(iris)
        out[rows] = canon[rows] - canon[iris[0]] + np.array([*target, out[iris[0], 2]])

    @staticmethod
    def _close_lips(out: np.ndarray) -> None:
        """Inner lips never cross: where the lower passes above the upper, both meet in between."""
        up, lo = _rows(LIP_INNER_UPPER[1:-1]), _rows(LIP_INNER_LOWER[1:-1])
        cross = out[lo, 1] < out[up, 1]
        mid = 0.5 * (out[lo, 1] + out[up, 1])
        out[up[cross], 1] = mid[cross]
        out[lo[cross], 1] = mid[cross]

    def __call__(
        self,
        points: np.ndarray | None,
        confidence: np.ndarray | None,
        anchor: np.ndarray,
        scale: float,
    ) -> np.ndarray:
        """The output face of one frame.

        points: (478, 3) frame rows 33:511 (x, y px, MediaPipe z) or None; confidence: (478,), a
        face with any of its 468 mesh points missing counts as no face (None: all present).
        anchor: (2,) output px where point 168 goes; scale: output px per face unit.
        Returns (478, 3) float32 output px; z = depth relative to point 168 (smaller = closer).
        No face -> the neutral canonical face, frontal.
        """
        pose = self.head_pose(points, confidence)
        if pose is None:
            return place_face(self.canonical.points, np.eye(3), anchor, scale)
        if self.neutral is None:
            return place_face(self.canonical.points, pose[1], anchor, scale)
        mesh = self._transfer(_normalise(to_metric(points, self.width), pose))
        return place_face(mesh, pose[1], anchor, scale)


def place_face(mesh: np.ndarray, rot: np.ndarray, anchor: np.ndarray, scale: float) -> np.ndarray:
    """Turn a face-unit mesh (478, 3) by rot (3, 3) about point 168 and place it in output px.

    Orthographic: point 168 lands at anchor (2,); 1 face unit = scale px. Returns (478, 3) float32.
    """
    rel = (np.asarray(mesh, np.float64) - mesh[NOSE_BRIDGE]) @ np.asarray(rot, np.float64).T
    out = rel * float(scale)
    out[:, :2] += np.asarray(anchor, np.float64)[:2]
    return out.astype(np.float32)
