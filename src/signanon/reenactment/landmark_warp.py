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
* relative mode: ``target = A(M(A^-1(S) + E))``: the source's face shape, the driver's expression
  and head motion relative to the reference. absolute mode: ``target = A(D)``: the driver's mesh
  placed where the source face is (the driver's face shape leaks into the output; TPSMM's
  "absolute" mode has the same property).

Warp (:func:`warp_face`): a TPS fitted from target points (output pixels) to source points (source
pixels) on a subset of ~150 mesh points, a ring outside the face oval that follows the head
rigidly (hair, ears) and fixed points on the output border (the background does not move). It is
evaluated on a coarse grid (every 4 pixels), upsampled and applied with ``cv2.remap``. When the
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
from ..landmarks.regions import (
    BROW_LOWER_L, BROW_LOWER_R, BROW_UPPER_L, BROW_UPPER_R, CHEEKS, CHIN, EYE_OUTER_L, EYE_OUTER_R,
    FACE_OVAL, FOREHEAD, INNER_LIP_CENTRE, IRIS_CENTRES, LID_LOWER_L, LID_LOWER_R, LID_UPPER_L, LID_UPPER_R,
    LIP_INNER_LOWER, LIP_INNER_UPPER, LIP_OUTER_LOWER, LIP_OUTER_UPPER, NOSE_BASE, NOSE_LINE,
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


@dataclass(frozen=True)
class LandmarkWarpConfig:
    """Settings of the landmark warp.

    grid_step: pixels between TPS evaluations (the map is upsampled in between); regularization:
    TPS smoothing in units of the output size squared (0 = interpolate exactly); ring_scale: the
    rigid ring sits this many times the oval's radius from the face centre; border_points: fixed
    points per output side; mouth_fill: paint the mouth interior when the driver opens it wider
    than the source; mouth_threshold: how much wider (inner-lip gap / inter-ocular distance).

    brow_gain, lid_gain, mouth_gain: factors on the driver's expression displacement (relative
    mode) of the brow, eyelid and lip points. A warp moves the source's pixels, it cannot redraw a
    lid over an eye or a brow's muscles, so a face warped by exactly the driver's displacement
    reads as a damped copy of the expression (measured by an independent MediaPipe read-back:
    brows and lids about 0.55-0.65 of the driver, ``benchmarks/bench_reenact.py``); these gains
    restore the perceived strength. Lids and inner lips never cross, whatever the gain.
    eye_cover: fill eyeball pixels the warp leaves outside the target eye opening with the
    surrounding skin (:func:`cover_eyes`), so a closed eye reads as closed.
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
    brow_gain: float = setting(1.8, "landmark warp: factor on the driver's brow motion", cli=False)
    lid_gain: float = setting(1.6, "landmark warp: factor on the driver's eyelid motion", cli=False)
    mouth_gain: float = setting(1.0, "landmark warp: factor on the driver's lip motion", cli=False)

    def point_gains(self) -> np.ndarray:
        """float64 ``(478,)``: the expression factor of each mesh point (1 outside brows, lids, lips)."""
        gains = np.ones(478)
        gains[list(BROW_POINTS)] = self.brow_gain
        gains[list(LID_POINTS)] = self.lid_gain
        gains[list(LIP_POINTS)] = self.mouth_gain
        return gains


# --------------------------------------------------------------------------------------------
# Motion transfer


def transfer_motion(
    source: np.ndarray,
    driving: np.ndarray,
    reference: np.ndarray,
    mode: str = "relative",
    extra: np.ndarray | None = None,
    gains: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Target mesh: the driving frame's motion on the source face (see the module docstring).

    source, driving, reference: float ``(478, 3)`` meshes, x, y, z in pixels of their own image
    (source in source pixels; driving and reference in the same driving pixels). mode: "relative"
    or "absolute". extra: optional ``(K, 3)`` source points that follow the head rigidly (no
    expression). gains: optional float ``(478,)`` factor on each point's expression ``E``
    (relative mode; :meth:`LandmarkWarpConfig.point_gains`); lids and inner lips are then kept from
    crossing (:func:`uncross`). Returns float64 ``(478, 3)`` target in source pixels and the moved
    ``extra``.
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
        expression = apply_similarity(invert_similarity(motion), driving) - reference
        in_ref = apply_similarity(invert_similarity(align), source)
        if gains is not None:
            expression = expression * np.asarray(gains, np.float64)[:, None]
            moved_ref = uncross(in_ref + expression, in_ref)
        else:
            moved_ref = in_ref + expression
        target = apply_similarity(align, apply_similarity(motion, moved_ref))
    else:
        raise ValueError(f"mode must be 'relative' or 'absolute', got {mode!r}")
    moved = None
    if extra is not None:
        moved = apply_similarity(align, apply_similarity(motion, apply_similarity(invert_similarity(align), np.asarray(extra, np.float64))))
    return target, moved


def uncross(mesh: np.ndarray, rest: np.ndarray, min_gap: float = 0.0) -> np.ndarray:
    """Keep each (upper, lower) lid and inner-lip pair of :data:`CLOSING_PAIRS` from crossing.

    mesh: float ``(478, 3)`` moved mesh; rest: ``(478, 3)`` the same face at rest, whose forehead
    -> chin direction (image plane) counts as "down". Where a lower point would pass above
    ``min_gap`` (pixels) below its upper point, both move to their midpoint along that direction
    (a closed lid / closed lips). Returns a float64 copy.
    """
    out = np.array(mesh, np.float64)
    upper, lower = (np.array(side, np.int64) for side in zip(*CLOSING_PAIRS))
    rest = np.asarray(rest, np.float64)
    down = rest[CHIN, :2] - rest[FOREHEAD, :2]
    down /= np.linalg.norm(down) + 1e-9
    gap = (out[lower, :2] - out[upper, :2]) @ down
    short = gap < min_gap
    if short.any():
        fix = 0.5 * (min_gap - gap[short])[:, None] * down
        out[upper[short], :2] -= fix
        out[lower[short], :2] += fix
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
    src = source_mesh[CONTROL_POINTS, :2]
    tgt = target_mesh[CONTROL_POINTS, :2]
    if ring is not None:
        src = np.concatenate([src, np.asarray(ring[0], np.float64)[:, :2]])
        tgt = np.concatenate([tgt, np.asarray(ring[1], np.float64)[:, :2]])
    tgt_out = tgt @ source_to_output[:, :2].T + source_to_output[:, 2]
    map_x, map_y = warp_map(src, tgt_out, size, _affine_inverse(source_to_output), config)
    out = cv2.remap(
        np.ascontiguousarray(source_image), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    if config.eye_cover:
        target_out = target_mesh[:, :2] @ source_to_output[:, :2].T + source_to_output[:, 2]
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

    def target(self, driving_mesh: np.ndarray, reference_mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(target mesh (478, 3), moved ring (36, 3)) in source pixels."""
        if self._mesh is None:
            raise RuntimeError("call prepare() first")
        return transfer_motion(
            self._mesh, driving_mesh, reference_mesh, self.mode, extra=self._ring, gains=self._gains
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


def neutral_scores(meshes: np.ndarray, found: np.ndarray) -> np.ndarray:
    """How far each frame is from a neutral, frontal face (lower = more neutral).

    meshes: float ``(T, 478, 3)`` x, y, z in the same pixel units (z already multiplied by the
    frame width); found: bool ``(T,)``. The score adds the head's |yaw| + |pitch| (degrees,
    :func:`signanon.landmarks.geometry.head_angles`) and the RMS distance of the expression points
    from the clip's median face after similarity alignment (/ inter-ocular distance), each divided
    by its median over the clip so both count alike. Returns float64 ``(T,)``, inf where no face.
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
    expression = np.empty(len(idx))
    pose = np.empty(len(idx))
    for k, t in enumerate(idx):
        on_median = apply_similarity(fit_stable(meshes[t], median), meshes[t])
        diff = on_median[EXPRESSION_POINTS] - median[EXPRESSION_POINTS]
        expression[k] = np.sqrt((diff**2).sum(1).mean()) / iod
        pitch, yaw, _ = head_angles(meshes[t])
        pose[k] = abs(yaw) + abs(pitch)
    scores[idx] = pose / (np.median(pose) + 1e-6) + expression / (np.median(expression) + 1e-6)
    return scores


def neutral_frame_index(meshes: np.ndarray, found: np.ndarray) -> int:
    """Index of the most neutral, frontal frame (see :func:`neutral_scores`); ValueError if none."""
    scores = neutral_scores(meshes, found)
    if not np.isfinite(scores).any():
        raise ValueError("no frame has a face")
    return int(np.argmin(scores))
