"""Landmark-driven re-enactment: the offline fallback when no TPSMM checkpoint is given.

The SOURCE face image is warped with a thin-plate spline (TPS) so that its face-mesh points land on
*target* points: the driving frame's expression and head motion transferred onto the source face's
own geometry.

Motion transfer (:func:`transfer_motion`), with meshes ``(478, 3)`` x, y, z in pixels of their own
image: ``S`` the source, ``R`` the driving reference frame, ``D`` the current driving frame.

* ``A`` = similarity (Umeyama, 3-D, on points that move little with expression) mapping ``R`` onto
  ``S``: it removes the difference in position, size and head pose between the two faces.
* ``M`` = similarity mapping ``R`` onto ``D``: the driver's head motion since the reference frame.
* ``E = M^-1(D) - R``: the driver's expression (brows, lids, irises, lips) with head motion removed.
* relative mode: ``target = A(M(A^-1(S) + g E))``: the source's face shape, the driver's expression
  and head motion relative to the reference. absolute mode: ``target = A(D)``: the driver's mesh
  placed where the source face is (the driver's face shape leaks into the output; TPSMM's
  "absolute" mode has the same property).
* ``g``: per-series expression gains across and down the face (:data:`GAIN_AXES`), measured for
  each photo and driver by :func:`calibrate_gains`; ``R`` for a whole clip: :func:`median_face`.
  The lid gain acts on the eye's opening only (the lower lid moves as the driver's), an iris moves
  only as far as its eye is open (:func:`steady_irises`), and the inner-lip gap is capped
  (:func:`cap_mouth_opening`).

Warp (:func:`warp_face`): a TPS fitted from target points (output pixels) to source points (source
pixels) on a subset of ~150 mesh points, a ring outside the face oval that follows the head
rigidly (hair, ears) and fixed points on the output border (the background does not move). It is
evaluated on a coarse grid (every 4 pixels), upsampled and applied with ``cv2.remap``. Lids close
by occlusion: the spline squeezes an eye only so far, then the upper lid slides down over it
(:func:`keep_lids_open`, :func:`lower_lids`). When the
driver opens the mouth wider than the source face shows it, the inside of the target inner-lip
polygon is painted as a dark mouth with a hint of upper teeth, blended softly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import setting
from ..landmarks.geometry import (
    apply_similarity, fit_stable, head_angles, inter_ocular, invert_similarity,
)  # fmt: skip
from ..landmarks.grammar import grammar
from ..landmarks.regions import (
    BROW_LOWER_L, BROW_LOWER_R, BROW_UPPER_L, BROW_UPPER_R, CHEEKS, CHIN, EYE_INNER_L, EYE_INNER_R, EYE_OUTER_L,
    EYE_OUTER_R, FACE_OVAL, FOREHEAD, INNER_LIP_CENTRE, IRIS_CENTRES, IRIS_L, IRIS_R, LID_LOWER_L,
    LID_LOWER_R, LID_UPPER_L, LID_UPPER_R, LIP_INNER_LOWER, LIP_INNER_UPPER, LIP_OUTER_LOWER, LIP_OUTER_UPPER,
    MOUTH_CORNERS, NOSE_BASE, NOSE_LINE,
)  # fmt: skip


def _unique(indices) -> np.ndarray:
    return np.array(sorted(set(indices)), np.int64)


# mesh points the TPS follows (everything that carries expression, plus the outline and the nose)
CONTROL_POINTS = _unique(
    FACE_OVAL + BROW_UPPER_R + BROW_LOWER_R + BROW_UPPER_L + BROW_LOWER_L
    + LID_UPPER_R + LID_LOWER_R + LID_UPPER_L + LID_LOWER_L + IRIS_CENTRES
    + LIP_OUTER_UPPER + LIP_OUTER_LOWER + LIP_INNER_UPPER + LIP_INNER_LOWER
    + NOSE_BASE + NOSE_LINE + CHEEKS
)
INNER_LIP_POLYGON = np.array(LIP_INNER_UPPER + LIP_INNER_LOWER[::-1][1:-1], np.int64)
BROW_POINTS = BROW_UPPER_R + BROW_LOWER_R + BROW_UPPER_L + BROW_LOWER_L
LID_POINTS = LID_UPPER_R + LID_LOWER_R + LID_UPPER_L + LID_LOWER_L
LIP_POINTS = LIP_OUTER_UPPER + LIP_OUTER_LOWER + LIP_INNER_UPPER + LIP_INNER_LOWER
# (upper, lower) point pairs that must not cross: lids outer to inner corner, inner lips (corners dropped)
CLOSING_PAIRS = tuple(zip(LID_UPPER_R + LID_UPPER_L + LIP_INNER_UPPER[1:-1], LID_LOWER_R + LID_LOWER_L + LIP_INNER_LOWER[1:-1]))
LID_PAIRS = len(LID_UPPER_R) + len(LID_UPPER_L)  # the first LID_PAIRS of CLOSING_PAIRS are lids
_UPPER_LIDS = np.array(LID_UPPER_R + LID_UPPER_L, np.int64)  # paired point for point with _LOWER_LIDS
_LOWER_LIDS = np.array(LID_LOWER_R + LID_LOWER_L, np.int64)


@dataclass(frozen=True)
class LandmarkWarpConfig:
    """Settings of the landmark warp.

    grid_step: pixels between TPS evaluations (the map is upsampled in between); regularization:
    TPS smoothing in units of the output size squared (0 = interpolate exactly); ring_scale: the
    rigid ring sits this many times the oval's radius from the face centre; border_points: fixed
    points per output side; mouth_fill: paint the mouth interior when the driver opens it wider
    than the source; mouth_threshold: how much wider (inner-lip gap / inter-ocular distance).

    brow_gain, furrow_gain, lid_gain, mouth_gain, mouth_width_gain: factors on the driver's
    expression displacement (relative mode), one per facial-grammar series, each on one point
    group and one axis of the face (across = along the eye line, down = perpendicular to it):
    brows down (brow raise) and across (brow furrow), lids down (eye openness), lips down (mouth
    opening) and across (mouth width). A warp moves the source's pixels, it cannot redraw a lid
    over an eye or a brow's muscles and wrinkles, so a face warped by exactly the driver's
    displacement reads back as a damped copy of the expression, and by how much depends on the
    photo (a landmark read-back of a warp that raises the brows by 0.03 inter-ocular distances
    sees 0.3-0.8 of it, depending on the face). Lids and inner lips never cross, whatever the gain.
    These are the starting gains; with ``calibrate`` they are measured afresh for each job
    (:func:`calibrate_gains`): some driving frames are rendered, read back by a landmark detector
    in the output's framing, and each series' gain is set so that the read-back moves as much as
    the driver (within ``gain_limits``). calibration_frames: driving frames used;
    calibration_passes: render-and-measure rounds.
    max_mouth_opening: cap on the target's inner-lip gap, in inter-ocular distances of the source
    face (relative mode): a photo's closed lips warped open wider than ~0.5 stretch into a dark hole
    that a landmark read-back, like a viewer, no longer takes for a mouth (open_mouth's yawn, 0.57
    in the driver, read back at 0.03-0.18 on a warped photo; ``benchmarks/reenact_issue11.txt``).
    Past the cap the lower face's expression is scaled down so the gap stays at the cap.
    eye_cover: close the lids by sliding the upper lid down over the eyeball (:func:`lower_lids`):
    the thin-plate spline squeezes an eye to no less than ``lid_keep`` of its opening in the photo,
    and the rest of the closing is an occlusion, the lid skin within ``lid_band`` inter-ocular
    distances above the lash line stretched down so that the lashes lie on the target lid line;
    eyeball pixels still left outside the target opening are then filled with the surrounding skin
    (:func:`cover_eyes`). A spline alone cannot fold the upper lid over the eye: squeezed to a
    line, the eye smears into an open-looking dark slit, and a closed eye read back as open.
    """

    grid_step: int = 4
    regularization: float = 1e-5
    ring_scale: float = 1.3
    border_points: int = 8
    mouth_fill: bool = True
    mouth_threshold: float = 0.04
    mouth_colour: tuple[int, int, int] = (52, 18, 22)
    teeth_colour: tuple[int, int, int] = (214, 206, 196)
    eye_cover: bool = setting(True, "landmark warp: close the lids over the eyeball where the driver closes the eyes", cli=False)
    lid_keep: float = 0.5
    lid_band: float = 0.12
    brow_gain: float = setting(1.8, "landmark warp: factor on the driver's brow raise (starting value when calibrated)", cli=False)
    furrow_gain: float = setting(1.8, "landmark warp: factor on the driver's brow furrow (starting value when calibrated)", cli=False)
    lid_gain: float = setting(1.6, "landmark warp: factor on the driver's eye opening and closing (starting value when calibrated)", cli=False)
    mouth_gain: float = setting(1.0, "landmark warp: factor on the driver's mouth opening (starting value when calibrated)", cli=False)
    mouth_width_gain: float = setting(1.0, "landmark warp: factor on the driver's mouth width (starting value when calibrated)", cli=False)
    calibrate: bool = setting(True, "landmark warp: measure each expression gain for this photo and driver (reenact)", cli=False)
    calibration_frames: int = 30
    calibration_passes: int = 2
    gain_limits: tuple[float, float] = (0.8, 2.6)
    max_mouth_opening: float = 0.45

    def series_gains(self) -> dict[str, float]:
        """The starting gain of each facial-grammar series (names of :data:`GAIN_AXES`)."""
        return {
            "brow_raise": self.brow_gain, "brow_furrow": self.furrow_gain, "eye_openness": self.lid_gain,
            "mouth_opening": self.mouth_gain, "mouth_width": self.mouth_width_gain,
        }  # fmt: skip

    def point_gains(self, gains: dict[str, float] | None = None) -> np.ndarray:
        """float64 ``(478, 2)``: each mesh point's expression factor across and down the face.

        gains: series name -> factor (default :meth:`series_gains`); 1 outside brows, lids, lips.
        """
        return point_gains(self.series_gains() if gains is None else gains)


# series name -> (points, axis: 0 across the face, 1 down the face) its gain applies to
GAIN_AXES = {
    "brow_raise": (BROW_POINTS, 1),
    "brow_furrow": (BROW_POINTS, 0),
    "eye_openness": (LID_POINTS, 1),
    "mouth_opening": (LIP_POINTS, 1),
    "mouth_width": (LIP_POINTS, 0),
}


def point_gains(gains: dict[str, float]) -> np.ndarray:
    """float64 ``(478, 2)`` per-point (across, down) factors from series gains (see GAIN_AXES).

    The lids move mostly down: their across factor follows their down factor."""
    out = np.ones((478, 2))
    for name, (points, axis) in GAIN_AXES.items():
        out[list(points), axis] = gains.get(name, 1.0)
    out[list(LID_POINTS), 0] = out[list(LID_POINTS), 1]
    return out


# --------------------------------------------------------------------------------------------
# Motion transfer


def transfer_motion(
    source: np.ndarray,
    driving: np.ndarray,
    reference: np.ndarray,
    mode: str = "relative",
    extra: np.ndarray | None = None,
    gains: np.ndarray | None = None,
    max_mouth_opening: float | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Target mesh: the driving frame's motion on the source face (see the module docstring).

    source, driving, reference: float ``(478, 3)`` meshes, x, y, z in pixels of their own image
    (source in source pixels; driving and reference in the same driving pixels). mode: "relative"
    or "absolute". extra: optional ``(K, 3)`` source points that follow the head rigidly (no
    expression). gains: optional float ``(478,)`` factor on each point's expression ``E``, or
    ``(478, 2)`` factors across and down the face (relative mode; :func:`point_gains`,
    :func:`scale_expression`); lids and inner lips are then kept from crossing (:func:`uncross`).
    max_mouth_opening: relative mode, cap on the target's inner-lip gap in inter-ocular distances
    (:func:`cap_mouth_opening`); None = no cap. Returns float64 ``(478, 3)`` target in source
    pixels and the moved ``extra``.
    """
    source = np.asarray(source, np.float64)
    driving = np.asarray(driving, np.float64)
    reference = np.asarray(reference, np.float64)
    align = fit_stable(reference, source)  # A: reference -> source
    if mode == "absolute":
        target = apply_similarity(align, driving)
        motion = fit_stable(reference, driving)
    elif mode == "relative":
        motion = fit_stable(reference, driving)  # M: reference -> driving
        expression = steady_irises(apply_similarity(invert_similarity(motion), driving) - reference, reference)
        in_ref = apply_similarity(invert_similarity(align), source)
        if gains is not None:
            expression = scale_expression(expression, reference, gains)
        if max_mouth_opening is not None:
            expression = cap_mouth_opening(expression, in_ref, max_mouth_opening)
        moved_ref = in_ref + expression if gains is None else uncross(in_ref + expression, in_ref)
        target = apply_similarity(align, apply_similarity(motion, moved_ref))
    else:
        raise ValueError(f"mode must be 'relative' or 'absolute', got {mode!r}")
    moved = None
    if extra is not None:
        moved = apply_similarity(align, apply_similarity(motion, apply_similarity(invert_similarity(align), np.asarray(extra, np.float64))))
    return target, moved


def cap_mouth_opening(expression: np.ndarray, rest: np.ndarray, cap: float) -> np.ndarray:
    """The expression ``(478, 3)`` on the face ``rest`` ``(478, 3)``, with its lower face scaled down
    so that the inner-lip gap of ``rest + expression`` is at most ``cap`` inter-ocular distances.

    The lower face is everything below the nose base (weight 1 from the mouth corners down, fading
    to 0 at the nose base), so lips, jaw and chin close together; a mouth the rest face already
    opens wider than ``cap`` is left as it is. Returns float64 ``(478, 3)`` (a copy).
    """
    expression = np.array(expression, np.float64)
    rest = np.asarray(rest, np.float64)
    upper, lower = INNER_LIP_CENTRE
    down = face_axes(rest)[1]
    iod = inter_ocular(rest)
    rest_gap = float((rest[lower, :2] - rest[upper, :2]) @ down)
    moved = rest + expression
    gap = float((moved[lower, :2] - moved[upper, :2]) @ down)
    limit = cap * iod
    if gap <= limit or gap <= rest_gap:
        return expression
    keep = max(0.0, (limit - rest_gap) / (gap - rest_gap))
    depth = rest[:, :2] @ down
    nose = float(np.mean(depth[list(NOSE_BASE)]))
    corners = float(np.mean(depth[list(MOUTH_CORNERS)]))
    weight = np.clip((depth - nose) / max(corners - nose, 1e-9), 0.0, 1.0)
    return expression * (1.0 - (1.0 - keep) * weight)[:, None]


NOSE_TIP = 1  # face-mesh point


def weaken_expression(reference: np.ndarray, driving: np.ndarray, strength: float) -> np.ndarray:
    """The driving mesh with its expression (its change from ``reference`` once head pose is
    undone) scaled down, its head pose kept: float64 ``(478, 3)``, same pixels as the inputs.

    The upper face (points above the nose tip, along :func:`face_axes`) goes first: ``strength``
    1 -> 0.5 takes its expression from full to none, 0.5 -> 0 then the lower face's. The privacy
    guards use it (:mod:`~signanon.reenactment.driver_guard`): driving Obama's photo with
    expressive_man, weakening the upper face, where the calibrated gains are largest, kept the
    driver out with the mouth intact (r 0.87); weakening the whole face cost the mouth r 0.96 -> 0.71.
    """
    reference = np.asarray(reference, np.float64)
    driving = np.asarray(driving, np.float64)
    motion = fit_stable(reference, driving)  # head pose: reference -> driving
    expression = apply_similarity(invert_similarity(motion), driving) - reference
    depth = reference[:, :2] @ face_axes(reference)[1]
    upper = (depth < depth[NOSE_TIP])[:, None]
    factor = np.where(upper, np.clip(2 * strength - 1, 0, 1), np.clip(2 * strength, 0, 1))
    return apply_similarity(motion, reference + factor * expression)


def face_axes(mesh: np.ndarray) -> np.ndarray:
    """float64 ``(2, 2)``: unit image-plane vectors across (right eye outer corner -> left) and
    down (perpendicular, toward the chin) a face mesh ``(478, 2+)``."""
    mesh = np.asarray(mesh, np.float64)
    across = mesh[EYE_OUTER_L, :2] - mesh[EYE_OUTER_R, :2]
    across /= np.linalg.norm(across) + 1e-12
    down = np.array([-across[1], across[0]])
    if down @ (mesh[CHIN, :2] - mesh[FOREHEAD, :2]) < 0:
        down = -down
    return np.stack([across, down])


def scale_expression(expression: np.ndarray, rest: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Expression displacement ``(478, 3)`` times per-point gains.

    gains ``(478,)``: one factor per point (x, y, z alike); ``(478, 2)``: factors on the image-plane
    components across and down the face ``rest`` (:func:`face_axes`), z taking the down factor;
    there an upper lid point's factor acts on its motion relative to its lower lid point (the
    eye's opening), and the lower lid moves as the driver's. Returns float64 ``(478, 3)``.
    """
    expression = np.asarray(expression, np.float64)
    gains = np.asarray(gains, np.float64)
    if gains.ndim == 1:
        return expression * gains[:, None]
    axes = face_axes(rest)
    parts = expression[:, :2] @ axes.T  # (478, 2): across, down components
    scaled = parts * gains
    # lids: the gain is on the eye's opening, not on where the eye moves. Each lower lid point moves
    # as the driver's, its upper lid point by that plus the gained motion relative to it (the same
    # opening as gaining both, but looking down does not drag the lower lid into the cheek)
    upper, lower = _UPPER_LIDS, _LOWER_LIDS
    scaled[lower] = parts[lower]
    scaled[upper] = parts[lower] + gains[upper] * (parts[upper] - parts[lower])
    out = expression.copy()
    out[:, :2] = scaled @ axes
    out[:, 2:] *= gains[:, 1:2]
    return out


def uncross(mesh: np.ndarray, rest: np.ndarray, min_gap: float = 0.0) -> np.ndarray:
    """Keep each (upper, lower) lid and inner-lip pair of :data:`CLOSING_PAIRS` from crossing.

    mesh: float ``(478, 3)`` moved mesh; rest: ``(478, 3)`` the same face at rest, whose forehead
    -> chin direction (image plane) counts as "down". Where a lower point would pass above
    ``min_gap`` (pixels) below its upper point, the pair closes along that direction: inner lips
    meet at their midpoint; an upper lid stops on its lower lid, which stays (a blink drawn with
    a gain closes further than the eye is open; meeting halfway pushed the lower lid down into
    the cheek and the warp smeared the eye downward). Returns a float64 copy.
    """
    out = np.array(mesh, np.float64)
    upper, lower = (np.array(side, np.int64) for side in zip(*CLOSING_PAIRS))
    rest = np.asarray(rest, np.float64)
    down = rest[CHIN, :2] - rest[FOREHEAD, :2]
    down /= np.linalg.norm(down) + 1e-9
    gap = (out[lower, :2] - out[upper, :2]) @ down
    short = gap < min_gap
    if short.any():
        fix = (min_gap - gap[short])[:, None] * down
        up_share = np.where(np.arange(len(upper)) < LID_PAIRS, 1.0, 0.5)[short, None]
        out[upper[short], :2] -= up_share * fix
        out[lower[short], :2] += (1.0 - up_share) * fix
    return out


def steady_irises(expression: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The expression ``(478, 3)`` (relative to the mesh ``reference``) with each iris's motion
    scaled by how open that eye is, ``clip(opening / reference opening, 0, 1)``.

    A landmark detector guesses the iris of a closing eye (one driver's irises "dropped" 0.07
    inter-ocular distances in every blink), and the iris centres steer the warp: a closed eye
    must leave the eyeball where it was. Returns float64 ``(478, 3)`` (a copy)."""
    out = np.array(expression, np.float64)
    reference = np.asarray(reference, np.float64)
    down = face_axes(reference)[1]
    moved = reference + out
    for iris, upper, lower in ((IRIS_R, LID_UPPER_R, LID_LOWER_R), (IRIS_L, LID_UPPER_L, LID_LOWER_L)):
        rest = float(np.mean((reference[list(lower), :2] - reference[list(upper), :2]) @ down))
        now = float(np.mean((moved[list(lower), :2] - moved[list(upper), :2]) @ down))
        out[list(iris)] *= float(np.clip(now / rest, 0.0, 1.0)) if rest > 1e-9 else 1.0
    return out


def inner_mouth_opening(mesh: np.ndarray) -> float:
    """Inner-lip gap (points 13-14) / inter-ocular distance (outer eye corners) of a mesh."""
    mesh = np.asarray(mesh, np.float64)
    upper, lower = INNER_LIP_CENTRE
    return float(np.linalg.norm(mesh[upper, :2] - mesh[lower, :2]) / inter_ocular(mesh))


# --------------------------------------------------------------------------------------------
# Thin-plate spline


class ThinPlateSpline:
    """A 2-D thin-plate spline f with f(p_i) ≈ q_i, fitted by one linear solve.

    Fit with ``points`` (N, 2) and ``values`` (N, 2), N >= 3 not all on a line; coordinates are
    divided by ``scale`` first (conditioning). ``regularization`` (in scaled units squared) trades
    exactness for smoothness. Calling it maps float ``(M, 2)`` points to float64 ``(M, 2)``.
    """

    def __init__(self, points: np.ndarray, values: np.ndarray, scale: float = 1.0, regularization: float = 0.0):
        self.scale = float(scale)
        self.centres = np.asarray(points, np.float64) / self.scale
        values = np.asarray(values, np.float64) / self.scale
        n = len(self.centres)
        system = np.zeros((n + 3, n + 3))
        system[:n, :n] = self._kernel(self.centres, self.centres) + regularization * np.eye(n)
        system[:n, n] = 1.0
        system[:n, n + 1 :] = self.centres
        system[n, :n] = 1.0
        system[n + 1 :, :n] = self.centres.T
        rhs = np.zeros((n + 3, 2))
        rhs[:n] = values
        from scipy import linalg

        try:  # symmetric indefinite solve (LAPACK sysv): a few ms even on a busy multi-core BLAS
            self.coefficients = linalg.solve(system, rhs, assume_a="sym", check_finite=False)
        except (linalg.LinAlgError, ValueError):  # degenerate layout: least squares is still smooth
            self.coefficients = np.linalg.lstsq(system, rhs, rcond=None)[0]

    @staticmethod
    def _kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
        d2 = np.maximum(d2, 1e-20)
        return d2 * np.log(d2)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, np.float64) / self.scale
        n = len(self.centres)
        w, a = self.coefficients[:n], self.coefficients[n:]
        out = self._kernel(p, self.centres) @ w + a[0] + p @ a[1:]
        return out * self.scale


# --------------------------------------------------------------------------------------------
# Warp


def _oval_ring(mesh: np.ndarray, scale: float) -> np.ndarray:
    oval = np.asarray(mesh, np.float64)[list(FACE_OVAL)]
    centre = oval.mean(0)
    ring = centre + scale * (oval - centre)
    ring[:, 2] = oval[:, 2]
    return ring


def _border(size: int, per_side: int) -> np.ndarray:
    ticks = np.linspace(0, size - 1, per_side + 1)[:-1]
    last = size - 1.0
    top = np.stack([ticks, np.zeros_like(ticks)], 1)
    right = np.stack([np.full_like(ticks, last), ticks], 1)
    bottom = np.stack([last - ticks, np.full_like(ticks, last)], 1)
    left = np.stack([np.zeros_like(ticks), last - ticks], 1)
    return np.concatenate([top, right, bottom, left])


def _affine_inverse(matrix: np.ndarray) -> np.ndarray:
    linear = np.linalg.inv(matrix[:, :2])
    return np.hstack([linear, -(linear @ matrix[:, 2])[:, None]])


def _dedupe(points: np.ndarray, values: np.ndarray, min_distance: float) -> tuple[np.ndarray, np.ndarray]:
    """Drop each point closer than ``min_distance`` to an earlier one (near-duplicates with
    different values would make the solve ill-conditioned)."""
    d2 = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    close = np.triu(d2 < min_distance**2, k=1)
    keep = ~close.any(axis=0)
    return points[keep], values[keep]


def warp_map(
    source_points: np.ndarray,
    target_points: np.ndarray,
    size: int,
    output_to_source: np.ndarray,
    config: LandmarkWarpConfig = LandmarkWarpConfig(),
) -> tuple[np.ndarray, np.ndarray]:
    """Backward map of an output image: where each output pixel samples the source image.

    source_points: float ``(N, 2)`` in source pixels; target_points: float ``(N, 2)`` in output
    pixels (same order); size: output side in pixels; output_to_source: ``(2, 3)`` affine giving
    the source pixel of each fixed output border point. Returns float32 ``(size, size)`` map_x and
    map_y for ``cv2.remap``.
    """
    import cv2

    border_out = _border(size, config.border_points)
    border_src = border_out @ output_to_source[:, :2].T + output_to_source[:, 2]
    p = np.concatenate([np.asarray(target_points, np.float64), border_out])
    q = np.concatenate([np.asarray(source_points, np.float64), border_src])
    finite = np.isfinite(p).all(1) & np.isfinite(q).all(1)
    p, q = _dedupe(p[finite], q[finite], 0.75)
    tps = ThinPlateSpline(p, q, scale=float(size), regularization=config.regularization)
    cells = max(2, int(round(size / config.grid_step)))
    ticks = (np.arange(cells) + 0.5) * size / cells - 0.5  # cv2.resize's sample positions
    gx, gy = np.meshgrid(ticks, ticks)
    coarse = tps(np.stack([gx.ravel(), gy.ravel()], 1)).reshape(cells, cells, 2).astype(np.float32)
    fine = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(fine[..., 0]), np.ascontiguousarray(fine[..., 1])


def paint_mouth(
    image: np.ndarray, target_out: np.ndarray, strength: float, config: LandmarkWarpConfig
) -> np.ndarray:
    """Paint an open mouth (dark interior, upper-teeth hint) inside the target inner-lip polygon.

    image: RGB uint8 ``(S, S, 3)``; target_out: ``(478, 2+)`` target mesh in output pixels;
    strength: 0..1 opacity. Returns a painted copy (only a box around the mouth is touched).
    """
    import cv2

    target_out = np.asarray(target_out, np.float64)
    poly = target_out[INNER_LIP_POLYGON, :2]
    iod = float(np.linalg.norm(target_out[EYE_OUTER_L, :2] - target_out[EYE_OUTER_R, :2]))
    height, width = image.shape[:2]
    pad = int(np.ceil(0.05 * iod)) + 3
    x0, y0 = np.maximum(np.floor(poly.min(0)).astype(int) - pad, 0)
    x1, y1 = np.minimum(np.ceil(poly.max(0)).astype(int) + pad, [width, height])
    if strength <= 0 or x1 <= x0 or y1 <= y0:
        return image
    shift = 4  # sub-pixel polygon drawing
    origin = np.array([x0, y0], np.float64)

    def fill(polygon: np.ndarray) -> np.ndarray:
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        pts = np.round((polygon - origin) * (1 << shift)).astype(np.int32)
        cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA, shift)
        return mask

    inside = fill(poly)
    if not inside.any():
        return image
    # teeth: a band under the upper inner lip, at most 0.2 of the opening and 0.05 IOD deep
    upper = target_out[list(LIP_INNER_UPPER), :2]
    gap = float(np.linalg.norm(target_out[INNER_LIP_CENTRE[0], :2] - target_out[INNER_LIP_CENTRE[1], :2]))
    depth = min(0.2 * gap, 0.05 * iod)
    teeth = fill(np.concatenate([upper, upper[::-1] + [0.0, depth]]))
    teeth = cv2.GaussianBlur(teeth, (0, 0), max(0.5, depth / 4)).astype(np.float32)[..., None] / 255
    paint = np.array(config.mouth_colour, np.float32) * (1 - 0.7 * teeth) + (
        np.array(config.teeth_colour, np.float32) * 0.7 * teeth
    )
    soft = cv2.GaussianBlur(inside, (0, 0), max(0.6, 0.01 * iod)).astype(np.float32) / 255
    alpha = (np.minimum(soft, inside.astype(np.float32) / 255) * strength)[..., None]
    out = image.copy()
    roi = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(roi * (1 - alpha) + paint * alpha + 0.5, 0, 255).astype(np.uint8)
    return out


EYE_APERTURES = (
    np.array(LID_UPPER_R + LID_LOWER_R[::-1][1:-1], np.int64),
    np.array(LID_UPPER_L + LID_LOWER_L[::-1][1:-1], np.int64),
)  # (right, left) eye openings: upper lid outer -> inner corner, then the lower lid back


def _polygon_mask(polygon: np.ndarray, origin: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """float32 ``(h, w)`` in [0, 1]: anti-aliased fill of ``polygon`` ``(K, 2)`` pixels, minus ``origin``."""
    import cv2

    mask = np.zeros(shape, np.uint8)
    pts = np.round((np.asarray(polygon, np.float64) - origin) * 16).astype(np.int32)
    cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA, 4)
    return mask.astype(np.float32) / 255


def cover_eyes(
    image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, source_mesh: np.ndarray, target_out: np.ndarray
) -> np.ndarray:
    """Close the lids over eyeball pixels that the warp left outside the target eye opening.

    A warp can only squeeze an eye, never cover it: a blink becomes a thin, still visible slit.
    Here every output pixel that samples the source's eye opening (via ``map_x``, ``map_y``, float32
    ``(S, S)`` source pixels) but lies outside the target's opening is filled from the surrounding
    skin (``cv2.inpaint``). image: RGB uint8 ``(S, S, 3)`` warped face; source_mesh: ``(478, 2+)``
    source pixels; target_out: ``(478, 2+)`` output pixels. Returns a copy (only eye boxes touched).
    """
    import cv2

    out = image
    size = image.shape[0]
    for aperture in EYE_APERTURES:
        src_poly = np.asarray(source_mesh, np.float64)[aperture, :2]
        tgt_poly = np.asarray(target_out, np.float64)[aperture, :2]
        pad = 0.5 * float(np.ptp(tgt_poly[:, 0])) + 2
        x0, y0 = np.clip(np.floor(tgt_poly.min(0) - pad).astype(int), 0, size)
        x1, y1 = np.clip(np.ceil(tgt_poly.max(0) + pad).astype(int), 0, size)
        if x1 - x0 < 3 or y1 - y0 < 3:
            continue
        s0 = np.floor(src_poly.min(0)).astype(int) - 2
        s1 = np.ceil(src_poly.max(0)).astype(int) + 2
        eyeball = _polygon_mask(src_poly, s0.astype(np.float64), (s1[1] - s0[1], s1[0] - s0[0]))
        seen = cv2.remap(
            eyeball, map_x[y0:y1, x0:x1] - s0[0], map_y[y0:y1, x0:x1] - s0[1], cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=0.0,
        )  # fmt: skip
        opening = _polygon_mask(tgt_poly, np.array([x0, y0], np.float64), (y1 - y0, x1 - x0))
        cover = np.clip(seen - opening, 0.0, 1.0)
        if cover.max() < 0.5:
            continue
        if out is image:
            out = image.copy()
        roi = out[y0:y1, x0:x1]
        hole = cv2.dilate((cover > 0.25).astype(np.uint8), np.ones((3, 3), np.uint8))
        filled = cv2.inpaint(np.ascontiguousarray(roi), hole, 3, cv2.INPAINT_TELEA)
        alpha = np.clip(cv2.GaussianBlur(cover, (0, 0), 0.8) * 1.5, 0.0, 1.0)[..., None]
        out[y0:y1, x0:x1] = np.clip(roi * (1 - alpha) + filled * alpha + 0.5, 0, 255).astype(np.uint8)
    return out


EYE_LIDS = (
    (EYE_OUTER_R, LID_UPPER_R, LID_LOWER_R, EYE_INNER_R),
    (EYE_OUTER_L, LID_UPPER_L, LID_LOWER_L, EYE_INNER_L),
)  # (outer corner, upper lid outer -> inner, lower lid outer -> inner, inner corner) per eye


def keep_lids_open(source_mesh: np.ndarray, target_mesh: np.ndarray, keep: float) -> np.ndarray:
    """The target mesh with each upper-lid point held at least ``keep`` x its photo's lid gap
    above its lower-lid point (along the target face's down direction): what the spline may do.

    source_mesh, target_mesh: ``(478, 2+)`` in one pixel frame. Returns a float64 copy.
    """
    source_mesh = np.asarray(source_mesh, np.float64)
    out = np.array(target_mesh, np.float64)
    down_s = face_axes(source_mesh)[1]
    down_t = face_axes(out)[1]
    for _, upper, lower, _ in EYE_LIDS:
        upper, lower = np.array(upper), np.array(lower)
        floor = keep * np.maximum((source_mesh[lower, :2] - source_mesh[upper, :2]) @ down_s, 0.0)
        gap = (out[lower, :2] - out[upper, :2]) @ down_t
        short = gap < floor
        out[upper[short], :2] = out[lower[short], :2] - floor[short, None] * down_t
    return out


def lower_lids(
    map_x: np.ndarray, map_y: np.ndarray, spline_out: np.ndarray, target_out: np.ndarray, band: float
) -> tuple[np.ndarray, np.ndarray]:
    """Slide each upper lid down from where the spline put it to its target line (an occlusion).

    map_x, map_y: float32 ``(S, S)`` backward map; spline_out: ``(478, 2+)`` the mesh the spline
    was fitted to (:func:`keep_lids_open`), target_out: the target mesh, both in output pixels;
    band: lid-skin height above the lash line that stretches, / inter-ocular distance. Across the
    eye, at each position the lid has a drop ``d`` (target line minus spline line, down the face);
    output pixels from ``band`` above the spline's lid line down to the target line sample the
    map stretched from the band above the spline's line, so the lashes land on the target line
    and the eyeball under it is hidden. Returns new (map_x, map_y); the input maps are not changed.
    """
    import cv2

    spline_out = np.asarray(spline_out, np.float64)
    target_out = np.asarray(target_out, np.float64)
    across, down = face_axes(target_out)
    height = band * inter_ocular(target_out)
    size = map_x.shape[0]
    new_x = new_y = None
    for outer, upper, _, inner in EYE_LIDS:
        line = [outer, *upper, inner]
        origin = target_out[line, :2].mean(0)
        u = (target_out[line, :2] - origin) @ across
        v_target = (target_out[line, :2] - origin) @ down
        v_spline = (spline_out[line, :2] - origin) @ down
        drop = np.maximum(v_target - v_spline, 0.0)
        if drop.max() < 0.25:
            continue
        order = np.argsort(u)
        u, v_target, v_spline, drop = u[order], v_target[order], v_spline[order], drop[order]
        corners = target_out[line, :2]
        pad = height + drop.max() + 2
        x0, y0 = np.clip(np.floor(corners.min(0) - pad).astype(int), 0, size)
        x1, y1 = np.clip(np.ceil(corners.max(0) + pad).astype(int), 0, size)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        gx, gy = np.meshgrid(np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64))
        rel = np.stack([gx - origin[0], gy - origin[1]], -1)
        pu, pv = rel @ across, rel @ down
        inside = (pu > u[0]) & (pu < u[-1])
        d = np.interp(pu, u, drop) * inside
        vt = np.interp(pu, u, v_target)
        top = np.interp(pu, u, v_spline) - height
        hit = (d > 0) & (pv > top) & (pv < vt)
        if not hit.any():
            continue
        sample_v = np.where(hit, top + (pv - top) * height / (height + d), pv)
        shift = (sample_v - pv)[..., None] * down  # toward the forehead
        sx = (gx + shift[..., 0]).astype(np.float32)
        sy = (gy + shift[..., 1]).astype(np.float32)
        if new_x is None:
            new_x, new_y = map_x.copy(), map_y.copy()
        new_x[y0:y1, x0:x1] = cv2.remap(map_x, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        new_y[y0:y1, x0:x1] = cv2.remap(map_y, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return (map_x, map_y) if new_x is None else (new_x, new_y)


def warp_face(
    source_image: np.ndarray,
    source_mesh: np.ndarray,
    target_mesh: np.ndarray,
    size: int,
    source_to_output: np.ndarray,
    ring: tuple[np.ndarray, np.ndarray] | None = None,
    config: LandmarkWarpConfig = LandmarkWarpConfig(),
) -> np.ndarray:
    """Render the source face with its mesh moved onto ``target_mesh``.

    source_image: RGB uint8 ``(H, W, 3)``; source_mesh, target_mesh: float ``(478, 2+)`` in source
    pixels; size: output side; source_to_output: ``(2, 3)`` affine from source pixels to output
    pixels (e.g. :func:`~.face_track.crop_matrix`); ring: optional (source, target) ``(K, 2+)``
    points that move rigidly with the head. Returns RGB uint8 ``(size, size, 3)``.
    """
    import cv2

    source_mesh = np.asarray(source_mesh, np.float64)
    target_mesh = np.asarray(target_mesh, np.float64)
    spline_mesh = keep_lids_open(source_mesh, target_mesh, config.lid_keep) if config.eye_cover else target_mesh
    src = source_mesh[CONTROL_POINTS, :2]
    tgt = spline_mesh[CONTROL_POINTS, :2]
    if ring is not None:
        src = np.concatenate([src, np.asarray(ring[0], np.float64)[:, :2]])
        tgt = np.concatenate([tgt, np.asarray(ring[1], np.float64)[:, :2]])
    tgt_out = tgt @ source_to_output[:, :2].T + source_to_output[:, 2]
    map_x, map_y = warp_map(src, tgt_out, size, _affine_inverse(source_to_output), config)
    if config.eye_cover:
        target_out = target_mesh[:, :2] @ source_to_output[:, :2].T + source_to_output[:, 2]
        spline_out = spline_mesh[:, :2] @ source_to_output[:, :2].T + source_to_output[:, 2]
        map_x, map_y = lower_lids(map_x, map_y, spline_out, target_out, config.lid_band)
    out = cv2.remap(
        np.ascontiguousarray(source_image), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    if config.eye_cover:
        out = cover_eyes(out, map_x, map_y, source_mesh, target_out)
    if config.mouth_fill:
        wider = inner_mouth_opening(target_mesh) - inner_mouth_opening(source_mesh)
        strength = float(np.clip((wider - config.mouth_threshold) / config.mouth_threshold, 0.0, 1.0))
        if strength > 0:
            target_out = target_mesh[:, :2] @ source_to_output[:, :2].T + source_to_output[:, 2]
            out = paint_mouth(out, target_out, strength, config)
    return out


class LandmarkAnimator:
    """Animate one source face image with driving meshes (the checkpoint-free re-enactor).

    ``prepare(source_image, source_mesh)`` once: source_image RGB uint8 ``(H, W, 3)``, source_mesh
    float ``(478, 3)`` in its pixels (z in pixels too). Then each call ``(driving_mesh, reference_mesh,
    source_to_output, size)`` returns the RGB uint8 ``(size, size, 3)`` rendering.
    """

    def __init__(self, config: LandmarkWarpConfig = LandmarkWarpConfig(), mode: str = "relative"):
        if mode not in ("relative", "absolute"):
            raise ValueError(f"mode must be 'relative' or 'absolute', got {mode!r}")
        self.config, self.mode = config, mode
        self._gains = config.point_gains()
        self._image = self._mesh = self._ring = None

    def prepare(self, source_image: np.ndarray, source_mesh: np.ndarray) -> None:
        self._image = np.ascontiguousarray(source_image)
        self._mesh = np.asarray(source_mesh, np.float64)
        self._ring = _oval_ring(self._mesh, self.config.ring_scale)

    def set_gains(self, gains: dict[str, float]) -> None:
        """Use these series gains (see :data:`GAIN_AXES`) from now on."""
        self._gains = point_gains(gains)

    def target(self, driving_mesh: np.ndarray, reference_mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(target mesh (478, 3), moved ring (36, 3)) in source pixels."""
        if self._mesh is None:
            raise RuntimeError("call prepare() first")
        return transfer_motion(
            self._mesh, driving_mesh, reference_mesh, self.mode, extra=self._ring, gains=self._gains,
            max_mouth_opening=self.config.max_mouth_opening if self.mode == "relative" else None,
        )

    def __call__(
        self, driving_mesh: np.ndarray, reference_mesh: np.ndarray, source_to_output: np.ndarray, size: int = 256
    ) -> np.ndarray:
        target, ring = self.target(driving_mesh, reference_mesh)
        return warp_face(
            self._image, self._mesh, target, size, source_to_output, (self._ring, ring), self.config
        )


# --------------------------------------------------------------------------------------------
# Reference frame for relative motion

EXPRESSION_POINTS = np.array(sorted(set(CONTROL_POINTS.tolist()) - set(FACE_OVAL)), np.int64)
# expression points in groups that move independently: a blink moves only the lids, talking the lips
EXPRESSION_GROUPS = tuple(
    np.array(sorted(set(group)), np.int64) for group in (BROW_POINTS, LID_POINTS + IRIS_CENTRES, LIP_POINTS)
)


def neutral_scores(meshes: np.ndarray, found: np.ndarray) -> np.ndarray:
    """How far each frame is from a neutral, frontal face (lower = more neutral).

    meshes: float ``(T, 478, 3)`` x, y, z in the same pixel units (z already multiplied by the
    frame width); found: bool ``(T,)``. The score adds the head's |yaw| + |pitch| (degrees,
    :func:`signanon.landmarks.geometry.head_angles`) and, for each of the brows, the lids and the
    lips (:data:`EXPRESSION_GROUPS`), the RMS distance of its points from the clip's median face
    after similarity alignment (/ inter-ocular distance); each term is divided by its median over
    the clip so all count alike. Grouping matters: a blink moves only a few points, and scored on
    the whole face it looks as neutral as a still face, so a blink could become the reference and
    every open eye of the clip would read as a wide-eyed stare. Returns float64 ``(T,)``, inf
    where no face.
    """
    meshes = np.asarray(meshes, np.float64)
    found = np.asarray(found, bool)
    scores = np.full(len(meshes), np.inf)
    idx = np.nonzero(found)[0]
    if len(idx) == 0:
        return scores
    first = meshes[idx[0]]
    aligned = np.stack([apply_similarity(fit_stable(meshes[t], first), meshes[t]) for t in idx])
    median = np.median(aligned, axis=0)
    iod = inter_ocular(median)
    expression = np.empty((len(idx), len(EXPRESSION_GROUPS)))
    pose = np.empty(len(idx))
    for k, t in enumerate(idx):
        on_median = apply_similarity(fit_stable(meshes[t], median), meshes[t])
        for g, group in enumerate(EXPRESSION_GROUPS):
            diff = on_median[group] - median[group]
            expression[k, g] = np.sqrt((diff**2).sum(1).mean()) / iod
        pitch, yaw, _ = head_angles(meshes[t])
        pose[k] = abs(yaw) + abs(pitch)
    scores[idx] = pose / (np.median(pose) + 1e-6) + (expression / (np.median(expression, axis=0) + 1e-6)).sum(1)
    return scores


def median_face(
    meshes: np.ndarray, found: np.ndarray, index: int, mouth_like: float | None = None, share: float = 0.25
) -> np.ndarray:
    """The clip's median face in the pose of frame ``index``: the reference of relative motion.

    meshes: float ``(T, 478, 3)`` in one pixel frame (e.g. each frame's crop: the similarity
    alignment absorbs differing boxes); found: bool ``(T,)``. Every found frame is aligned onto
    frame ``index`` on the stable points (:func:`~signanon.landmarks.geometry.fit_stable`) and the
    per-coordinate median taken: a face whose brows, lids and lips sit where they sit most of the
    time, whatever single frame is chosen (no frame of a talking clip is fully neutral; a
    reference caught mid-blink or mid-word would offset every target).

    mouth_like: the source face's inner-mouth opening (:func:`inner_mouth_opening`); when given,
    the lips and the jaw (face-outline points below the mouth corners) come from the median of the
    ``share`` of frames whose opening is nearest to it instead. A photo with closed lips then
    pairs with the driver's closed mouth: measured from a half-open median, every closing of the
    driver's lips would push the photo's closed lips through each other and be clipped away.
    Returns float64 ``(478, 3)``.
    """
    meshes = np.asarray(meshes, np.float64)
    anchor = meshes[index]
    idx = np.nonzero(np.asarray(found, bool))[0]
    aligned = np.stack([apply_similarity(fit_stable(meshes[t], anchor), meshes[t]) for t in idx])
    face = np.median(aligned, axis=0)
    if mouth_like is not None and len(idx) >= 4:
        opening = np.array([inner_mouth_opening(m) for m in aligned])
        nearest = np.argsort(np.abs(opening - mouth_like))[: max(3, round(share * len(idx)))]
        down = face_axes(face)[1]
        corners = face[[LIP_OUTER_UPPER[0], LIP_OUTER_UPPER[-1]], :2].mean(0)
        jaw = [i for i in FACE_OVAL if (face[i, :2] - corners) @ down > 0]
        lower = np.array(sorted(set(LIP_POINTS) | set(jaw) | {CHIN}), np.int64)
        face[lower] = np.median(aligned[nearest][:, lower], axis=0)
    return face


def neutral_frame_index(meshes: np.ndarray, found: np.ndarray) -> int:
    """Index of the most neutral, frontal frame (see :func:`neutral_scores`); ValueError if none."""
    scores = neutral_scores(meshes, found)
    if not np.isfinite(scores).any():
        raise ValueError("no frame has a face")
    return int(np.argmin(scores))


# --------------------------------------------------------------------------------------------
# Gains measured for one job


AIM_SLOPE = 0.9  # read-back per unit of target: with the read-back's noise (r ~0.9) a std ratio ~1


def _response(rounds: list[dict[str, float]]) -> float:
    """How steeply the read-back's slope grows with the gain, ``slope ~ gain ** p``, from the last
    two calibration rounds (1 until there are two with different gains; p within 1-2.5: a flatter
    or falling slope is read as noise or saturation, where a larger step would smear the face).

    A lid warp is not linear in its gain: below some closing the spline squeezes the eye, past it
    the lid slides over the eyeball; on one photo the slope went 0.62 -> 1.28 for gain 1.6 -> 2.3
    (p ~2), so a plain ``gain * aim / slope`` step undershot the aim by a third."""
    if len(rounds) < 2:
        return 1.0
    a, b = rounds[-2], rounds[-1]
    if min(a["slope"], b["slope"], a["gain"], b["gain"]) <= 0 or abs(np.log(b["gain"] / a["gain"])) < 0.05:
        return 1.0
    return float(np.clip(np.log(b["slope"] / a["slope"]) / np.log(b["gain"] / a["gain"]), 1.0, 2.5))


def calibrate_gains(
    warper: LandmarkAnimator,
    meshes: np.ndarray,
    reference: np.ndarray,
    show,
    read,
    config: LandmarkWarpConfig = LandmarkWarpConfig(),
) -> tuple[dict[str, float], dict[str, list[dict[str, float]]]]:
    """Measure, for one source face and one driver, the gain each facial-grammar series needs.

    How much of a warped expression a viewer (here a landmark detector) reads back depends on
    the photo: faint brows, squinting lids, a small or blurred face all damp it. So some driving
    frames are rendered as they will be written and read back, and each series' read-back is
    regressed on the same series of the target mesh warped at unit gain (the driver's expression
    on the source face, exactly), then put per unit of the driver's own series (the ratio of the
    two series' spreads: on two shared photos the target at unit gain moves the lids 0.86 times as
    much as the driver, in each face's inter-ocular units): the slope is the strength a viewer
    sees, and the gain is
    divided by it, aiming at a slope of :data:`AIM_SLOPE` (``config.calibration_passes`` rounds,
    within ``config.gain_limits``). Past some displacement a warped face stops reading cleanly
    (the brows or lids smear): when a round's correlation drops by more than 0.1 below the best
    so far, the series keeps the measured gain whose slope came closest to the aim.

    warper: a prepared relative-mode :class:`LandmarkAnimator`; meshes: float ``(T, 478, 3)``
    driving meshes; reference: ``(478, 3)`` the reference driving mesh; show: ``driving mesh ->
    RGB uint8 frame`` rendered with the warper's current gains, in the framing of the output;
    read: ``frame -> (478, 2+) mesh in its pixels or None``. The frames used are spread evenly over
    the clip (not its extremes: a viewer reads small motions more weakly than large ones, and the
    small ones make most of a clip). Series the driver hardly moves (target std
    below 0.006 inter-ocular distances) keep their starting gain. Returns (gains, record): series
    name -> gain (the warper is left set to them), and name -> one {"gain", "slope", "r"} per
    round (the gain rendered, the read-back's slope and correlation) for the job summary.
    """
    meshes = np.asarray(meshes, np.float64)
    warper.set_gains({name: 1.0 for name in GAIN_AXES})
    unit = [grammar(warper.target(m, reference)[0]) for m in meshes]
    unit = {name: np.array([u[name] for u in unit]) for name in GAIN_AXES}
    driven = [grammar(m) for m in meshes]
    driven = {name: np.array([d[name] for d in driven]) for name in GAIN_AXES}
    count = max(4, int(config.calibration_frames))
    chosen = np.unique(np.linspace(0, len(meshes) - 1, min(count, len(meshes))).round().astype(int))
    low, high = config.gain_limits
    gains = {name: float(np.clip(value, low, high)) for name, value in config.series_gains().items()}
    record: dict[str, list[dict[str, float]]] = {}
    settled: set[str] = set()
    for _ in range(max(1, int(config.calibration_passes))):
        warper.set_gains(gains)
        seen = [read(show(meshes[t])) for t in chosen]
        keep = np.array([m is not None for m in seen])
        if keep.sum() < 5:
            break
        back = [grammar(m) for m in seen if m is not None]
        for name in GAIN_AXES:
            x = unit[name][chosen][keep]
            if name in settled or x.std() < 0.006:
                continue
            y = np.array([b[name] for b in back])
            # slope per unit of the driver's own series: the target at unit gain moves some series
            # (the lids) less or more than the driver does, in each face's inter-ocular units
            to_driver = x.std() / max(float(driven[name][chosen][keep].std()), 1e-9)
            slope = float(np.polyfit(x, y, 1)[0]) * to_driver
            r = float(np.corrcoef(x, y)[0, 1])
            rounds = record.setdefault(name, [])
            rounds.append({"gain": round(gains[name], 3), "slope": round(slope, 3), "r": round(r, 3)})
            best_r = max(m["r"] for m in rounds)
            if len(rounds) > 1 and r < best_r - 0.1:  # pushed too far: the face no longer reads cleanly
                usable = [m for m in rounds if m["r"] >= best_r - 0.05]
                gains[name] = min(usable, key=lambda m: abs(np.log(max(m["slope"], 1e-3) / AIM_SLOPE)))["gain"]
                settled.add(name)
                continue
            step = np.clip((AIM_SLOPE / slope) ** (1.0 / _response(rounds)), 0.6, 1.6) if slope > 0 else 1.6
            gains[name] = float(np.clip(gains[name] * step, low, high))
    warper.set_gains(gains)
    return gains, record
