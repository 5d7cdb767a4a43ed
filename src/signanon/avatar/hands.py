"""Drawing one hand: shaded, tapering fingers and a palm, in depth order.

A hand is the 21 MediaPipe Hands points in output pixels (float32 ``(21, 3)``; z in pixels, smaller =
closer to the camera). Drawing happens on an RGB ``uint8`` canvas ``ss`` times the output size with
OpenCV's anti-aliased primitives at sub-pixel precision.

What makes the drawing readable, for people and for MediaPipe's hand models: fingers with real
thickness that taper to rounded tips, a darker rim around every finger (so fingers that overlap stay
separate), light on the near parts and shade on the far ones, far parts drawn first, and a wrist
that runs smoothly into the forearm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..landmarks import geometry, layout

if TYPE_CHECKING:  # style.py imports this module (AvatarStyle.hands)
    from .style import RGB

SHIFT = 4  # OpenCV sub-pixel bits: coordinates are multiplied by 16
_ONE = 1 << SHIFT


@dataclass(frozen=True)
class HandLook:
    """How a hand is drawn; lengths are fractions of the palm length, shades multiply the skin colour.

    The defaults were tuned so that MediaPipe finds the drawn hands again (thin rims and slim,
    realistic fingers read better than bold cartoon outlines). On small hands the 1.4% rim is
    sub-pixel and a curled finger blurs into a stub that MediaPipe reads as straight, so a finger
    bent at its middle joint by more than ``curled_deg`` gets a rim of at least
    ``curled_min_rim_px`` output pixels. Read back (60 frames, x264; benchmarks/hands_issue11.txt):
    192x144 NGT 17.3 -> 13.8 deg, asl_different 13.6 -> 11.7, asl_webcam 12.5 -> 11.4, ASL HOUSE
    recall 0.84 -> 0.90 and 0.96 -> 0.95 rotated. A 1 px floor on every finger (``min_rim_px``)
    reads NGT at 11.9 deg but loses hands of the same size on ASL HOUSE (0.92 -> 0.80 in
    tests/test_avatar_body.py), and a 25 deg bend threshold loses them rotated (0.84).

    A palm turned edge-on to the camera collapses to a sliver in 2-D, where a real one still shows
    its thickness, the ball of the thumb and the stacked fingers. As the palm's normal turns into
    the image plane (its in-image share above ``edge_from``, 1 = edge-on), the palm's silhouette
    grows across its plane, up to ``edge_thickness`` palm lengths when edge-on. Read back on ASL
    HOUSE, whole clip and two framings (x264, averaged over three sub-pixel jitters): recall
    0.85 -> 0.93, 0.85 -> 0.93, 0.89 -> 0.91, the other clips within 0.02 (hands_issue11.txt).

    A finger folded into the palm lies, drawn, over its own knuckle bone, and MediaPipe then reads
    a short straight finger. With ``tuck_deg`` set, a finger (not the thumb) bent at its middle
    joint by more than that draws its middle and tip bones first of all, under the palm and its
    knuckle bone, so only the knuckle bone shows. It reads DGS ZUG's V hand (ring and little finger
    folded) 1.8-2.8 deg closer and ASL DIFFERENT's fingers curled at the chin 1.1-2.1 deg further
    off, so it is not the default: :mod:`.hand_choice` sets it per signer.
    """

    finger_width: tuple[float, float, float, float, float] = (0.255, 0.20, 0.208, 0.19, 0.166)  # thumb..pinky
    taper: tuple[float, float, float] = (1.0, 0.9, 0.8)  # proximal, middle, distal bone
    rim: float = 0.014  # dark outline width on each side
    min_rim_px: float = 0.0  # ... but at least this many output pixels (small hands)
    rim_shade: float = 0.58
    # finger fill as nested strokes: (width fraction, brightness, shift towards the light)
    layers: tuple[tuple[float, float, float], ...] = (
        (1.0, 0.84, 0.0), (0.7, 0.95, 0.25), (0.34, 1.05, 0.5)
    )
    crease: float = 0.78  # shade of the joint creases (1 = none)
    nails: bool = True  # nails on the finger tips whose back faces the camera
    curled_min_rim_px: float = 1.0  # the rim floor for a finger bent at its middle joint by ...
    curled_deg: float = 40.0  # ... more than this (its folded bones need an edge to read apart)
    nails_by_bone: bool = False  # True: the tip bone's own back decides (a finger folded over shows its nail)
    wrist_width: float = 0.6
    palm_thickness: float = 0.24
    edge_thickness: float = 0.4  # the palm's silhouette across its plane when edge-on ...
    edge_from: float = 0.85  # ... growing from 0 where the normal's in-image share passes this
    web: float = 0.3  # how far along the proximal finger bones the palm reaches
    split_curled: bool = True  # finger bones curled behind the palm are drawn before it
    behind: float = 0.15  # palm lengths behind the palm's mean depth that count as behind it
    tie_bias: float = 0.05  # palm lengths: in a depth tie, the palm goes first, then base to tip
    tuck_deg: float | None = None  # fingers bent more than this at the middle joint: drawn folded under (None: never)


LOOK = HandLook()


def _pt(xy: np.ndarray) -> tuple[int, int]:
    return int(round(float(xy[0]) * _ONE)), int(round(float(xy[1]) * _ONE))


def _shade(colour: RGB, k: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, round(c * k)))) for c in colour)  # type: ignore[return-value]


def capsule(img: np.ndarray, a: np.ndarray, b: np.ndarray, width: float, colour: Sequence[int]) -> None:
    """A round-capped thick segment from ``a`` to ``b`` (canvas pixels), ``width`` = diameter."""
    t = max(1, int(round(width)))
    cv2.line(img, _pt(a), _pt(b), tuple(int(c) for c in colour), t, cv2.LINE_AA, SHIFT)


def disc(img: np.ndarray, c: np.ndarray, radius: float, colour: Sequence[int]) -> None:
    cv2.circle(img, _pt(c), max(1, int(round(radius * _ONE))), tuple(int(v) for v in colour), -1, cv2.LINE_AA, SHIFT)


def polygon(img: np.ndarray, pts: np.ndarray, colour: Sequence[int]) -> None:
    poly = np.round(np.asarray(pts, np.float64)[:, :2] * _ONE).astype(np.int32)
    cv2.fillPoly(img, [poly], tuple(int(c) for c in colour), cv2.LINE_AA, SHIFT)


def outline(img: np.ndarray, pts: np.ndarray, width: float, colour: Sequence[int]) -> None:
    """A closed, round-jointed thick outline through ``pts`` (N, 2) canvas pixels."""
    poly = np.round(np.asarray(pts, np.float64)[:, :2] * _ONE).astype(np.int32)
    t = max(1, int(round(width)))
    cv2.polylines(img, [poly], True, tuple(int(c) for c in colour), t, cv2.LINE_AA, SHIFT)


def hand_size(hand: np.ndarray) -> float:
    """Palm length (3-D mean distance wrist -> index/middle/pinky knuckles) of (21, 3) points."""
    w = hand[layout.WRIST]
    return float(np.mean([np.linalg.norm(hand[k] - w) for k in (5, 9, 17)]) * 1.02)


def _sized(look: HandLook, size: float, ss: int) -> HandLook:
    """``look`` with its rim widened to ``look.min_rim_px`` output pixels on a hand of palm
    length ``size`` canvas pixels (``ss`` canvas pixels per output pixel)."""
    rim = max(look.rim, look.min_rim_px * ss / max(size, 1e-6))
    return look if rim == look.rim else replace(look, rim=rim)


def _depth_light(z: float, z_ref: float, size: float) -> float:
    """Brightness factor: near parts lighter, far parts darker (z in canvas px)."""
    return float(np.clip(1.0 - 0.45 * (z - z_ref) / max(size, 1e-6), 0.72, 1.12))


def _palm_outline(h: np.ndarray, size: float, web: float) -> np.ndarray:
    """(N, 2) polygon of the palm: a wide wrist, the thumb's base and the four knuckles."""
    wrist, idx, pinky = h[0, :2], h[5, :2], h[17, :2]
    across = idx - pinky
    n = float(np.hypot(*across))
    across = across / n if n > 1e-6 else np.array([1.0, 0.0])
    w_half = 0.26 * size
    pts = [
        wrist - across * w_half,
        wrist + across * w_half * 0.9,
        0.55 * h[1, :2] + 0.45 * h[2, :2],
        # the skin web joins the fingers a little beyond the knuckles
        h[5, :2] + web * (h[6, :2] - h[5, :2]),
        h[9, :2] + web * (h[10, :2] - h[9, :2]),
        h[13, :2] + web * (h[14, :2] - h[13, :2]),
        h[17, :2] + web * (h[18, :2] - h[17, :2]),
        0.5 * (h[17, :2] + wrist) - across * 0.06 * size,
    ]
    return np.array(pts)


def _edge_on(poly: np.ndarray, h: np.ndarray, size: float, look: HandLook) -> np.ndarray:
    """``poly`` (N, 2) grown into the silhouette of a palm of real thickness (M, 2): the convex
    hull of the outline moved both ways along the palm normal's in-image direction, by up to
    ``look.edge_thickness / 2`` palm lengths as the palm turns edge-on; ``poly`` itself while
    the palm faces the camera (normal's in-image share <= ``look.edge_from``)."""
    n = np.cross(h[5] - h[0], h[17] - h[0])
    k = float(np.linalg.norm(n))
    in_image = float(np.hypot(n[0], n[1])) / k if k > 1e-9 else 0.0
    if look.edge_thickness <= 0 or in_image <= look.edge_from:
        return poly
    ramp = (in_image - look.edge_from) / (1.0 - look.edge_from)
    off = n[:2] / (in_image * k) * ramp * look.edge_thickness * size / 2
    both = np.concatenate([poly + off, poly - off]).astype(np.float32)
    return cv2.convexHull(both)[:, 0, :].astype(np.float64)


def _palm_facing(h: np.ndarray, side: int) -> bool:
    """True when the palm (not the back of the hand) faces the camera."""
    a = h[5] - h[0]
    b = h[17] - h[0]
    nz = a[0] * b[1] - a[1] * b[0]
    # signer's right hand (side 1) shows its palm when index->pinky turns clockwise on screen
    return bool((nz > 0) if side == 1 else (nz < 0))


def _draw_palm(img: np.ndarray, h: np.ndarray, size: float, skin: RGB, palm_side: bool, look: HandLook) -> None:
    poly = _edge_on(_palm_outline(h, size, look.web), h, size, look)
    rim = _shade(skin, look.rim_shade)
    z_ref = float(h[0, 2])
    base = _shade(skin, _depth_light(float(np.mean(h[[0, 5, 9, 13, 17], 2])), z_ref, size) * (0.99 if palm_side else 0.93))
    thick = look.palm_thickness * size  # the palm's own thickness: an edge-on palm still looks like a hand
    thenar = (h[0, :2] * 0.55 + h[5, :2] * 0.45, 0.5 * (h[1, :2] + h[2, :2]))
    outline(img, poly, thick + 2 * look.rim * size, rim)
    capsule(img, thenar[0], thenar[1], 0.34 * size + 2 * look.rim * size, rim)
    polygon(img, poly, base)
    outline(img, poly, thick, base)
    capsule(img, thenar[0], thenar[1], 0.34 * size, base)  # the ball of the thumb
    # the palm's rounded middle catches more light
    centre = poly.mean(axis=0)
    polygon(img, centre + (poly - centre) * 0.55, _shade(base, 1.05))
    if palm_side:  # a palm crease reads as a palm, not the back of a hand
        crease = _shade(skin, 0.8)
        p1 = 0.62 * h[5, :2] + 0.38 * h[0, :2]
        p2 = 0.6 * h[17, :2] + 0.4 * h[0, :2]
        capsule(img, p1, p2, max(1.0, 0.03 * size), crease)


@dataclass(frozen=True, eq=False)
class _Segment:
    """One finger bone to draw (canvas px): from ``a`` to ``b`` (3,), diameter ``width``; ``joint``
    is its index along the finger (0 = from the knuckle), ``last`` marks the tip bone."""

    a: np.ndarray
    b: np.ndarray
    width: float
    joint: int
    last: bool
    back_z: float = 0.0  # z of the bone's back (nail side) direction: < 0 faces the camera
    finger: int = 0  # 0 = thumb ... 4 = little finger

    @property
    def z(self) -> float:
        return float(self.a[2] + self.b[2]) / 2


def _back_normal(h: np.ndarray, side: int) -> np.ndarray:
    """(3,) unit normal of the back of the hand (z < 0: the back faces the camera)."""
    n = np.cross(h[5] - h[0], h[17] - h[0])
    n = n if side == 1 else -n
    k = float(np.linalg.norm(n))
    return n / k if k > 1e-9 else np.array([0.0, 0.0, -1.0])


def _bone_back_z(h: np.ndarray, finger: int, d: np.ndarray, back: np.ndarray) -> float:
    """z of the back (nail side) of a finger bone with 3-D direction ``d``: the back of the hand
    ``back`` turned with the finger's flexion, so a finger folded past 90 degrees shows its other side."""
    m = h[layout.FINGERS[finger][0]] - h[layout.WRIST]
    m = m - back * float(m @ back)  # the metacarpal direction within the palm's plane
    km, kd = float(np.linalg.norm(m)), float(np.linalg.norm(d))
    if km < 1e-9 or kd < 1e-9:
        return float(back[2])
    m, d = m / km, d / kd
    dorsal = float(d @ m) * back - float(d @ back) * m
    return float(dorsal[2])


def _finger_segments(
    h: np.ndarray, finger: int, size: float, look: HandLook, back: np.ndarray | None = None
) -> list[_Segment]:
    """The bones of one finger (0 = thumb, from its CMC joint) as :class:`_Segment` s, base first.

    back: the hand's back normal (:func:`_back_normal`); sets each bone's ``back_z``."""
    pts = h[list(layout.FINGERS[finger])]
    base_w = look.finger_width[finger] * size
    n = len(pts) - 1
    out = []
    for i in range(n):
        bz = _bone_back_z(h, finger, pts[i + 1] - pts[i], back) if back is not None else 0.0
        out.append(_Segment(pts[i], pts[i + 1], base_w * look.taper[min(i, 2)], i, i == n - 1, bz, finger))
    return out


def _draw_segment(
    img: np.ndarray, seg: _Segment, z_ref: float, size: float, skin: RGB, palm_side: bool, look: HandLook,
    rim_first: bool = True,
) -> None:
    """One finger bone: dark rim, round shading (nested lighter strokes nudged to the light), the
    crease of the joint it starts from and, on the tip bone seen from the back, the nail."""
    a, b, w = seg.a, seg.b, seg.width
    if rim_first:
        capsule(img, a[:2], b[:2], w + 2 * look.rim * size, _shade(skin, look.rim_shade))
    light = np.array([-0.4, -0.5])
    k = _depth_light(seg.z, z_ref, size)
    for frac, bright, shift in look.layers:
        off = light * shift * w * (1.0 - frac)
        capsule(img, a[:2] + off, b[:2] + off, w * frac, _shade(skin, k * bright))
    d = b[:2] - a[:2]
    n = float(np.hypot(*d))
    if seg.joint > 0 and n > 1e-6:
        perp = np.array([-d[1], d[0]]) / n * w * 0.3
        capsule(img, a[:2] - perp, a[:2] + perp, max(1.0, 0.022 * size), _shade(skin, look.crease))
    nail_seen = seg.back_z < 0 if look.nails_by_bone else not palm_side
    if seg.last and look.nails and nail_seen and n > 0.25 * w:
        capsule(img, a[:2] + 0.45 * d, a[:2] + 0.82 * d, w * 0.55, _shade(skin, 1.12))


def _draw_finger(
    img: np.ndarray, h: np.ndarray, finger: int, size: float, skin: RGB, palm_side: bool, look: HandLook,
    back: np.ndarray | None = None,
) -> None:
    """A whole finger: the rims of all its bones first (no outline across its own joints), then
    the bones far to near (a finger curled away from the camera hides its tip behind its base)."""
    segs = _finger_segments(h, finger, size, look, back)
    rim = _shade(skin, look.rim_shade)
    for seg in segs:
        capsule(img, seg.a[:2], seg.b[:2], seg.width + 2 * look.rim * size, rim)
    z_ref = float(h[0, 2])
    for seg in sorted(segs, key=lambda g: -(g.z - look.tie_bias * size * g.joint)):
        _draw_segment(img, seg, z_ref, size, skin, palm_side, look, rim_first=False)


def draw_hand(img: np.ndarray, hand: np.ndarray, side: int, skin: RGB, ss: int, look: HandLook = LOOK) -> None:
    """Draw one hand into ``img`` (RGB uint8, ``ss`` x the output size).

    hand: (21, 3) float32 points in output pixels (z in pixels, smaller = closer). side: 0 = the
    signer's left hand, 1 = right (decides which face of the palm is seen). The palm and the
    fingers are drawn far-to-near by their mean z; with ``look.split_curled`` a finger whose tip
    bones lie behind the palm (curled away from the camera) draws them before the palm, so the
    palm hides them, and its knuckle bone after it; the fingers of :func:`tucked_fingers` draw
    their folded bones before everything else.
    """
    h = np.asarray(hand, np.float64) * ss
    size = hand_size(h)
    if size < 1.0:
        return
    looks = _finger_looks(h, look, size, ss)
    look = _sized(look, size, ss)
    palm_side = _palm_facing(h, side)
    back_n = _back_normal(h, side) if look.nails_by_bone else None  # only nails_by_bone reads it
    z_ref = float(h[0, 2])
    palm_z = float(np.mean(h[[0, 5, 9, 13, 17], 2]))
    items: list[tuple[float, object]] = [(palm_z + look.tie_bias * size, -1)]
    tucked = tucked_fingers(h, look)
    for f in range(5):
        segs = _finger_segments(h, f, size, look, back_n)
        is_behind = [look.split_curled and f > 0 and g.joint > 0 and g.z > palm_z + look.behind * size for g in segs]
        if f in tucked:  # its folded bones are drawn first of all, below
            items.append((segs[0].z, segs[:1]))
        elif any(is_behind):
            front = [g for g, back in zip(segs, is_behind) if not back]
            for g, back in zip(segs, is_behind):
                if back:
                    items.append((g.z + look.tie_bias * size, g))  # before the palm
            items.append((min(g.z for g in front), front))
        else:
            items.append((float(np.mean(h[list(layout.FINGERS[f][1:]), 2])), f))
    folded = [g for f in tucked for g in _finger_segments(h, f, size, look, back_n) if g.joint > 0]
    for g in sorted(folded, key=lambda g: -g.z):
        _draw_segment(img, g, z_ref, size, skin, palm_side, looks[g.finger])
    for _, item in sorted(items, key=lambda it: -it[0]):
        if isinstance(item, int) and item < 0:
            _draw_palm(img, h, size, skin, palm_side, look)
        elif isinstance(item, int):
            _draw_finger(img, h, item, size, skin, palm_side, looks[item], back_n)
        elif isinstance(item, _Segment):
            _draw_segment(img, item, z_ref, size, skin, palm_side, looks[item.finger])
        else:
            for g in item:
                _draw_segment(img, g, z_ref, size, skin, palm_side, looks[g.finger])


def tucked_fingers(hand: np.ndarray, look: HandLook) -> tuple[int, ...]:
    """The fingers (1 = index ... 4 = little) of ``hand`` ((21, 3) points, any units) that
    ``look`` draws folded under (bent at the middle joint by more than ``look.tuck_deg``)."""
    if look.tuck_deg is None:
        return ()
    middle_joint = geometry.flexion_angles(hand)[1::3]  # (5,) degrees, thumb first
    return tuple(f for f in range(1, 5) if middle_joint[f] > look.tuck_deg)


def _finger_looks(h: np.ndarray, look: HandLook, size: float, ss: int) -> list[HandLook]:
    """The look of each finger (0 = thumb) of hand ``h`` (canvas px): the hand's, sized, with the
    rim floor ``curled_min_rim_px`` for a finger (not the thumb) bent at its middle joint by more
    than ``curled_deg``."""
    plain = _sized(look, size, ss)
    if look.curled_min_rim_px <= look.min_rim_px:
        return [plain] * 5
    curled = _sized(replace(look, min_rim_px=look.curled_min_rim_px), size, ss)
    middle_joint = geometry.flexion_angles(h)[1::3]  # (5,) degrees, thumb first
    return [plain] + [curled if bend > look.curled_deg else plain for bend in middle_joint[1:]]


def draw_wrist(
    img: np.ndarray, cuff: np.ndarray, hand: np.ndarray, skin: RGB, ss: int, look: HandLook = LOOK
) -> None:
    """The bare wrist from the sleeve's cuff (2,) to the palm's base, output pixels; under the hand."""
    h = np.asarray(hand, np.float64) * ss
    size = hand_size(h)
    if size < 1.0:
        return
    look = _sized(look, size, ss)
    c = np.asarray(cuff, np.float64)[:2] * ss
    base = 0.8 * h[0, :2] + 0.2 * h[9, :2]
    capsule(img, c, base, look.wrist_width * size + 2 * look.rim * size, _shade(skin, look.rim_shade))
    capsule(img, c, base, look.wrist_width * size, _shade(skin, 0.95))
