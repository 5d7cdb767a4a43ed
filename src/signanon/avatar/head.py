"""Drawing the avatar's head: hair cap and ears, Lambert-shaded skin mesh, fringe, brows, eyes,
nose and mouth, from a face placed by :class:`~.expression.FaceAnimator` (output px).

Drawing happens on an RGB ``uint8`` canvas ``ss`` times the output size with OpenCV's anti-aliased
primitives at sub-pixel precision (OpenCV is imported when drawing).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from ..landmarks.geometry import fit_stable
from ..landmarks.regions import (
    BROW_LOWER_L, BROW_LOWER_R, BROW_UPPER_L, BROW_UPPER_R, EYE_INNER_L, EYE_INNER_R, EYE_OUTER_L,
    EYE_OUTER_R, FACE_OVAL, FOREHEAD_ROW, FOREHEAD_TOP, INNER_LIP_CENTRE, IRIS_L, IRIS_R, LID_LOWER_L, LID_LOWER_R,
    LID_UPPER_L, LID_UPPER_R, LIP_INNER_LOWER, LIP_INNER_UPPER, LIP_OUTER_LOWER, LIP_OUTER_UPPER,
    MOUTH_CORNERS, NOSE_BASE, NOSTRILS,
)  # fmt: skip
from .canonical import CanonicalFace, load_canonical_face
from .style import AvatarStyle

# the fringe reaches this fraction of the way from FOREHEAD_TOP down to FOREHEAD_ROW, per point
# (a fringe swept to the image left)
FRINGE_DEPTH = (0.0, 0.6, 1.0, 1.1, 1.05, 0.9, 0.7, 0.5, 0.35, 0.25, 0.2, 0.15, 0.0)


def _rows(idx: Sequence[int]) -> np.ndarray:
    return np.asarray(idx, np.intp)


_LIGHT = np.array([-0.35, -0.55, -1.0]) / np.linalg.norm([-0.35, -0.55, -1.0])  # toward the light
_AMBIENT, _DIFFUSE = 0.50, 0.55
_SHADE_LEVELS = 20  # colour quantisation: one fillPoly call per (depth layer, level)
_DEPTH_LAYERS = 3
_SHIFT = 4  # subpixel bits for OpenCV drawing
_CLOSED_EYE = 0.09  # eye opening / eye width below which an eye is drawn closed
_OPEN_MOUTH = 0.03  # inner-lip gap / face size above which the mouth interior shows
# The shadowed corners of the mouth: a dark stroke at each corner, from this far inside it to
# this far beyond (face units), this wide but never under one output pixel, the lips' colour
# times the shade. On a small face the tapering lip ends fade out over a pixel or two, and
# MediaPipe read the mouth's width at about half its drawn change; with the corners ASL HOUSE's
# three cuts read width gain 0.49-0.60 -> 0.65-0.98 (benchmarks/signing_issue11.txt). Darker (0.3)
# read the same but brought the dark-skin avatar within dlib's 0.6 of a real face (0.592).
_CORNER_IN, _CORNER_OUT, _CORNER_WIDTH, _CORNER_SHADE = 0.035, 0.012, 0.02, 0.45
_LIP_MIDDLE = LIP_INNER_UPPER.index(INNER_LIP_CENTRE[0])  # the midline's row of the inner lip lines
_SCLERA = (236, 234, 228)
_PUPIL = (18, 16, 18)
_LASH = (40, 30, 28)
# the head's back and top (hair cap) as an ellipsoid in face units: centre and radii
_SKULL_CENTRE = np.array([0.0, -0.16, 0.72])
_SKULL_RADII = np.array([0.90, 1.02, 1.06])
_HAIR_BOTTOM = 0.38  # face-unit y below which the ellipsoid is not hair
_EAR_CENTRE = np.array([0.86, 0.30, 0.72])  # right ear mirrored in x
_EAR_RADII = (0.13, 0.25)


@lru_cache(maxsize=4)
def _unit_sphere(n_lat: int = 14, n_lon: int = 28) -> np.ndarray:
    lat = np.linspace(-np.pi / 2, np.pi / 2, n_lat)
    lon = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    return np.stack([np.cos(la) * np.cos(lo), np.sin(la), np.cos(la) * np.sin(lo)], -1).reshape(-1, 3)


def _fixed(points2d: np.ndarray) -> np.ndarray:
    """(N, 2) float px -> int32 fixed point for OpenCV's ``shift``."""
    return np.round(np.asarray(points2d) * (1 << _SHIFT)).astype(np.int32)


def _shade(colour, factor: float | np.ndarray) -> tuple[int, int, int]:
    c = np.clip(np.asarray(colour, np.float64) * factor, 0, 255)
    return tuple(int(v) for v in c)


def _draw_hair_and_ears(img, cv2, pose, style: AvatarStyle) -> None:
    """Hair cap (upper part of a head ellipsoid) and ears, turned with pose = (s, R, t) to canvas px."""
    s, rot, t = pose
    cap = _unit_sphere() * _SKULL_RADII + _SKULL_CENTRE
    cap = cap[cap[:, 1] < _HAIR_BOTTOM]
    proj = (s * cap @ rot.T + t)[:, :2]
    hull = cv2.convexHull(_fixed(proj))
    cv2.fillPoly(img, [hull], style.hair, cv2.LINE_AA, shift=_SHIFT)
    angle = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    for side in (-1.0, 1.0):
        centre = _EAR_CENTRE * np.array([side, 1.0, 1.0])
        normal = np.array([side * 0.6, 0.0, -0.8])  # the ear faces sideways and forward
        if (rot @ normal)[2] > 0.2:  # turned away: hidden behind the head
            continue
        across = np.cross(normal, [0.0, 1.0, 0.0])
        ring = centre + _EAR_RADII[0] * np.cos(angle)[:, None] * across + _EAR_RADII[1] * np.sin(angle)[:, None] * np.array([0.0, 1.0, 0.0])
        pts = (s * ring @ rot.T + t)[:, :2]
        cv2.fillPoly(img, [_fixed(pts)], _shade(style.skin, 0.82), cv2.LINE_AA, shift=_SHIFT)
        inner = centre + 0.55 * (ring - centre) + np.array([0.0, 0.02, 0.0])
        pts = (s * inner @ rot.T + t)[:, :2]
        cv2.fillPoly(img, [_fixed(pts)], _shade(style.skin, 0.68), cv2.LINE_AA, shift=_SHIFT)


def _draw_fringe(img, cv2, q: np.ndarray, style: AvatarStyle) -> None:
    """Hair over the top of the forehead, on the mesh surface (q: (478, 2) canvas px)."""
    top, row = q[_rows(FOREHEAD_TOP)], q[_rows(FOREHEAD_ROW)]
    lower = top + np.asarray(FRINGE_DEPTH)[:, None] * (row - top)
    top = top - 0.1 * (row - top)  # overlap the hair cap: no seam along the mesh border
    cv2.fillPoly(img, [_fixed(np.concatenate([top, lower[::-1]]))], style.hair, cv2.LINE_AA, shift=_SHIFT)


def _draw_mesh(img, cv2, p: np.ndarray, tris: np.ndarray, style: AvatarStyle) -> None:
    """Lambert-shaded skin triangles, back faces culled, far depth layers first.

    p: (478, 3) canvas px. Each triangle gets the mean Lambert shade of its three corners, shaded
    with vertex normals (area-weighted face normals), so neighbouring facets differ only slightly.
    """
    a, b, c = p[tris[:, 0]], p[tris[:, 1]], p[tris[:, 2]]
    normal = np.cross(b - a, c - a)  # toward the viewer (-z) on a face that faces the camera
    flat_idx = tris.ravel()
    vnormal = np.stack(
        [np.bincount(flat_idx, np.repeat(normal[:, k], 3), minlength=len(p)) for k in range(3)], 1
    )
    vnormal /= np.linalg.norm(vnormal, axis=1, keepdims=True) + 1e-9
    lambert = np.clip(vnormal @ _LIGHT, 0.0, 1.0)[tris].mean(1)
    vis = np.flatnonzero(normal[:, 2] < 0)
    if len(vis) == 0:
        return
    level = np.round(lambert[vis] * (_SHADE_LEVELS - 1)).astype(np.int64)
    depth = (a[vis, 2] + b[vis, 2] + c[vis, 2]) / 3
    edges = np.quantile(depth, np.linspace(0, 1, _DEPTH_LAYERS + 1)[1:-1])
    layer = _DEPTH_LAYERS - 1 - np.searchsorted(edges, depth)  # 0 = farthest, drawn first
    key = layer * _SHADE_LEVELS + level
    order = np.argsort(key, kind="stable")
    key = key[order]
    poly = _fixed(p[:, :2])[tris[vis[order]]]  # (V, 3, 2) int32
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], len(key)]
    factors = _AMBIENT + _DIFFUSE * np.arange(_SHADE_LEVELS) / (_SHADE_LEVELS - 1)
    colours = np.clip(np.outer(factors, style.skin), 0, 255).astype(int).tolist()
    for lo, hi in zip(starts, ends):
        cv2.fillPoly(img, poly[lo:hi], colours[key[lo] % _SHADE_LEVELS], cv2.LINE_8, shift=_SHIFT)


def _clipped(img, cv2, poly: np.ndarray, draw) -> None:
    """Run ``draw(roi, offset)`` on a copy of poly's bounding box and keep it inside poly only."""
    h, w = img.shape[:2]
    x0, y0 = np.floor(poly.min(0)).astype(int) - 2
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 3
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return
    roi = img[y0:y1, x0:x1]
    layer = roi.copy()
    draw(layer, np.array([x0, y0], np.float64))
    mask = np.zeros(roi.shape[:2], np.uint8)
    cv2.fillPoly(mask, [_fixed(poly - [x0, y0])], 255, cv2.LINE_AA, shift=_SHIFT)
    alpha = (mask.astype(np.float32) / 255.0)[..., None]
    roi[:] = (layer * alpha + roi * (1 - alpha)).astype(np.uint8)


def _draw_eye(img, cv2, q, eye, style: AvatarStyle, unit: float) -> None:
    """One eye: sclera inside the lids, iris + pupil clipped to the opening, lid line and lashes.

    q: (478, 2) canvas px; eye: (outer corner, inner corner, upper lid, lower lid, iris) indices.
    """
    outer, inner, upper, lower, iris = eye
    up, lo = q[_rows(upper)], q[_rows(lower)]
    corner_o, corner_i = q[outer], q[inner]
    contour = np.concatenate([[corner_o], up, [corner_i], lo[::-1]])
    width = np.linalg.norm(corner_i - corner_o) + 1e-9
    opening = float(np.max(lo[:, 1] - up[:, 1])) / width
    lid_w = max(1, int(round(0.018 * unit)))
    upper_line = np.concatenate([[corner_o], up, [corner_i]])
    if opening < _CLOSED_EYE:
        cv2.polylines(img, [_fixed(upper_line)], False, _LASH, lid_w, cv2.LINE_AA, shift=_SHIFT)
        return
    centre = q[iris[0]]
    radius = float(np.mean(np.linalg.norm(q[_rows(iris[1:])] - centre, axis=1)))

    def paint(roi, off):
        cv2.fillPoly(roi, [_fixed(contour - off)], _SCLERA, cv2.LINE_AA, shift=_SHIFT)
        c = _fixed((centre - off)[None])[0]
        cv2.circle(roi, tuple(int(v) for v in c), int(radius * (1 << _SHIFT)), style.iris, -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(roi, tuple(int(v) for v in c), int(0.45 * radius * (1 << _SHIFT)), _PUPIL, -1, cv2.LINE_AA, _SHIFT)
        glint = c + _fixed(np.array([[-0.3, -0.35]]) * radius)[0]
        cv2.circle(roi, tuple(int(v) for v in glint), int(0.16 * radius * (1 << _SHIFT)), (250, 250, 250), -1, cv2.LINE_AA, _SHIFT)

    _clipped(img, cv2, contour, paint)
    cv2.polylines(img, [_fixed(upper_line)], False, _LASH, lid_w + 1, cv2.LINE_AA, shift=_SHIFT)
    cv2.polylines(img, [_fixed(np.concatenate([lo, [corner_i]]))], False, _shade(style.skin, 0.7),
                  max(1, lid_w // 2), cv2.LINE_AA, shift=_SHIFT)  # fmt: skip


def _draw_nose(img, cv2, q: np.ndarray, style: AvatarStyle, unit: float) -> None:
    """A shadow line along the base of the nose and the nostrils (q: (478, 2) canvas px)."""
    width = max(1, int(round(0.014 * unit)))
    base = _fixed(q[_rows(NOSE_BASE)])
    cv2.polylines(img, [base], False, _shade(style.skin, 0.68), width, cv2.LINE_AA, shift=_SHIFT)
    for top, bottom in NOSTRILS:
        a, b = _fixed(q[[top, bottom]])
        cv2.line(img, tuple(map(int, a)), tuple(map(int, b)), _shade(style.skin, 0.5), width + 1, cv2.LINE_AA, _SHIFT)


def _parted(inner_up: np.ndarray, inner_lo: np.ndarray, down: np.ndarray, rest_gap: float,
            parting: float) -> tuple[np.ndarray, np.ndarray]:
    """The inner lip lines (each (11, 2) canvas px, corner to corner) moved apart along ``down``
    (the face's downward unit vector in the image, (2,)) by up to ``parting`` canvas px in the
    middle, tapering to none at the corners: none while the middle gap is under half of
    ``rest_gap`` (canvas px), all of it from ``rest_gap`` up."""
    gap = float((inner_lo[_LIP_MIDDLE] - inner_up[_LIP_MIDDLE]) @ down)
    open_ = float(np.clip((gap - 0.5 * rest_gap) / (0.5 * rest_gap + 1e-9), 0.0, 1.0))
    shift = 0.5 * parting * open_ * np.sin(np.linspace(0.0, np.pi, len(inner_up)))[:, None] * down
    return inner_up - shift, inner_lo + shift


def _draw_mouth(img, cv2, q: np.ndarray, style: AvatarStyle, unit: float, ss: int, down: np.ndarray,
                rest_gap: float) -> None:
    """Lips with shadowed corners; when they part, the dark mouth with a hint of upper and lower
    teeth (q: canvas px; ``ss`` canvas px per output px; ``down``: the face's downward unit vector
    in the image; ``rest_gap``: the canonical face's inner-lip gap in the middle, face units)."""
    inner_up, inner_lo = _parted(q[_rows(LIP_INNER_UPPER)], q[_rows(LIP_INNER_LOWER)], down, rest_gap * unit,
                                 style.rest_parting * unit)
    outer_up, outer_lo = q[_rows(LIP_OUTER_UPPER)], q[_rows(LIP_OUTER_LOWER)]
    gap = float(np.max(inner_lo[:, 1] - inner_up[:, 1]))
    inner = np.concatenate([inner_up, inner_lo[-2:0:-1]])
    if gap > _OPEN_MOUTH * unit:
        def paint(roi, off):
            cv2.fillPoly(roi, [_fixed(inner - off)], style.mouth_interior, cv2.LINE_AA, shift=_SHIFT)
            band = min(0.30 * gap, 0.07 * unit)
            front = inner_up[2:-2]  # no teeth in the mouth corners
            teeth = np.concatenate([front, front[::-1] + [0, band]])
            cv2.fillPoly(roi, [_fixed(teeth - off)], style.teeth, cv2.LINE_AA, shift=_SHIFT)
            front = inner_lo[3:-3]
            lower = np.concatenate([front, front[::-1] - [0, 0.4 * band]])
            cv2.fillPoly(roi, [_fixed(lower - off)], _shade(style.teeth, 0.72), cv2.LINE_AA, shift=_SHIFT)

        _clipped(img, cv2, inner, paint)
    upper_lip = np.concatenate([outer_up, inner_up[::-1]])
    lower_lip = np.concatenate([outer_lo, inner_lo[::-1]])
    cv2.fillPoly(img, [_fixed(upper_lip)], _shade(style.lips, 0.88), cv2.LINE_AA, shift=_SHIFT)
    cv2.fillPoly(img, [_fixed(lower_lip)], style.lips, cv2.LINE_AA, shift=_SHIFT)
    line_w = max(1, int(round(0.012 * unit)))
    cv2.polylines(img, [_fixed(inner_up)], False, _shade(style.lips, 0.55), line_w, cv2.LINE_AA, shift=_SHIFT)
    _draw_mouth_corners(img, cv2, q, style, unit, ss)


def _draw_mouth_corners(img, cv2, q: np.ndarray, style: AvatarStyle, unit: float, ss: int) -> None:
    """The shadow in each corner of the mouth, along the line through both corners (canvas px)."""
    corners = q[list(MOUTH_CORNERS)]
    centre = corners.mean(axis=0)
    width = max(1, int(round(max(_CORNER_WIDTH * unit, ss))))
    for corner in corners:
        d = corner - centre
        d = d / (float(np.hypot(*d)) + 1e-9)
        a, b = _fixed(np.array([corner - d * _CORNER_IN * unit, corner + d * _CORNER_OUT * unit]))
        cv2.line(img, tuple(map(int, a)), tuple(map(int, b)), _shade(style.lips, _CORNER_SHADE), width,
                 cv2.LINE_AA, _SHIFT)


def draw_head(
    img: np.ndarray, face: np.ndarray, style: AvatarStyle, ss: int, features: bool = True, canonical: CanonicalFace | None = None
) -> None:
    """Draw the shaded head (hair, ears, skin, brows, eyes, nose, lips) into ``img`` in place.

    img: RGB uint8 (H, W, 3) canvas at ``ss`` times the output size; face: (478, 3) float output
    px from :class:`FaceAnimator` (x, y multiplied by ss here; z = depth, smaller = closer).
    ``features`` False: hair, ears and skin only (the identity guard's blank face). ``canonical``:
    the canonical face ``face`` was animated on (default: the average face).
    """
    import cv2

    canon = canonical or load_canonical_face()
    p = np.asarray(face, np.float64) * ss
    q = p[:, :2]
    pose = fit_stable(canon.points, p)
    unit = pose[0]  # canvas px per face unit
    _draw_hair_and_ears(img, cv2, pose, style)
    oval = q[_rows(FACE_OVAL)]
    cv2.fillPoly(img, [_fixed(oval)], _shade(style.skin, 0.8), cv2.LINE_AA, shift=_SHIFT)
    _draw_mesh(img, cv2, p, canon.triangles, style)
    _draw_fringe(img, cv2, q, style)
    if not features:
        return
    _draw_nose(img, cv2, q, style, unit)
    rot = pose[1]
    for eye, bu, bl, side in (
        ((EYE_OUTER_R, EYE_INNER_R, LID_UPPER_R, LID_LOWER_R, IRIS_R), BROW_UPPER_R, BROW_LOWER_R, -1.0),
        ((EYE_OUTER_L, EYE_INNER_L, LID_UPPER_L, LID_LOWER_L, IRIS_L), BROW_UPPER_L, BROW_LOWER_L, 1.0),
    ):
        # hide the far eye when the head is turned so far that the eye faces away
        if (rot @ np.array([0.45 * side, 0.0, -1.0]))[2] > 0.0:
            continue
        _draw_eye(img, cv2, q, eye, style, unit)
        brow = np.concatenate([q[_rows(bu)], q[_rows(bl)][::-1]])
        cv2.fillPoly(img, [_fixed(brow)], style.brows, cv2.LINE_AA, shift=_SHIFT)
    if (rot @ np.array([0.0, 0.0, -1.0]))[2] < 0.3:
        down = rot[:2, 1] / (float(np.hypot(*rot[:2, 1])) + 1e-9)  # the face's y axis in the image
        upper, lower = INNER_LIP_CENTRE
        rest_gap = float(canon.points[lower, 1] - canon.points[upper, 1])
        _draw_mouth(img, cv2, q, style, unit, ss, down, rest_gap)
