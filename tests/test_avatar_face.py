"""The synthetic signer's face: canonical asset, expression transfer, drawing, and real clips.

Real-data figures (measured when written, MediaPipe 0.10.21, avatar rendered 256x256 with the face
~120 px wide, re-detected by FaceMesh in static-image mode):

* faces detected on the rendering: 100 % of talking_face_open_mouth.mp4 (90 frames) and of
  asl_webcam.mp4 (58 frames, a hand passes over the face);
* Pearson r source vs rendering: mouth opening 0.998 (open_mouth; asl_webcam's mouth hardly moves);
  brow height 0.93 (open_mouth), 0.88 (asl_webcam);
* Procrustes distance (shape, 468 points) source neutral vs avatar neutral 0.067 / 0.068 (each the
  median of the frames with the most closed mouth), while frames 5 apart of the same source differ
  by 0.011 / 0.038 (median); the two avatars differ by 0.030, the two people by 0.079. (Before the
  avatar's neutral mouth was the mouth at rest, the median of all frames: 0.099 / 0.071, 0.037, 0.121.)
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GLOG_minloglevel", "2")

from signanon.avatar import canonical as C  # noqa: E402
from signanon.avatar import expression as E  # noqa: E402
from signanon.avatar import head as H  # noqa: E402
from signanon.landmarks import geometry as G  # noqa: E402
from signanon.landmarks import layout  # noqa: E402
from signanon.landmarks import regions as R  # noqa: E402
from signanon.avatar.style import AvatarStyle  # noqa: E402

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parents[1]
OPEN_MOUTH = DATA / "talking_face_open_mouth.mp4"
TALKING = DATA / "talking_woman_90.mp4"
NGT = DATA / "ngt_numbers_small.mp4"
ASL_WEBCAM = REPO / "examples" / "asl_webcam.mp4"
OUT_SIZE = 256
ANCHOR = np.array([128.0, 112.0])
SCALE = 75.0  # output px per face unit: a face ~120 px wide
STYLE = AvatarStyle()


# --- helpers ------------------------------------------------------------------------------------


def rotation(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    a, b, c = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return ry @ rx @ rz


def as_frame_rows(mesh: np.ndarray, rot=np.eye(3), size=120.0, centre=(320.0, 200.0), width=640):
    """A face-unit mesh as frame rows: x, y px and MediaPipe z (px / width); all-present confidence."""
    p = size * (mesh - mesh[R.NOSE_BRIDGE]) @ rot.T
    p[:, :2] += centre
    p[:, 2] /= width
    return p.astype(np.float32), np.ones(layout.N_FACE, np.float32)


def eye_opening(mesh: np.ndarray, upper, lower) -> float:
    return float(np.mean(mesh[list(lower), 1] - mesh[list(upper), 1]))


def mouth_opening(p: np.ndarray) -> float:
    """Inner-lip gap 13-14 over the outer-eye-corner distance (2-D, image plane)."""
    return float(np.linalg.norm(p[13, :2] - p[14, :2]) / np.linalg.norm(p[33, :2] - p[263, :2]))


def brow_height(p: np.ndarray) -> float:
    """Mean brow height above the eye corners over the outer-eye-corner distance (2-D)."""
    brows = list(R.BROW_UPPER_R + R.BROW_LOWER_R + R.BROW_UPPER_L + R.BROW_LOWER_L)
    corners = [R.EYE_OUTER_R, R.EYE_INNER_R, R.EYE_INNER_L, R.EYE_OUTER_L]
    rise = p[corners, 1].mean() - p[brows, 1].mean()
    return float(rise / np.linalg.norm(p[33, :2] - p[263, :2]))


def drop_jaw(mesh: np.ndarray, amount: float) -> np.ndarray:
    """Open the mouth: everything below the upper lip's inner edge moves down by up to amount."""
    out = mesh.copy()
    below = out[:, 1] - out[13, 1]
    out[:, 1] += amount * np.clip(below / 0.02, 0.0, 1.0)
    return out


def procrustes_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Shape distance of two meshes (first 468 points): RMS residual after a similarity fit of a
    onto b, over b's RMS radius. 0 = same shape."""
    a, b = np.asarray(a[:468], np.float64), np.asarray(b[:468], np.float64)
    s, rot, t = G.similarity_fit(a, b)
    resid = s * a @ rot.T + t - b
    return float(np.sqrt((resid**2).sum(1).mean() / ((b - b.mean(0)) ** 2).sum(1).mean()))


def median_shape(meshes) -> np.ndarray:
    ref = meshes[0][:468]
    aligned = []
    for m in meshes:
        s, rot, t = G.similarity_fit(m[:468], ref)
        aligned.append(s * m[:468] @ rot.T + t)
    return np.median(aligned, axis=0)


def render(face: np.ndarray, style: AvatarStyle = STYLE, size: int = OUT_SIZE) -> np.ndarray:
    """The head drawn alone on a ``size`` x ``size`` RGB uint8 frame (face: output px)."""
    import cv2

    ss = style.supersample
    img = np.empty((size * ss, size * ss, 3), np.uint8)
    img[:] = style.background
    H.draw_head(img, face, style, ss)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


# --- canonical asset and geometry ---------------------------------------------------------------


def test_canonical_face_is_normalised_frontal_and_symmetric():
    canon = C.load_canonical_face()
    p = canon.points
    assert p.shape == (478, 3) and p.dtype == np.float32
    assert np.allclose(p[R.NOSE_BRIDGE], 0, atol=1e-5)
    assert np.linalg.norm(p[R.EYE_OUTER_L] - p[R.EYE_OUTER_R]) == pytest.approx(1.0, abs=1e-4)
    assert abs(p[R.EYE_OUTER_L, 1] - p[R.EYE_OUTER_R, 1]) < 1e-4  # eye line horizontal
    assert p[1, 2] < p[R.EYE_OUTER_R, 2] - 0.2  # nose tip toward the viewer (z negative)
    assert p[152, 1] > 1.0 and p[10, 1] < -0.3  # chin below, forehead above (y down)
    assert p[R.EYE_OUTER_L, 0] > 0 > p[R.EYE_OUTER_R, 0]  # x right: the signer's left eye on the right
    # symmetric: mirroring x gives the same set of points
    mirrored = p * np.array([-1, 1, 1])
    nearest = np.linalg.norm(mirrored[:, None] - p[None], axis=2).min(1)
    assert nearest.max() < 1e-4


def _mouth_width(points: np.ndarray) -> float:
    right, left = points[list(R.MOUTH_CORNERS)]
    return float(np.linalg.norm(left[:2] - right[:2]))


def test_the_canonical_mouth_is_narrowed_and_nothing_else_moves():
    """The asset averages three smiling photos into its mouth (0.60 face units wide); the loaded
    face's mouth is narrowed (``MOUTH_WIDTH``), its lips' heights, the nose, eyes and jaw kept."""
    with np.load(C.ASSET_PATH) as npz:
        raw = npz["points"].astype(np.float32)
    p = C.load_canonical_face().points
    assert _mouth_width(raw) > 0.58  # the asset as averaged: the correction is not vacuous
    assert _mouth_width(p) == pytest.approx(C.MOUTH_WIDTH, abs=1e-4)
    assert np.array_equal(p[:, 1:], raw[:, 1:])  # heights and depths as they were
    lips = sorted(set(R.LIP_INNER_UPPER) | set(R.LIP_INNER_LOWER))
    assert np.abs(p[lips, 0] - raw[lips, 0]).max() > 0.01  # the lips themselves narrower
    kept = [R.NOSE_BRIDGE, *R.EYE_OUTER, 1, 152, 234, 454, 129, 358]  # bridge, eyes, nose tip, chin, cheeks, nostrils
    assert np.abs(p[kept] - raw[kept]).max() < 0.004
    assert np.allclose(C.set_mouth_width(p), p, atol=1e-6)  # already that wide: unchanged
    wide = C.set_mouth_width(p, 0.7)  # the same function widens a mouth, and keeps the face symmetric
    assert _mouth_width(wide) == pytest.approx(0.7, abs=1e-4)
    partner = np.linalg.norm((p * np.array([-1, 1, 1]))[:, None] - p[None], axis=2).argmin(1)
    assert np.abs(wide[:, 0] + wide[partner, 0]).max() < 1e-4


def test_canonical_triangles_form_a_consistently_oriented_surface():
    canon = C.load_canonical_face()
    tri = canon.triangles
    assert tri.shape[1] == 3 and 820 <= len(tri) <= 900
    assert tri.min() >= 0 and tri.max() < 468  # iris points are not part of the surface
    p = canon.points.astype(np.float64)
    normal_z = np.cross(p[tri[:, 1]] - p[tri[:, 0]], p[tri[:, 2]] - p[tri[:, 0]])[:, 2]
    assert (normal_z < 0).mean() > 0.9  # nearly all face the viewer on the frontal face
    edges: dict[tuple[int, int], int] = {}
    for a, b, c in tri:
        for e in ((a, b), (b, c), (c, a)):
            edges[e] = edges.get(e, 0) + 1
    # consistent orientation: every directed edge is used once (its twin, if any, runs the other way)
    assert max(edges.values()) == 1


def test_triangles_from_edges_drops_cliques_that_are_not_faces_and_orients():
    # a square split by one diagonal: two triangles; the points sit in the z = 0 plane
    pts = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float64)
    tri = C.triangles_from_edges([(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)], pts)
    assert sorted(map(sorted, tri.tolist())) == [[0, 1, 2], [0, 2, 3]]
    for a, b, c in tri:
        assert np.cross(pts[b] - pts[a], pts[c] - pts[a])[2] < 0  # toward the viewer
    # a point inside triangle 0-1-2 fanned to its corners, plus one outer face on each side: the
    # big triangle 0-1-2 is a 3-clique of the edge graph but not a face (each edge is in 3 cliques)
    pts = np.array([[0, 0, 0], [4, 0, 0], [2, 3, 0], [2, 1, 0], [2, -2, 0], [4, 3, 0], [0, 3, 0]], float)
    edges = [(0, 1), (1, 2), (2, 0), (0, 3), (1, 3), (2, 3), (0, 4), (1, 4), (1, 5), (2, 5), (2, 6), (0, 6)]
    tri = C.triangles_from_edges(edges, pts)
    assert len(tri) == 6 and [0, 1, 2] not in sorted(map(sorted, tri.tolist()))


def test_similarity_fit_recovers_a_known_transform():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(50, 3))
    rot = rotation(20, -15, 35)
    dst = 2.5 * src @ rot.T + np.array([3.0, -1.0, 7.0])
    s, r, t = G.similarity_fit(src, dst)
    assert s == pytest.approx(2.5, rel=1e-9)
    assert np.allclose(r, rot, atol=1e-9) and np.allclose(t, [3.0, -1.0, 7.0], atol=1e-9)
    assert G.rotation_angles(rot) == pytest.approx((20, -15, 35), abs=1e-6)


# --- expression transfer (synthetic signers) ----------------------------------------------------


def other_person() -> np.ndarray:
    """A clearly different face shape: wider jaw, longer nose, eyes further apart, thinner lips."""
    p = C.load_canonical_face().points.astype(np.float64).copy()
    p[:, 0] *= 1.0 + 0.15 * np.clip(p[:, 1], 0, None)  # wider towards the chin
    nose = [1, 2, 4, 5, 19, 94, 97, 98, 326, 327]
    p[nose, 1] += 0.08
    p[:, 1] *= 1.1
    return p


# expression moved 1:1 (the default config boosts mouth, brows and eyes for the drawing's losses)
UNIT_GAINS = E.FaceConfig(mouth_gain=1.0, mouth_width_gain=1.0, brow_gain=1.0, furrow_gain=1.0, eye_gain=1.0)


def calibrated(
    person: np.ndarray, width: int = 640, frames: int = 20, config: E.FaceConfig = UNIT_GAINS
) -> E.FaceAnimator:
    rng = np.random.default_rng(2)
    faces = []
    for _ in range(frames):
        jitter = person + rng.normal(scale=0.004, size=person.shape)
        faces.append(as_frame_rows(jitter, rotation(*rng.normal(scale=4, size=3)), width=width))
    return E.FaceAnimator.calibrate(faces, width, 480, config)


def test_region_gains_boost_mouth_brows_and_eyes_but_not_the_face_outline():
    person = other_person()
    plain, boosted = calibrated(person), calibrated(person, config=E.FaceConfig())
    cfg = E.FaceConfig()
    moved = drop_jaw(person.copy(), 0.2)
    brows = list(R.BROW_UPPER_R + R.BROW_LOWER_R + R.BROW_UPPER_L + R.BROW_LOWER_L)
    moved[brows, 1] -= 0.05
    inner = [55, 285]  # inner brow ends drawn together: the furrow
    moved[55, 0] += 0.03
    moved[285, 0] -= 0.03
    for upper, lower in ((R.LID_UPPER_R, R.LID_LOWER_R), (R.LID_UPPER_L, R.LID_LOWER_L)):
        moved[list(upper), 1] -= 0.3 * (person[list(lower), 1] - person[list(upper), 1])  # wider eyes
    rows = as_frame_rows(moved)
    a, b = plain.expression(*rows), boosted.expression(*rows)
    canon = C.load_canonical_face().points.astype(np.float64)

    def change(mesh, fn):
        return fn(mesh) - fn(canon)

    mouth = lambda m: m[14, 1] - m[13, 1]  # noqa: E731
    assert change(b, mouth) == pytest.approx(cfg.mouth_gain * change(a, mouth), rel=0.05)
    assert change(b, brow_height) == pytest.approx(cfg.brow_gain * change(a, brow_height), rel=0.1)
    furrow = lambda m: m[inner[1], 0] - m[inner[0], 0]  # noqa: E731
    assert change(b, furrow) < change(a, furrow) * cfg.brow_gain * 1.2 < 0  # drawn together, more
    eye = lambda m: eye_opening(m, R.LID_UPPER_R, R.LID_LOWER_R)  # noqa: E731
    assert change(b, eye) == pytest.approx(cfg.eye_gain * change(a, eye), rel=0.1)
    # the face's outline (its shape) is not boosted
    oval = list(R.FACE_OVAL)
    assert np.abs(b[oval] - a[oval]).max() < 0.02


def test_a_wide_mouth_is_boosted_only_up_to_the_drawable_opening():
    """mouth_gain boosts a small opening fully; a wide one only up to max_mouth_opening (beyond it
    the drawn mouth stops reading as a mouth); a signer wider than that keeps their own opening.
    (The default mouth_gain is below 1 since the neutral mouth is the mouth at rest; a user's boost
    is still capped.)"""
    person = other_person()
    cfg = E.FaceConfig(mouth_gain=1.7)
    plain, boosted = calibrated(person), calibrated(person, config=cfg)
    canon = C.load_canonical_face().points.astype(np.float64)
    gap = lambda m: m[14, 1] - m[13, 1]  # noqa: E731
    capped = 0
    for jaw in (0.05, 0.15, 0.3, 0.4, 0.45, 0.6):
        rows = as_frame_rows(drop_jaw(person.copy(), jaw))
        own, drawn = gap(plain.expression(*rows)), gap(boosted.expression(*rows))
        capped += own < cfg.max_mouth_opening < gap(canon) + cfg.mouth_gain * (own - gap(canon))
        wanted = gap(canon) + cfg.mouth_gain * (own - gap(canon))
        if wanted <= cfg.max_mouth_opening:
            assert drawn == pytest.approx(wanted, rel=0.05), jaw
        else:
            assert drawn == pytest.approx(max(cfg.max_mouth_opening, own), abs=0.01), jaw
    assert capped >= 2  # openings the cap cut (0.4, 0.45)
    assert gap(boosted.expression(*as_frame_rows(drop_jaw(person.copy(), 0.6)))) > cfg.max_mouth_opening  # own, kept


def test_a_hard_frown_is_boosted_only_until_the_brows_would_meet():
    """brow_gain x furrow_gain boosts a slight frown fully; a hard one only down to min_brow_gap
    of the canonical inner-brow gap (at 4x the boost would draw the brows across each other); a
    signer whose own brows come nearer than that keeps their own gap. At the largest gain the
    furrow choice may draw."""
    from signanon.avatar.furrow_choice import FurrowChoiceConfig

    person = other_person()
    cfg = E.FaceConfig(furrow_gain=max(FurrowChoiceConfig().gains))
    plain, boosted = calibrated(person), calibrated(person, config=cfg)
    canon = C.load_canonical_face().points.astype(np.float64)
    gap = lambda m: m[285, 0] - m[55, 0]  # noqa: E731  (inner brow ends, face units)
    floor = cfg.min_brow_gap * gap(canon)
    boost = cfg.brow_gain * cfg.furrow_gain
    capped = 0
    for frown in (0.004, 0.01, 0.02, 0.04, 0.07, 0.1):
        moved = person.copy()
        moved[55, 0] += frown
        moved[285, 0] -= frown
        rows = as_frame_rows(moved)
        own, drawn = gap(plain.expression(*rows)), gap(boosted.expression(*rows))
        wanted = gap(canon) + boost * (own - gap(canon))
        if wanted >= floor:
            assert drawn == pytest.approx(wanted, abs=0.004), frown
        else:
            capped += 1
            assert drawn == pytest.approx(min(floor, own), abs=0.004), frown
            assert drawn < gap(canon) - 0.5 * (gap(canon) - floor)  # still a clear frown
    assert capped >= 2  # the hard frowns (0.04, 0.07, 0.1)
    assert own < floor and drawn == pytest.approx(own, abs=0.004)  # the signer's own, kept


def test_no_face_gives_the_frontal_canonical_face_at_anchor_and_scale():
    anim = calibrated(other_person())
    out = anim(None, None, ANCHOR, SCALE)
    assert out.shape == (478, 3) and out.dtype == np.float32
    assert np.allclose(out[R.NOSE_BRIDGE, :2], ANCHOR, atol=1e-3)
    assert np.linalg.norm(out[R.EYE_OUTER_L] - out[R.EYE_OUTER_R]) == pytest.approx(SCALE, rel=1e-4)
    canon = C.load_canonical_face().points
    assert procrustes_distance(out, canon) < 1e-5
    missing = np.ones(478, np.float32)
    missing[100] = 0  # a face with a missing point counts as no face
    assert np.allclose(anim(out, missing, ANCHOR, SCALE), out, atol=1e-4)


def test_head_pose_is_kept_and_face_shape_is_not():
    person = other_person()
    anim = calibrated(person)
    canon = C.load_canonical_face().points.astype(np.float64)
    for angles in ((25, 0, 0), (0, 15, 0), (-30, -10, 12)):
        out = anim(*as_frame_rows(person, rotation(*angles)), ANCHOR, SCALE)
        assert np.allclose(out[R.NOSE_BRIDGE, :2], ANCHOR, atol=1e-3)
        s, rot, _ = G.similarity_fit(canon[list(R.STABLE)], out[list(R.STABLE)])
        assert s == pytest.approx(SCALE, rel=0.02)
        assert G.rotation_angles(rot) == pytest.approx(angles, abs=1.5)
        # the output is the canonical face, not the signer's: far from their shape
        assert procrustes_distance(out, canon) < 0.01
        assert procrustes_distance(out, person) > 0.03


def test_blink_closes_the_canonical_eye():
    person = other_person()
    anim = calibrated(person)
    closed = person.copy()
    for upper, lower in ((R.LID_UPPER_R, R.LID_LOWER_R), (R.LID_UPPER_L, R.LID_LOWER_L)):
        closed[list(upper), 1] = closed[list(lower), 1] - 0.003
    out = anim(*as_frame_rows(closed, rotation(10, 5, 0)), ANCHOR, SCALE)
    flat = anim.expression(*as_frame_rows(closed, rotation(10, 5, 0)))
    canon = C.load_canonical_face().points
    for upper, lower in ((R.LID_UPPER_R, R.LID_LOWER_R), (R.LID_UPPER_L, R.LID_LOWER_L)):
        assert eye_opening(flat, upper, lower) < 0.15 * eye_opening(canon, upper, lower)
    assert out.shape == (478, 3)


def narrow_eyed(factor: float) -> np.ndarray:
    """other_person() with each eye's opening scaled by factor about its lower lid."""
    p = other_person()
    for upper, lower in ((R.LID_UPPER_R, R.LID_LOWER_R), (R.LID_UPPER_L, R.LID_LOWER_L)):
        low = p[list(lower), 1]
        p[list(upper), 1] = low - factor * (low - p[list(upper), 1])
    return p


def iod(mesh: np.ndarray) -> float:
    return float(np.linalg.norm(mesh[R.EYE_OUTER_R, :2] - mesh[R.EYE_OUTER_L, :2]))


@pytest.mark.parametrize("factor", [0.85, 1.25])
def test_lids_move_as_far_as_the_signers_in_eye_distances_and_a_blink_still_closes(factor):
    """A signer with narrower (wider) eyes than the canonical face: widening the eyes by a quarter
    of their opening moves the drawn lids as far, in inter-ocular units, as the signer's moved
    (times eye_gain); a blink closes the drawn eye whatever the signer's eye size."""
    cfg = E.FaceConfig()
    person = narrow_eyed(factor)
    anim = calibrated(person, config=cfg)
    right = (R.LID_UPPER_R, R.LID_LOWER_R)
    size = E.eye_size(anim.neutral, anim.canonical.points, *right)
    assert size == pytest.approx(E.eye_size(person, anim.canonical.points, *right), rel=0.1)  # from the calibration
    wide, closed = person.copy(), person.copy()
    for upper, lower in (right, (R.LID_UPPER_L, R.LID_LOWER_L)):
        gap = person[list(lower), 1] - person[list(upper), 1]
        wide[list(upper), 1] -= 0.25 * gap
        closed[list(upper), 1] = closed[list(lower), 1] - 0.003
    rest = anim.expression(*as_frame_rows(person))
    signer = (eye_opening(wide, *right) - eye_opening(person, *right)) / iod(person)
    drawn = (eye_opening(anim.expression(*as_frame_rows(wide)), *right) - eye_opening(rest, *right)) / iod(rest)
    assert drawn == pytest.approx(cfg.eye_gain * signer, rel=0.1)
    assert eye_opening(anim.expression(*as_frame_rows(closed)), *right) < 0.1 * eye_opening(rest, *right)


def test_brows_mouth_and_gaze_follow_the_signer():
    person = other_person()
    anim = calibrated(person)
    canon = C.load_canonical_face().points.astype(np.float64)
    moved = person.copy()
    brows = list(R.BROW_UPPER_R + R.BROW_LOWER_R + R.BROW_UPPER_L + R.BROW_LOWER_L)
    moved[brows, 1] -= 0.06  # raised brows
    moved = drop_jaw(moved, 0.25)
    eye_w = np.linalg.norm(person[R.EYE_OUTER_R, :2] - person[R.EYE_INNER_R, :2])
    iris = list(R.IRIS_R + R.IRIS_L)
    moved[iris, 0] += 0.15 * eye_w  # gaze to the image right
    flat = anim.expression(*as_frame_rows(moved, rotation(-15, 0, 5)))
    # offsets are relative to the signer's own face size (their stable points vs the canonical's)
    size = G.similarity_fit(canon[list(R.STABLE)], person[list(R.STABLE)])[0]
    assert brow_height(flat) - brow_height(canon) == pytest.approx(0.06 / size, abs=0.01)
    opened = (flat[14, 1] - flat[13, 1]) - (canon[14, 1] - canon[13, 1])
    assert opened == pytest.approx(0.25 / size, abs=0.02)
    canon_w = np.linalg.norm(canon[R.EYE_OUTER_R, :2] - canon[R.EYE_INNER_R, :2])
    shift = flat[R.IRIS_R[0], 0] - canon[R.IRIS_R[0], 0]
    assert shift == pytest.approx(0.15 * canon_w, abs=0.01)
    # lips never cross: pressing the lower lip up past the upper one leaves them closed
    pressed = person.copy()
    pressed[list(R.LIP_INNER_LOWER[1:-1]), 1] -= 0.2
    flat = anim.expression(*as_frame_rows(pressed))
    assert np.all(flat[list(R.LIP_INNER_LOWER[1:-1]), 1] >= flat[list(R.LIP_INNER_UPPER[1:-1]), 1] - 1e-9)


def test_without_calibration_frames_only_head_pose_is_transferred():
    anim = E.FaceAnimator.calibrate([(None, np.zeros(478, np.float32))] * 5, 640, 480)
    moved = other_person()
    moved[14:18, 1] += 0.3
    out = anim(*as_frame_rows(moved, rotation(20, 0, 0)), ANCHOR, SCALE)
    canon = C.load_canonical_face().points
    assert procrustes_distance(out, canon) < 1e-3


# --- drawing ------------------------------------------------------------------------------------


def colour_fraction(img: np.ndarray, colour, tol: int = 12) -> float:
    return float(np.mean(np.all(np.abs(img.astype(int) - colour) <= tol, axis=2)))


def test_draw_head_paints_skin_hair_eyes_and_lips():
    canon = C.load_canonical_face().points
    img = render(E.place_face(canon, np.eye(3), ANCHOR, SCALE))
    assert colour_fraction(img, STYLE.hair, 20) > 0.03
    assert colour_fraction(img, STYLE.background, 0) < 0.8
    assert colour_fraction(img, STYLE.lips, 30) > 0.003
    # sclera in the eye opening, around the iris
    p = E.place_face(canon, np.eye(3), ANCHOR, SCALE)
    x, y = np.round(p[R.LID_LOWER_R[1], :2] * 0.5 + p[R.LID_UPPER_R[1], :2] * 0.5).astype(int)
    assert img[y, x].min() > 180
    # the skin around the nose is shaded, so the skin is not one flat colour
    nose = img[int(p[1, 1]) - 10 : int(p[1, 1]) + 5, int(p[1, 0]) - 12 : int(p[1, 0]) + 12]
    assert np.ptp(nose.reshape(-1, 3).sum(1)) > 40


def test_draw_head_closed_eyes_open_mouth_and_turned_heads():
    canon = C.load_canonical_face().points.astype(np.float64)
    shut = canon.copy()
    for upper, lower in ((R.LID_UPPER_R, R.LID_LOWER_R), (R.LID_UPPER_L, R.LID_LOWER_L)):
        shut[list(upper), 1] = shut[list(lower), 1]
    shut = drop_jaw(shut, 0.3)
    p = E.place_face(shut, np.eye(3), ANCHOR, SCALE)
    img = render(p)
    for upper, lower in ((R.LID_UPPER_R, R.LID_LOWER_R), (R.LID_UPPER_L, R.LID_LOWER_L)):
        box = np.round(np.r_[p[list(upper), :2], p[list(lower), :2]]).astype(int)
        eye = img[box[:, 1].min() - 2 : box[:, 1].max() + 3, box[:, 0].min() : box[:, 0].max() + 1]
        assert colour_fraction(eye, (236, 234, 228), 20) < 0.02  # no sclera white: eye closed
    mouth = img[int(p[13, 1]) : int(p[14, 1]), int(p[78, 0]) : int(p[308, 0])]
    assert colour_fraction(mouth, STYLE.mouth_interior, 25) > 0.2
    for yaw in (-80, -45, 45, 80):
        img = render(E.place_face(canon, rotation(yaw, 10, 0), ANCHOR, SCALE))
        assert colour_fraction(img, STYLE.background, 0) < 0.85


# --- real clips: MediaPipe on the rendered avatar ------------------------------------------------


def read_frames(path: Path, limit: int) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= limit:
                break
    return frames


def detect_face(graph, img: np.ndarray) -> np.ndarray | None:
    res = graph.process(img)
    if not res.multi_face_landmarks:
        return None
    h, w = img.shape[:2]
    p = np.array([(q.x, q.y, q.z) for q in res.multi_face_landmarks[0].landmark], np.float64)
    return p * np.array([w, h, w])


@pytest.fixture(scope="module")
def clips():
    """Per clip: source face rows (metric), and the avatar re-detected by FaceMesh per frame."""
    from mediapipe.python.solutions import face_mesh

    from signanon.landmarks.holistic import HolisticEstimator

    result = {}
    for name, path, limit in (("open_mouth", OPEN_MOUTH, 90), ("asl_webcam", ASL_WEBCAM, 58)):
        frames = read_frames(path, limit)
        h, w = frames[0].shape[:2]
        with HolisticEstimator() as est:
            rows = [est(f) for f in frames]
        faces = [(d[33:511], c[33:511]) for d, c in rows]
        anim = E.FaceAnimator.calibrate(faces, w, h)
        with face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True) as fm:
            detected = [detect_face(fm, render(anim(p, c, ANCHOR, SCALE))) for p, c in faces]
        source = [p.astype(np.float64) * [1, 1, w] if c.min() > 0 else None for p, c in faces]
        result[name] = (source, detected)
    return result


@pytest.mark.parametrize("name", ["open_mouth", "asl_webcam"])
def test_mediapipe_finds_the_avatar_face(clips, name):
    source, detected = clips[name]
    assert np.mean([s is not None for s in source]) >= 0.9  # the source itself is fine
    assert np.mean([d is not None for d in detected]) >= 0.9


def _series(clips, name, measure):
    pairs = [(measure(s), measure(d)) for s, d in zip(*clips[name]) if s is not None and d is not None]
    return np.array(pairs)


def test_mouth_opening_survives(clips):
    series = _series(clips, "open_mouth", mouth_opening)
    assert np.ptp(series[:, 0]) > 0.3  # the clip really yawns
    assert np.corrcoef(series.T)[0, 1] >= 0.8  # measured 0.999


@pytest.mark.parametrize("name", ["open_mouth", "asl_webcam"])
def test_brow_movement_survives(clips, name):
    # brows move little (std ~0.005 of the eye distance), so r also carries MediaPipe's jitter on
    # both sides; 0.6 still means most of the brow motion comes through (measured 0.95 and 0.89)
    series = _series(clips, name, brow_height)
    assert np.corrcoef(series.T)[0, 1] >= 0.6


def test_face_shape_does_not_survive(clips):
    neutral = {}
    for name in ("open_mouth", "asl_webcam"):
        source, detected = clips[name]
        src = [s for s in source if s is not None]
        same_person = np.median([procrustes_distance(src[i], src[i + 5]) for i in range(0, 40, 5)])
        # the neutral face: the frames with the most closed mouth (the avatar's neutral is the mouth
        # at rest, so its median over a yawn is an open mouth: an expression, not a face shape)
        pairs = [(s, d) for s, d in zip(source[:40], detected[:40]) if s is not None and d is not None]
        opening = np.array([mouth_opening(s) for s, _ in pairs])
        rest = [pair for pair, o in zip(pairs, opening) if o <= np.quantile(opening, 0.3)]
        src_neutral, out_neutral = median_shape([s for s, _ in rest]), median_shape([d for _, d in rest])
        neutral[name] = (src_neutral, out_neutral)
        assert procrustes_distance(out_neutral, src_neutral) > 1.5 * same_person
    # the two avatars (two different people) look more alike than the two people do
    avatars = procrustes_distance(neutral["open_mouth"][1], neutral["asl_webcam"][1])
    people = procrustes_distance(neutral["open_mouth"][0], neutral["asl_webcam"][0])
    assert avatars < 0.5 * people


def test_a_talking_signers_neutral_mouth_is_the_mouth_at_rest():
    """Someone who talks or mouths throughout has a parted median mouth. Taken as the neutral, every
    closure below it was drawn as lips pressed together and the drawn opening lost a third of its
    movement; the neutral's mouth is the mouth at rest (the most closed calibration frames).
    talking_woman_90.mp4 when written: drawn/source opening std 0.98 (r 1.00), plain median 0.60."""
    from signanon.landmarks.holistic import HolisticEstimator

    frames = read_frames(TALKING, 90)
    h, w = frames[0].shape[:2]
    with HolisticEstimator() as est:
        rows = [est(f) for f in frames]
    faces = [(d[33:511], c[33:511]) for d, c in rows if c[33:501].min() > 0]
    assert len(faces) >= 80
    source = np.array([mouth_opening(p.astype(np.float64) * [1, 1, w]) for p, _ in faces])

    def drawn(quantile: float) -> np.ndarray:
        cfg = E.FaceConfig(mouth_gain=1.0, rest_mouth_quantile=quantile)
        anim = E.FaceAnimator.calibrate(faces, w, h, cfg)
        return np.array([mouth_opening(anim.expression(p, c)) for p, c in faces])

    rest, median = drawn(E.FaceConfig().rest_mouth_quantile), drawn(1.0)
    assert np.std(source) > 0.03  # she talks: the mouth moves a lot
    assert np.std(median) / np.std(source) < 0.8  # the plain median loses the closures
    assert np.std(rest) / np.std(source) == pytest.approx(1.0, abs=0.12)
    assert np.corrcoef(rest, source)[0, 1] >= 0.95


def _read_series(frames: list[np.ndarray], measure=None) -> np.ndarray:
    """(N,) ``measure(face)`` (default: mouth width / IOD) of each frame by a fresh Holistic; NaN
    where it finds no face."""
    from signanon.landmarks import geometry, grammar, layout
    from signanon.landmarks.holistic import HolisticEstimator

    measure = measure or grammar.mouth_width
    out = []
    with HolisticEstimator() as est:
        for f in frames:
            d, c = est(f)
            h, w = f.shape[:2]
            out.append(measure(d[layout.FACE] * [w, h, w]) if geometry.face_present(c) else np.nan)
    return np.array(out)


def _read_gain_and_r(clip: Path, source: np.ndarray, out: Path, style: AvatarStyle, measure=None) -> tuple[float, float, int, float]:
    """Anonymize ``clip`` drawn in ``style`` (average face, identity guard and the hand, mouth and
    furrow choices off: the face's drawing is under test, the mouth choice would replace the
    style's rest parting, and the furrow's probe, 4-7 s a run, moves the brows only) and read
    ``measure`` back as :func:`_read_series` does: (gain = output std / source std, Pearson r,
    frames with a face in both, the source's std) against ``source``, the clip's own series."""
    from conftest import probes_off
    from signanon.avatar.anonymizer import AvatarAnonymizer, AvatarConfig
    from signanon.avatar.identity_guard import IdentityGuardConfig

    config = AvatarConfig(custom_style=style, face_shape="average", guard=IdentityGuardConfig(enabled=False), **probes_off())
    AvatarAnonymizer(config)(clip, out, progress=False)
    drawn = _read_series(read_frames(out, 10**6), measure)
    n = min(len(source), len(drawn))
    ok = ~np.isnan(source[:n]) & ~np.isnan(drawn[:n])
    a, b = source[:n][ok], drawn[:n][ok]
    return float(b.std() / a.std()), float(np.corrcoef(a, b)[0, 1]), int(ok.sum()), float(a.std())


def test_a_small_faces_mouth_width_survives(tmp_path, monkeypatch):
    """ASL HOUSE, a face 32 px between the eyes: the tapering lip ends fade over a pixel or two, so
    without the shadowed mouth corners MediaPipe read the output's mouth width at 0.42 of the
    signer's change (r 0.71); with them 0.64 (r 0.66), through the avatar's x264 output. The lips
    parted at rest (``AvatarStyle.rest_parting``) make the width read better too (without corners
    0.65 of the change; with both 0.74), so the corners' own share is measured without the
    parting. On the narrower mouth (``canonical.MOUTH_WIDTH``) the plain lips read 0.64,
    with the corners 0.80, with the parting too 0.84 (r 0.82). Drawn in the default palette
    with the identity guard off: the drawing is under test, not the palette the guard would choose
    or the frames it would calm. Session 37: plain 0.74, corners 0.94, shipped 0.94 (r 0.90);
    session 38, the arms out of the frame at rest (the first 14 frames' sleeves, nowhere near the
    face, yet MediaPipe's face read follows its pose): plain 0.79, corners 0.93, shipped 0.95 (r
    0.90). The corners' own share, 0.14-0.20, must stay over 0.1."""
    from signanon.avatar import head

    clip = DATA / "asl_house.gif"
    source = _read_series(read_frames(clip, 10**6))

    def gain_and_r(name: str, style: AvatarStyle) -> tuple[float, float]:
        gain, r, n, spread = _read_gain_and_r(clip, source, tmp_path / f"{name}.mp4", style)
        assert n >= 60 and spread > 0.02  # the signer's mouth really changes width
        return gain, r

    unparted = dataclasses.replace(STYLE, rest_parting=0.0)
    gain, r = gain_and_r("shipped", STYLE)
    gain_corners, _ = gain_and_r("corners", unparted)
    monkeypatch.setattr(head, "_draw_mouth_corners", lambda *args, **kwargs: None)
    gain_plain, _ = gain_and_r("plain", unparted)
    assert gain >= 0.55 and r >= 0.5, (gain, r)
    assert gain_corners >= gain_plain + 0.1, (gain_corners, gain_plain)


def test_a_face_shape_moves_only_the_face_below_the_eyes():
    from signanon.avatar.canonical import EYES_END, FACE_SHAPES, FaceShape, load_canonical_face

    base = load_canonical_face()
    p = base.points.astype(np.float64)
    for name, shape in FACE_SHAPES.items():
        face = shape.apply(base)
        q = face.points.astype(np.float64)
        assert face.triangles is base.triangles and q.shape == p.shape
        above = p[:, 1] <= EYES_END  # eyes, lids, brows, forehead: where they were
        assert np.array_equal(q[above], p[above]) and np.array_equal(q[:, [0, 2]], p[:, [0, 2]])
        # the chin (152) moves by the shape's length below the eyes, the mouth likewise
        for point in (152, 13, 14):
            assert q[point, 1] - EYES_END == pytest.approx(shape.length * (p[point, 1] - EYES_END), rel=1e-5), name
    assert list(FACE_SHAPES)[0] == "average" and FACE_SHAPES["short"].length < 1
    with pytest.raises(ValueError, match="face shape length"):
        FaceShape(length=2.0)


def test_the_looks_auto_may_draw():
    from signanon.avatar.anonymizer import AvatarConfig
    from signanon.errors import InputError

    auto = [(look.palette, look.shape) for look in AvatarConfig().looks]
    assert auto[0] == ("default", "average") and ("light-skin", "short") in auto
    assert ("dark-skin", "short") not in auto  # within 0.6 of a real face: never chosen for the user
    assert [(look.palette, look.shape) for look in AvatarConfig(palette="dark-skin", face_shape="short").looks] == [("dark-skin", "short")]
    assert {look.shape for look in AvatarConfig(palette="default").looks} == {"average", "short"}
    with pytest.raises(InputError, match="unknown avatar face shape 'oval'"):
        AvatarConfig(face_shape="oval")


def test_the_lips_part_at_rest_and_close_when_pressed():
    """From the mouth at rest (the canonical face's inner-lip gap) up, the lips are drawn
    ``AvatarStyle.rest_parting`` further apart in the middle, none at the corners; a mouth pressed shut (under
    half the rest gap) is drawn as the mesh says, with no mouth interior."""
    canon = C.load_canonical_face().points.astype(np.float64)
    up, lo = canon[list(R.LIP_INNER_UPPER), :2] * SCALE, canon[list(R.LIP_INNER_LOWER), :2] * SCALE
    rest = (lo[5, 1] - up[5, 1])
    parting = STYLE.rest_parting * SCALE
    assert parting > 0
    with pytest.raises(ValueError, match="rest_parting must be >= 0"):
        AvatarStyle(rest_parting=-0.01)
    down = np.array([0.0, 1.0])
    a, b = H._parted(up, lo, down, rest, parting)
    assert (b - a)[5, 1] == pytest.approx(rest + parting)
    assert np.allclose(a[[0, -1]], up[[0, -1]]) and np.allclose(b[[0, -1]], lo[[0, -1]])  # corners stay
    assert np.allclose(a[:, 0], up[:, 0]) and np.allclose(b[:, 0], lo[:, 0])  # only vertically
    half = lo.copy()
    half[:, 1] = up[:, 1] + 0.5 * (lo[:, 1] - up[:, 1])
    assert np.allclose(np.concatenate(H._parted(up, half, down, rest, parting)), np.concatenate([up, half]))
    wider = lo + [0, 2 * rest]  # an open mouth: the same parting on top
    assert (np.diff(np.stack(H._parted(up, wider, down, rest, parting)), axis=0)[0][5, 1]) == pytest.approx(3 * rest + parting)
    turn = rotation(roll=30)[:2, :2]  # a tilted head: the same parting along the face's own axis
    rolled = H._parted(up @ turn.T, lo @ turn.T, turn @ down, rest, parting)
    assert np.allclose(np.concatenate(rolled), np.concatenate([a, b]) @ turn.T)

    def interior(mesh: np.ndarray, style: AvatarStyle = STYLE) -> int:
        """Pixels of mouth interior between the lips (the middle half of the mouth: the corners'
        shadow is as dark), the face drawn 3x the usual size."""
        p = E.place_face(mesh, np.eye(3), 3 * ANCHOR, 3 * SCALE)
        img = render(p, style, 3 * OUT_SIZE)
        left, right = np.interp([0.25, 0.75], [0, 1], [p[78, 0], p[308, 0]]).astype(int)
        box = img[int(p[13, 1]) - 3 : int(p[14, 1]) + 4, left:right]
        return int(round(colour_fraction(box, STYLE.mouth_interior, 10) * box.shape[0] * box.shape[1]))

    pressed = canon.copy()
    pressed[list(R.LIP_INNER_LOWER), 1] = pressed[list(R.LIP_INNER_UPPER), 1]
    assert interior(pressed) == 0
    at_rest = interior(canon)
    assert at_rest > 1.8 * interior(canon, dataclasses.replace(STYLE, rest_parting=0.0))  # the parting at rest shows as more mouth interior (283 px, 133 without)


def test_a_small_mouthing_reads_back(tmp_path):
    """The 192x144 NGT clip (the mouthing of numbers, inner-lip gap std 0.012 inter-ocular
    distances), drawn at 640x480: without the parting at rest, drawn gaps up to ~0.05 read back as
    closed lips, and MediaPipe read the output's mouth opening at gain 0.45, r 0.66 of the signer's;
    with it 1.11, r 0.87 (benchmarks/diag_face_gain.py). Read here by our own Holistic: 1.17 / 0.87
    with it, 0.21 / 0.57 without. Default palette, identity guard off: the drawing is under test."""
    from signanon.landmarks import grammar

    source = _read_series(read_frames(NGT, 10**6), grammar.mouth_opening)

    def gain_and_r(name: str, style: AvatarStyle) -> tuple[float, float]:
        gain, r, n, spread = _read_gain_and_r(NGT, source, tmp_path / f"{name}.mp4", style, grammar.mouth_opening)
        assert n >= 120 and spread > 0.006  # the signer really mouths (std 0.009 here)
        return gain, r

    gain, r = gain_and_r("parted", STYLE)
    gain_shut, r_shut = gain_and_r("shut", dataclasses.replace(STYLE, rest_parting=0.0))
    assert 0.7 <= gain <= 1.4 and r >= 0.75, (gain, r)
    assert r >= r_shut + 0.1 and gain >= gain_shut + 0.3, (gain, r, gain_shut, r_shut)
