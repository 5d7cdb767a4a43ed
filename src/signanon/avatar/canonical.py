"""The canonical face: a neutral, frontal, left-right symmetric mesh averaged from several people.

*Face units*: the mesh is stored with the outer eye corners (mesh points 33 and 263) 1 apart, origin
at point 168 (nose bridge between the eyes), x to the image right, y down, z away from the viewer
(MediaPipe's convention: smaller z = closer). ``tools/build_canonical_face.py`` builds the asset
(see ``assets/SOURCES.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from ..landmarks.regions import INNER_LIP_CENTRE, MOUTH_CORNERS

ASSET_PATH = Path(__file__).parent / "assets" / "canonical_face.npz"


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


# The asset's mouth is 0.60 face units wide: three of its five photographed people smile or laugh
# (their mouths 0.86, 0.75 and 0.67 wide, 0.07-0.14 open), while the neutral faces of the other
# seven (two photographed people, the two talking heads' and three signers' least open frames) are
# 0.48-0.58 wide, median 0.53 (tools/build_canonical_face.py's meshes, measured in session 24).
# MediaPipe read the avatar's mouth at rest 0.59-0.70 wide on seven clips, the signers' own 0.46-0.57;
# where a hand covers the mouth the read-back falls back towards an ordinary mouth (~0.51) on the
# avatar but not on the signer, so every hand over the mouth read as a narrowing: the webcam clip's
# mouth width gain 1.79 (1.38 without those frames). Loaded faces get a mouth this wide, between the
# two: at the neutral 0.54 the identity guard found the avatar near the small NGT signer's face far
# more often (frames drawn calmer / blank on 33 clips 22 / 0 -> 127 / 16), at 0.57 on 45 clips 43 / 0
# -> 85 / 1, none re-identified, with 93 of 104 facial-grammar series in the goal (89 before;
# signing_issue11.txt, sessions 24 and 25).
MOUTH_WIDTH = 0.57
_MOUTH_RADII = (0.42, 0.22)  # face units: the mouth region, narrowed fully within, not at all past 1.8x


def set_mouth_width(points: np.ndarray, width: float = MOUTH_WIDTH) -> np.ndarray:
    """(N, 3) face-unit points (a symmetric face: midline at x = 0) with the mouth region narrowed
    (or widened) towards the midline so that the outer mouth corners are ``width`` apart; the
    lips, the skin around them fading out smoothly, the nose, eyes and jaw line as they were.
    Nothing changes in y or z, and a face already ``width`` wide comes back as it was."""
    p = np.array(points, np.float64)
    right, left = p[list(MOUTH_CORNERS)]
    factor = width / float(np.linalg.norm(left[:2] - right[:2]))
    centre = p[list(INNER_LIP_CENTRE)].mean(axis=0)
    r = np.hypot((p[:, 0] - centre[0]) / _MOUTH_RADII[0], (p[:, 1] - centre[1]) / _MOUTH_RADII[1])
    w = np.clip((1.8 - r) / 0.8, 0.0, 1.0)
    w = w * w * (3.0 - 2.0 * w)
    p[:, 0] *= 1.0 - (1.0 - factor) * w
    return p.astype(np.float32)


@lru_cache(maxsize=1)
def load_canonical_face(path: str | None = None) -> CanonicalFace:
    """The canonical face asset (cached), its mouth :data:`MOUTH_WIDTH` wide (:func:`set_mouth_width`). ``path``
    overrides the packaged ``canonical_face.npz``."""
    with np.load(path or ASSET_PATH) as npz:
        points = set_mouth_width(npz["points"].astype(np.float32))
        triangles = npz["triangles"].astype(np.int32)
    points.setflags(write=False)
    triangles.setflags(write=False)
    return CanonicalFace(points=points, triangles=triangles)


# -- face shapes ---------------------------------------------------------------------------------


EYES_END = 0.1  # face units: the lowest lid and eye-corner points lie at y <= 0.07


@dataclass(frozen=True)
class FaceShape:
    """A face shape for the avatar: the canonical face stretched or squeezed below the eyes.

    ``length``: factor on every point's height below the eyes (y > :data:`EYES_END` face units:
    nose, mouth, chin; eyes, lids, brows and forehead stay). Points move, the
    mesh does not, so the signer's expression (offsets in face units) is carried as on the average
    face.

    Why: the average face lies near everyone in a face recogniser's space. On two talking-head
    clips whose strong expressions brought the average face within dlib's 0.65 of the speaker on
    17 and 16 of ~100 drawn frames (every 2nd frame, best palette), the face 12 % shorter below the
    eyes came within it on 1 and 3 (9 % shorter: 7 and 5, the shape shipped). The
    identity guard draws the look furthest from the signer (:func:`~.identity_guard.choose_look`);
    a shape is only offered in the palettes in which no real face of the repository's test set
    lies within dlib's same-person distance of it (``tests/test_avatar_identity.py``).
    """

    length: float = 1.0

    def __post_init__(self) -> None:
        if not 0.5 <= self.length <= 1.5:
            raise ValueError(f"face shape length must lie in [0.5, 1.5], got {self.length}")

    def apply(self, face: CanonicalFace) -> CanonicalFace:
        """``face`` with this shape (the same triangles); ``face`` itself at length 1."""
        if self.length == 1.0:
            return face
        p = face.points.astype(np.float64)
        y = p[:, 1]
        p[:, 1] = np.where(y > EYES_END, EYES_END + (y - EYES_END) * self.length, y)
        points = p.astype(np.float32)
        points.setflags(write=False)
        return CanonicalFace(points=points, triangles=face.triangles)


# the shapes the avatar may take, the first the default (the average face the drawing was tuned on).
# Measured on two talking heads (frames whose best palette came within dlib's 0.65 of the speaker,
# of ~100): length 1 -> 17 / 16, 0.94 -> 11 / 9, 0.91 -> 7 / 5, 0.88 -> 1 / 3; longer faces came
# nearer (1.07 -> 41 / 24). 0.88 put two looks within dlib's 0.6 of a real face in the
# repository's set (tests/test_avatar_identity.py), 0.91 one (see style.UNOFFERED_LOOKS).
FACE_SHAPES: dict[str, FaceShape] = {
    "average": FaceShape(),
    "short": FaceShape(length=0.91),
}
