"""The synthetic signer's face: a canonical face that carries the signer's expression and head pose.

The signer's own face geometry identifies them, so it is never drawn. Instead a neutral, frontal
*canonical* mesh (the average of several people, see ``assets/SOURCES.md``) is deformed by the
signer's **expression** (their mesh minus their own neutral mesh, after removing head pose and
expressed relative to their own face size) and turned by their **head pose**, so brows, blinks,
gaze, mouth shapes, nods and tilts survive while the face shape does not.

Coordinates
-----------
*Face units*: the canonical mesh is stored with the outer eye corners (mesh points 33 and 263) 1
apart, origin at point 168 (nose bridge between the eyes), x to the image right, y down, z away from
the viewer (MediaPipe's convention: smaller z = closer). Mesh point ``i`` is row ``33 + i`` of the
shared ``(586, 3)`` frame array (see :mod:`signanon.landmarks.layout`); in those rows x, y are image
pixels and z is MediaPipe's z, which becomes pixel-like once multiplied by the frame width.

Output: ``(478, 3)`` float32 in output pixels (x right, y down), z a depth in the same units
relative to point 168, smaller = closer.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from .style import AvatarStyle

N_FACE = 478
ASSET_PATH = Path(__file__).parent / "assets" / "canonical_face.npz"

# --- mesh indices (MediaPipe face mesh, 468 points + 10 iris points) ------------------------------
NOSE_BRIDGE = 168
EYE_OUTER_R, EYE_INNER_R = 33, 133  # the signer's right eye (image left on a frontal face)
EYE_OUTER_L, EYE_INNER_L = 263, 362
IRIS_R = (468, 469, 470, 471, 472)  # centre first
IRIS_L = (473, 474, 475, 476, 477)

# eyelid contour: upper and lower lids as pairs, from the outer to the inner corner
LID_UPPER_R = (246, 161, 160, 159, 158, 157, 173)
LID_LOWER_R = (7, 163, 144, 145, 153, 154, 155)
LID_UPPER_L = (466, 388, 387, 386, 385, 384, 398)
LID_LOWER_L = (249, 390, 373, 374, 380, 381, 382)

# eyebrows: upper and lower edge, from the outer end to the inner end
BROW_UPPER_R = (70, 63, 105, 66, 107)
BROW_LOWER_R = (46, 53, 52, 65, 55)
BROW_UPPER_L = (300, 293, 334, 296, 336)
BROW_LOWER_L = (276, 283, 282, 295, 285)

# lips, from the right mouth corner (61 / 78) to the left one (291 / 308)
LIP_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIP_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIP_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIP_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)

NOSE_BASE = (64, 98, 97, 2, 326, 327, 294)
NOSTRILS = ((79, 20), (309, 250))  # (nostril point, point below it): a small dark slit each side

# points that move little with expression: forehead, temples, nose bridge, cheekbones, eye corners
STABLE = (
    10, 151, 9, 8, 168, 6, 197, 195, 5, 4,
    109, 338, 67, 297, 103, 332, 54, 284, 108, 337, 69, 299, 104, 333,
    21, 251, 162, 389, 127, 356, 234, 454, 93, 323,
    33, 133, 362, 263, 243, 463, 226, 446,
    116, 345, 117, 346, 118, 347, 123, 352, 50, 280, 101, 330, 36, 266,
    122, 351, 188, 412, 114, 343, 196, 419, 174, 399,
)  # fmt: skip

# fringe: the upper face outline (image left to right) and the forehead row below it; the hair
# reaches this fraction of the way down (a fringe swept to the image left)
FRINGE_TOP = (162, 21, 54, 103, 67, 109, 10, 338, 297, 332, 284, 251, 389)
FRINGE_ROW = (139, 71, 68, 104, 69, 108, 151, 337, 299, 333, 298, 301, 368)
FRINGE_DEPTH = (0.0, 0.6, 1.0, 1.1, 1.05, 0.9, 0.7, 0.5, 0.35, 0.25, 0.2, 0.15, 0.0)

# face outline (the mesh's silhouette on a frontal face), clockwise from the forehead top
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip


# --- geometry ------------------------------------------------------------------------------------


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity transform (Umeyama): ``dst ≈ s * src @ R.T + t``.

    src, dst: (N, 3) float arrays of corresponding points, N >= 3. Returns ``(s, R, t)``: scale
    s > 0, a proper rotation R (3, 3) float64 (det +1, no reflection), translation t (3,) float64.
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


def triangles_from_edges(edges: Sequence[tuple[int, int]], reference: np.ndarray) -> np.ndarray:
    """Mesh triangles from an edge list (e.g. mediapipe's ``FACEMESH_TESSELATION``).

    Triangles are the 3-cliques of the edge graph; a clique whose three edges are each shared by
    more than two cliques is not a mesh face and is dropped. Triangles are oriented consistently
    (neighbours run their shared edge in opposite directions), the whole so that on ``reference``
    ((N, 3) points, x right, y down, z away from the viewer) most normals ``cross(b - a, c - a)``
    point toward the viewer (negative z). Returns (T, 3) int32.
    """
    und = {tuple(sorted(map(int, e))) for e in edges if e[0] != e[1]}
    nbrs: dict[int, set[int]] = {}
    for a, b in und:
        nbrs.setdefault(a, set()).add(b)
        nbrs.setdefault(b, set()).add(a)
    tris = {tuple(sorted((a, b, k))) for a, b in und for k in nbrs[a] & nbrs[b]}
    count: dict[tuple[int, int], int] = {}
    for t in tris:
        for e in ((t[0], t[1]), (t[0], t[2]), (t[1], t[2])):
            count[e] = count.get(e, 0) + 1
    keep = [
        t for t in sorted(tris)
        if not all(count[e] > 2 for e in ((t[0], t[1]), (t[0], t[2]), (t[1], t[2])))
    ]  # fmt: skip
    tri = _orient(np.array(keep, np.int32))
    p = np.asarray(reference, np.float64)
    normal_z = np.cross(p[tri[:, 1]] - p[tri[:, 0]], p[tri[:, 2]] - p[tri[:, 0]])[:, 2]
    if np.sum(normal_z > 0) > np.sum(normal_z < 0):
        tri = tri[:, [0, 2, 1]]
    return tri


def _orient(tri: np.ndarray) -> np.ndarray:
    """Flip triangles so that neighbours run their shared edge in opposite directions (per
    connected piece, starting from its first triangle)."""
    tri = tri.copy()
    by_edge: dict[tuple[int, int], list[int]] = {}
    for i, t in enumerate(tri):
        for k in range(3):
            by_edge.setdefault(tuple(sorted((int(t[k]), int(t[(k + 1) % 3])))), []).append(i)
    done = np.zeros(len(tri), bool)
    for seed in range(len(tri)):
        if done[seed]:
            continue
        done[seed] = True
        stack = [seed]
        while stack:
            i = stack.pop()
            t = tri[i]
            for k in range(3):
                a, b = int(t[k]), int(t[(k + 1) % 3])
                for j in by_edge[tuple(sorted((a, b)))]:
                    if done[j]:
                        continue
                    u = tri[j]
                    same_way = any(int(u[m]) == a and int(u[(m + 1) % 3]) == b for m in range(3))
                    if same_way:
                        tri[j] = u[[0, 2, 1]]
                    done[j] = True
                    stack.append(j)
    return tri


@dataclass(frozen=True)
class CanonicalFace:
    """The neutral canonical face.

    points:    (478, 3) float32 in face units (outer eye corners 1 apart, origin at point 168,
               x right, y down, z away from the viewer), frontal, left-right symmetric.
    triangles: (T, 3) int32 mesh triangles, oriented so their normal faces the viewer (-z) on the
               frontal face; eyes and mouth are holes.
    """

    points: np.ndarray
    triangles: np.ndarray


@lru_cache(maxsize=1)
def load_canonical_face(path: str | None = None) -> CanonicalFace:
    """The canonical face asset (cached). ``path`` overrides the packaged ``canonical_face.npz``."""
    with np.load(path or ASSET_PATH) as npz:
        points = npz["points"].astype(np.float32)
        triangles = npz["triangles"].astype(np.int32)
    points.setflags(write=False)
    triangles.setflags(write=False)
    return CanonicalFace(points=points, triangles=triangles)


def _rows(idx: Sequence[int]) -> np.ndarray:
    return np.asarray(idx, np.intp)


def _to_metric(points: np.ndarray, width: int) -> np.ndarray:
    """Frame rows (478, 3): x, y px and MediaPipe z -> (478, 3) float64 with z in px too."""
    p = np.asarray(points, np.float64).copy()
    p[:, 2] *= width
    return p


def _face_present(confidence: np.ndarray | None) -> bool:
    return confidence is not None and bool(np.all(np.asarray(confidence)[:468] > 0))


def _head_pose(reference: np.ndarray, metric: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity from reference face units to the frame's metric mesh, on the stable points."""
    rows = _rows(STABLE)
    return similarity_fit(reference[rows], metric[rows])


def _normalise(metric: np.ndarray, pose: tuple[float, np.ndarray, np.ndarray]) -> np.ndarray:
    """Undo head pose and size: metric (478, 3) -> (478, 3) in the reference's face units."""
    s, rot, t = pose
    return (metric - t) @ rot / s


def rotation_angles(rot: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a head rotation R (x right, y down, z away).

    yaw: about the vertical axis, pitch: about the horizontal axis (nod), roll: in the image plane
    (tilt). R = Ry(yaw) @ Rx(pitch) @ Rz(roll).
    """
    r = np.asarray(rot, np.float64)
    pitch = np.degrees(np.arcsin(np.clip(-r[1, 2], -1.0, 1.0)))
    yaw = np.degrees(np.arctan2(r[0, 2], r[2, 2]))
    roll = np.degrees(np.arctan2(r[1, 0], r[1, 1]))
    return float(yaw), float(pitch), float(roll)


# --- expression transfer -------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceConfig:
    """How much of the signer's expression reaches the canonical face.

    expression_gain: factor on every expression offset (brows, lips, jaw, cheeks); 1 = as signed.
    gaze_gain:       factor on the iris offset from its neutral place in the eye.
    max_eye_opening: cap on the eye-opening ratio (current / neutral) for wide-open eyes.
    max_offset:      cap (face units) on any point's expression offset: a hand over the face can
                     throw MediaPipe's mesh far off; a yawn moves the chin ~0.4.
    min_calibration_frames: fewer usable face frames than this -> no expression is transferred
                     (head pose only), since a neutral estimated from so few frames is unreliable.
    """

    expression_gain: float = 1.0
    gaze_gain: float = 1.0
    max_eye_opening: float = 1.6
    max_offset: float = 0.6
    min_calibration_frames: int = 3


def _pair_opening(mesh: np.ndarray, upper: Sequence[int], lower: Sequence[int]) -> np.ndarray:
    """(K,) vertical gaps lower - upper (face units, y down) of the K lid/lip point pairs."""
    return mesh[_rows(lower), 1] - mesh[_rows(upper), 1]


def _iris_offset(mesh: np.ndarray, iris: Sequence[int], outer: int, inner: int) -> np.ndarray:
    """(2,) iris centre relative to the eye-corner midpoint, in units of the eye width (x, y)."""
    mid = 0.5 * (mesh[outer, :2] + mesh[inner, :2])
    width = np.linalg.norm(mesh[outer, :2] - mesh[inner, :2]) + 1e-9
    return (mesh[iris[0], :2] - mid) / width


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
            _to_metric(p, width) for p, c in faces if p is not None and _face_present(c)
        ]
        if len(metrics) < max(1, config.min_calibration_frames):
            return cls(canonical, None, width, height, config)
        reference = canonical.points.astype(np.float64)
        for _ in range(2):
            normed = np.stack([_normalise(m, _head_pose(reference, m)) for m in metrics])
            reference = np.median(normed, axis=0)
        return cls(canonical, reference, width, height, config)

    def head_pose(self, points: np.ndarray | None, confidence: np.ndarray | None = None):
        """``(s, R, t)`` from face units to the frame's mesh (x, y px, z MediaPipe z x width; see
        :func:`similarity_fit`), or None without a face. confidence None = all points present."""
        if points is None or (confidence is not None and not _face_present(confidence)):
            return None
        ref = self.neutral if self.neutral is not None else self.canonical.points.astype(np.float64)
        return _head_pose(ref, _to_metric(points, self.width))

    def expression(self, points: np.ndarray, confidence: np.ndarray | None = None) -> np.ndarray:
        """(478, 3) float64 canonical face (face units, frontal) with this frame's expression."""
        canon = self.canonical.points.astype(np.float64)
        if self.neutral is None or points is None:
            return canon.copy()
        pose = self.head_pose(points, confidence)
        if pose is None:
            return canon.copy()
        return self._transfer(_normalise(_to_metric(points, self.width), pose))

    def _transfer(self, mesh: np.ndarray) -> np.ndarray:
        cfg = self.config
        canon = self.canonical.points.astype(np.float64)
        neutral = self.neutral
        offset = cfg.expression_gain * (mesh - neutral)
        length = np.linalg.norm(offset, axis=1, keepdims=True)
        offset *= np.minimum(1.0, cfg.max_offset / np.maximum(length, 1e-9))
        out = canon + offset
        for upper, lower in ((LID_UPPER_R, LID_LOWER_R), (LID_UPPER_L, LID_LOWER_L)):
            self._transfer_lids(out, mesh, upper, lower)
        for iris, outer, inner in ((IRIS_R, EYE_OUTER_R, EYE_INNER_R), (IRIS_L, EYE_OUTER_L, EYE_INNER_L)):
            self._transfer_iris(out, mesh, iris, outer, inner)
        self._close_lips(out)
        return out

    def _transfer_lids(self, out, mesh, upper, lower) -> None:
        """Eye opening as a ratio of the signer's own neutral opening (a closed eye stays closed)."""
        neutral_gap = _pair_opening(self.neutral, upper, lower)
        gap = _pair_opening(mesh, upper, lower)
        ratio = np.clip(gap / np.maximum(neutral_gap, 1e-6), 0.0, self.config.max_eye_opening)
        ratio = np.full_like(ratio, float(np.median(ratio)))  # one opening per eye: no lid kinks
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
        mesh = self._transfer(_normalise(_to_metric(points, self.width), pose))
        return place_face(mesh, pose[1], anchor, scale)


def place_face(mesh: np.ndarray, rot: np.ndarray, anchor: np.ndarray, scale: float) -> np.ndarray:
    """Turn a face-unit mesh (478, 3) by rot (3, 3) about point 168 and place it in output px.

    Orthographic: point 168 lands at anchor (2,); 1 face unit = scale px. Returns (478, 3) float32.
    """
    rel = (np.asarray(mesh, np.float64) - mesh[NOSE_BRIDGE]) @ np.asarray(rot, np.float64).T
    out = rel * float(scale)
    out[:, :2] += np.asarray(anchor, np.float64)[:2]
    return out.astype(np.float32)


# --- drawing -------------------------------------------------------------------------------------

_LIGHT = np.array([-0.35, -0.55, -1.0]) / np.linalg.norm([-0.35, -0.55, -1.0])  # toward the light
_AMBIENT, _DIFFUSE = 0.50, 0.55
_SHADE_LEVELS = 20  # colour quantisation: one fillPoly call per (depth layer, level)
_DEPTH_LAYERS = 3
_SHIFT = 4  # subpixel bits for OpenCV drawing
_CLOSED_EYE = 0.09  # eye opening / eye width below which an eye is drawn closed
_OPEN_MOUTH = 0.03  # inner-lip gap / face size above which the mouth interior shows
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
    top, row = q[_rows(FRINGE_TOP)], q[_rows(FRINGE_ROW)]
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


def _draw_mouth(img, cv2, q: np.ndarray, style: AvatarStyle, unit: float) -> None:
    """Lips; when they part, the dark mouth with a hint of upper and lower teeth (q: canvas px)."""
    inner_up, inner_lo = q[_rows(LIP_INNER_UPPER)], q[_rows(LIP_INNER_LOWER)]
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


def draw_head(img: np.ndarray, face: np.ndarray, style: AvatarStyle, ss: int) -> None:
    """Draw the shaded head (hair, ears, skin, brows, eyes, nose, lips) into ``img`` in place.

    img: RGB uint8 (H, W, 3) canvas at ``ss`` times the output size; face: (478, 3) float output
    px from :class:`FaceAnimator` (x, y multiplied by ss here; z = depth, smaller = closer).
    """
    import cv2

    canon = load_canonical_face()
    p = np.asarray(face, np.float64) * ss
    q = p[:, :2]
    pose = similarity_fit(canon.points[_rows(STABLE)], p[_rows(STABLE)])
    unit = pose[0]  # canvas px per face unit
    _draw_hair_and_ears(img, cv2, pose, style)
    oval = q[_rows(FACE_OVAL)]
    cv2.fillPoly(img, [_fixed(oval)], _shade(style.skin, 0.8), cv2.LINE_AA, shift=_SHIFT)
    _draw_mesh(img, cv2, p, canon.triangles, style)
    _draw_fringe(img, cv2, q, style)
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
        _draw_mouth(img, cv2, q, style, unit)
