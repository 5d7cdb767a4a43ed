"""Drawing the synthetic signer's body: torso, neck, sleeves and hands, in depth order.

Layer order: shirt and neck, then the head (a callback: the face module draws it), then the arm
further from the camera with its hand, then the nearer arm and hand, so a hand in front of the face
covers it. An arm whose hand MediaPipe lost goes first, and its relaxed hand is left out where it
would overlap the seen hand (:attr:`~.style.AvatarStyle.lost_hand_behind`). Sizes are fractions of
the avatar's shoulder width so the figure scales with the frame.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ..landmarks import layout
from .hands import capsule, disc, draw_hand, draw_wrist, hand_size, polygon
from .retarget import NECK_BELOW_ANCHOR, relaxed_hand
from .skeleton import AvatarPose
from .style import AvatarStyle

_UPPER_ARM_W = 0.25  # sleeve diameters, fractions of the shoulder width
_ELBOW_W = 0.21
_CUFF_W = 0.165
_CUFF_AT = 0.92  # where the sleeve ends along the forearm (0 = elbow, 1 = wrist)
_HIDE_GROW = 0.3  # a lost hand is hidden where it would come within this many palms of the seen one's box
_NECK_W = 0.34
_PALM = 0.24  # relaxed-hand palm length when a hand is unknown, fraction of the shoulder width
_HIP_W = 1.16  # the shirt's width at the hips
_THIGH, _SHIN = 1.15, 1.1  # leg bone lengths (hip to knee, knee to ankle)
_THIGH_W, _KNEE_W, _ANKLE_W = 0.5, 0.34, 0.24  # trouser-leg diameters


def _shade(colour, k: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, round(c * k)))) for c in colour)  # type: ignore[return-value]


def _shoulder_frame(body: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """(centre (2,), width, across unit (2,) towards the image's right, down unit (2,))."""
    ls, rs = body[layout.LEFT_SHOULDER, :2], body[layout.RIGHT_SHOULDER, :2]
    centre = (ls + rs) / 2
    across = ls - rs
    w = float(np.hypot(*across))
    across = across / w if w > 1e-6 else np.array([1.0, 0.0])
    down = np.array([-across[1], across[0]])
    if down[1] < 0:
        down = -down
    return centre, max(w, 1.0), across, down


def _hip_depth(body: np.ndarray, c: np.ndarray, down: np.ndarray, w: float) -> float:
    """How far below the shoulder centre the hips are (same units as ``body``), at least 1 width."""
    hips = 0.5 * (body[layout.LEFT_HIP, :2] + body[layout.RIGHT_HIP, :2])
    return max(float(np.dot(hips - c, down)), w)


def _draw_legs(img: np.ndarray, hip_l: np.ndarray, hip_r: np.ndarray, down: np.ndarray, w: float, colour) -> None:
    """Two straight legs in trousers from the hips (canvas px), canonical length: the body ends
    where a standing person's does, instead of running to the frame's edge."""
    for hip in (hip_l, hip_r):
        knee = hip + down * _THIGH * w
        ankle = knee + down * _SHIN * w
        _tapered(img, hip, knee, _THIGH_W * w, _KNEE_W * w, colour)
        _tapered(img, knee, ankle, _KNEE_W * w, _ANKLE_W * w, colour)
        _tapered(img, ankle, ankle + down * 0.05 * w, _ANKLE_W * w * 1.1, _ANKLE_W * w * 1.1, _shade(colour, 0.6))


def _draw_torso(img: np.ndarray, body: np.ndarray, style: AvatarStyle, ss: int, neck_top: np.ndarray) -> None:
    c, w, across, down = _shoulder_frame(body)
    hip_depth = _hip_depth(body, c, down, w) * ss
    c, w, neck_top = c * ss, w * ss, neck_top * ss
    ls, rs = c + across * w / 2, c - across * w / 2
    depth = hip_depth + 0.12 * w  # the shirt ends just below the hips
    shirt = style.shirt
    hip_half = max(0.5 * _HIP_W, 0.3) * w
    _draw_legs(img, c + down * hip_depth + across * hip_half * 0.55, c + down * hip_depth - across * hip_half * 0.55,
               down, w, _shade(shirt, 0.7))
    # neck: skin from under the jaw to inside the collar, shaded under the chin
    neck_w = _NECK_W * w
    base = c - down * 0.1 * w  # the neck's base sits above the shoulder line (trapezius)
    _tapered(img, neck_top, base, neck_w * 0.9, neck_w * 1.05, _shade(style.skin, 0.86))
    _tapered(img, neck_top, neck_top + down * 0.12 * w, neck_w * 0.9, neck_w * 0.8, _shade(style.skin, 0.74))
    # shirt: sloping shoulders rising to a crew neck, then straight down past the frame
    pts = np.array(
        [
            rs + down * 0.06 * w - across * 0.04 * w,
            rs - down * 0.03 * w + across * 0.12 * w,
            base - across * 0.22 * w,
            base + down * 0.06 * w,
            base + across * 0.22 * w,
            ls - down * 0.03 * w - across * 0.12 * w,
            ls + down * 0.06 * w + across * 0.04 * w,
            ls + across * 0.1 * w + down * 0.5 * w,
            c + across * hip_half + down * depth,
            c - across * hip_half + down * depth,
            rs - across * 0.1 * w + down * 0.5 * w,
        ]
    )
    polygon(img, pts, shirt)
    for s in (ls, rs):
        disc(img, s + down * 0.09 * w, 0.15 * w, shirt)
    # crew-neck collar: a slightly lighter band around the neck's base
    collar = _shade(shirt, 1.35)
    a = base - across * 0.21 * w
    m = base + down * 0.08 * w
    b = base + across * 0.21 * w
    cv2.polylines(img, [np.round(np.array([a, m, b]) * 16).astype(np.int32)], False, collar,
                  max(1, int(round(0.04 * w))), cv2.LINE_AA, 4)  # fmt: skip


def _arm_points(pose: AvatarPose, side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sh, el, wr = (
        (layout.LEFT_SHOULDER, layout.LEFT_ELBOW, layout.LEFT_WRIST)
        if side == 0
        else (layout.RIGHT_SHOULDER, layout.RIGHT_ELBOW, layout.RIGHT_WRIST)
    )
    return pose.body[sh].astype(np.float64), pose.body[el].astype(np.float64), pose.body[wr].astype(np.float64)


def _hand_for(pose: AvatarPose, side: int, width: float) -> np.ndarray:
    hand = pose.left_hand if side == 0 else pose.right_hand
    if hand is not None:
        return np.asarray(hand, np.float64)
    _, el, wr = _arm_points(pose, side)
    d = wr[:2] - el[:2]
    if float(np.hypot(*d)) < 1e-6:
        d = np.array([0.0, 1.0])
    return relaxed_hand(wr, d, _PALM * width * pose.hand_scale, side).astype(np.float64)


def lost_hand_hidden(pose: AvatarPose, side: int) -> bool:
    """Whether ``side``'s hand (0 left, 1 right) is lost (no points: drawn relaxed) and that
    relaxed hand would overlap the other, seen hand: its points' box meets the seen hand's box
    grown by 0.3 palm lengths (:func:`~.hands.hand_size`), in the pose's pixels."""
    hands_ = (pose.left_hand, pose.right_hand)
    seen = hands_[1 - side]
    if hands_[side] is not None or seen is None:
        return False
    _, width, _, _ = _shoulder_frame(pose.body.astype(np.float64))
    relaxed = _hand_for(pose, side, width)[:, :2]
    seen = np.asarray(seen, np.float64)
    grow = _HIDE_GROW * hand_size(seen)
    low, high = seen[:, :2].min(axis=0) - grow, seen[:, :2].max(axis=0) + grow
    return bool(np.all(relaxed.max(axis=0) >= low) and np.all(relaxed.min(axis=0) <= high))


def _draw_arm(
    img: np.ndarray, pose: AvatarPose, side: int, style: AvatarStyle, ss: int, width: float, hand_hidden: bool = False,
) -> None:
    """One sleeve, its wrist and hand (``hand_hidden``: the sleeve alone, its hand behind the other)."""
    sh, el, _ = _arm_points(pose, side)
    hand = _hand_for(pose, side, width)
    wrist = hand[0, :2]
    cuff = el[:2] + (wrist - el[:2]) * _CUFF_AT
    w = width * ss
    sleeve = _shade(style.shirt, 1.22)  # a touch lighter than the torso: arms read in front of it
    rim = _shade(style.shirt, 0.45)
    _, _, _, down = _shoulder_frame(pose.body.astype(np.float64))
    s, e, c = (sh[:2] + down * 0.06 * width) * ss, el[:2] * ss, cuff * ss  # the sleeve's top: no bump
    # outline first, then the cloth, then a faint light stripe (the sleeve's volume)
    capsule(img, s, e, (_UPPER_ARM_W + 0.035) * w, rim)
    _tapered(img, e, c, (_ELBOW_W + 0.035) * w, (_CUFF_W + 0.035) * w, rim)
    capsule(img, s, e, _UPPER_ARM_W * w, sleeve)
    _tapered(img, e, c, _ELBOW_W * w, _CUFF_W * w, sleeve)
    light = _shade(style.shirt, 1.5)
    capsule(img, s + (e - s) * 0.12, e - (e - s) * 0.1, 0.06 * w, light)
    capsule(img, e + (c - e) * 0.1, c - (c - e) * 0.15, 0.045 * w, light)
    if hand_hidden:
        return
    draw_wrist(img, cuff, hand, style.skin, ss, style.hands)
    draw_hand(img, hand, side, style.skin, ss, style.hands)


def _tapered(img: np.ndarray, a: np.ndarray, b: np.ndarray, wa: float, wb: float, colour) -> None:
    """A segment whose diameter goes from ``wa`` at ``a`` to ``wb`` at ``b`` (canvas pixels)."""
    d = b - a
    n = float(np.hypot(*d))
    if n < 1e-6:
        disc(img, a, wa / 2, colour)
        return
    perp = np.array([-d[1], d[0]]) / n
    polygon(img, np.array([a + perp * wa / 2, b + perp * wb / 2, b - perp * wb / 2, a - perp * wa / 2]), colour)
    disc(img, a, wa / 2, colour)
    disc(img, b, wb / 2, colour)


def _arm_depth(pose: AvatarPose, side: int) -> float:
    _, el, wr = _arm_points(pose, side)
    hand = pose.left_hand if side == 0 else pose.right_hand
    z = [el[2], wr[2], wr[2]]
    if hand is not None:
        z.append(float(np.mean(hand[:, 2])))
    return float(np.mean(z))


def draw_signer(
    img: np.ndarray,
    pose: AvatarPose,
    style: AvatarStyle,
    ss: int,
    draw_head: Callable[[np.ndarray], None],
) -> None:
    """Draw the signer into ``img`` (RGB uint8, ``ss`` x the output size, already holding the background).

    pose: output-pixel coordinates (see :class:`AvatarPose`); ``draw_head(img)`` is called after the
    torso and neck and before the arms, so hands in front of the face cover it.
    """
    _, width, _, down = _shoulder_frame(pose.body.astype(np.float64))
    neck_top = np.asarray(pose.face_anchor, np.float64) + down * NECK_BELOW_ANCHOR * pose.face_scale
    _draw_torso(img, pose.body.astype(np.float64), style, ss, neck_top)
    draw_head(img)
    seen = (pose.left_hand is not None, pose.right_hand is not None)
    # further arm first; with lost_hand_behind, an arm whose hand is lost before either
    order = sorted((0, 1), key=lambda side: (style.lost_hand_behind and seen[side], -_arm_depth(pose, side)))
    for side in order:
        _draw_arm(img, pose, side, style, ss, width, style.lost_hand_behind and lost_hand_hidden(pose, side))
