"""The typed hand-off between retargeting, face animation and drawing.

All coordinates are in *output* pixels (x to the right, y down) as float32; z is a depth in the
same pixel units, smaller z = closer to the camera (MediaPipe's convention).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


def _lerp(a: np.ndarray | None, b: np.ndarray | None, t: float) -> np.ndarray | None:
    if a is None or b is None:
        return b if t >= 0.5 else a
    return ((1.0 - t) * a + t * b).astype(np.float32)


@dataclass(frozen=True)
class AvatarPose:
    """One frame of the synthetic signer, ready to draw.

    body:        (33, 3) float32, MediaPipe Pose indices, retargeted to the canonical proportions.
    body_valid:  (33,) bool, which body points are known.
    left_hand:   (21, 3) float32 MediaPipe Hands points of the signer's left hand, or None (no hand
                 seen: the drawer shows a relaxed hand at the wrist).
    right_hand:  likewise for the right hand.
    face_anchor: (2,) float32, where face-mesh point 168 (nose bridge between the eyes) goes.
    face_scale:  output pixels per face unit (1 face unit = the 3-D distance between the outer eye
                 corners, mesh points 33 and 263, on the canonical face).
    face:        (478, 3) float32 canonical face mesh carrying the signer's expression and head
                 pose, or None until the face animator has filled it in.
    hand_scale:  factor (>= 1) on the canonical palm (0.24 shoulder widths) at which this frame's
                 hands are drawn; the drawer gives a relaxed hand the same size (hands grown on a
                 small signer: :attr:`~.retarget.BodyProportions.min_palm_px`).
    presence:    how much of the avatar is drawn, in [0, 1]: 1 the avatar as it is, 0 the empty
                 backdrop (nobody in the frame), between them the avatar faded into the backdrop
                 (:class:`~.animator.PresenceFader`, when the signer leaves the frame).
    """

    body: np.ndarray
    body_valid: np.ndarray
    left_hand: np.ndarray | None
    right_hand: np.ndarray | None
    face_anchor: np.ndarray
    face_scale: float
    face: np.ndarray | None = None
    hand_scale: float = 1.0
    presence: float = 1.0

    def with_face(self, face: np.ndarray | None) -> "AvatarPose":
        return replace(self, face=face)

    def scaled(self, k: float) -> "AvatarPose":
        """The same pose in a frame ``k`` times the size: every coordinate (x, y and z) and the face
        scale times ``k``; the hand scale, a factor on the canonical palm, as it is."""

        def times(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else (np.asarray(a, np.float32) * np.float32(k))

        return replace(self, body=times(self.body), left_hand=times(self.left_hand), right_hand=times(self.right_hand),
                       face_anchor=times(self.face_anchor), face_scale=float(self.face_scale) * k, face=times(self.face))

    def blend(self, other: "AvatarPose", t: float) -> "AvatarPose":
        """Linear blend: t=0 gives self, t=1 gives other (a parallel run's seams cross-fade chunks with it).
        An empty frame's pose (presence 0) has no place: blended with one, the other pose keeps its
        place and fades."""
        if other.presence <= 0.0 < self.presence:
            return replace(self, presence=float((1.0 - t) * self.presence))
        if self.presence <= 0.0 < other.presence:
            return replace(other, presence=float(t * other.presence))
        return AvatarPose(
            body=_lerp(self.body, other.body, t),
            body_valid=self.body_valid | other.body_valid,
            left_hand=_lerp(self.left_hand, other.left_hand, t),
            right_hand=_lerp(self.right_hand, other.right_hand, t),
            face_anchor=_lerp(self.face_anchor, other.face_anchor, t),
            face_scale=float((1.0 - t) * self.face_scale + t * other.face_scale),
            face=_lerp(self.face, other.face, t),
            hand_scale=float((1.0 - t) * self.hand_scale + t * other.hand_scale),
            presence=float((1.0 - t) * self.presence + t * other.presence),
        )
