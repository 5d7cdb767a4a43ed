"""From one frame of landmarks to one :class:`AvatarPose`: body retargeting + face animation.

Both halves are calibrated on the first frames of a video (the signer's own bone lengths and
neutral face); :class:`PresenceFader` covers the frames in which nobody is seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..landmarks import geometry, layout
from .expression import FaceAnimator, FaceConfig
from .face_gains import FaceGainCalibration
from .retarget import BodyProportions, Retargeter, ScaleTracking
from .skeleton import AvatarPose


@dataclass(frozen=True)
class AnimatorConfig:
    proportions: BodyProportions = BodyProportions()
    face: FaceConfig = FaceConfig()
    face_gains: FaceGainCalibration = FaceGainCalibration()
    scale: ScaleTracking = ScaleTracking()

    def at_rate(self, fps: float) -> "AnimatorConfig":
        """These settings for video at ``fps`` frames/s (the frame-counted ones, tuned at 30 fps,
        kept as long in seconds: :meth:`ScaleTracking.at_rate`)."""
        return replace(self, scale=self.scale.at_rate(fps))


def has_body(confidence: np.ndarray, data: np.ndarray) -> bool:
    """True when the frame shows a signer's body: the shared rule, both shoulders and the head up
    (:func:`~signanon.landmarks.geometry.upright_body_present`). ``confidence``: (586,) float32,
    ``data``: (586, 3) float32."""
    return geometry.upright_body_present(confidence, data)


class AvatarAnimator:
    """Turns landmark frames (float32 ``(586, 3)`` data, ``(586,)`` confidence) into avatar poses."""

    def __init__(self, retargeter: Retargeter, face: FaceAnimator):
        self.retargeter = retargeter
        self.face = face

    @classmethod
    def calibrate(
        cls,
        frames: Sequence[tuple[np.ndarray, np.ndarray]],
        width: int,
        height: int,
        config: AnimatorConfig = AnimatorConfig(),
        picture: tuple[float, float, float, float] | None = None,
    ) -> "AvatarAnimator":
        """Measure the signer on ``frames`` (raises NoPersonError when no frame has a body);
        ``picture``: the box inside black bars, if any (see :meth:`Retargeter.calibrate`)."""
        retargeter = Retargeter.calibrate(frames, width, height, config.proportions, config.scale, picture)
        faces = [(d[layout.FACE], c[layout.FACE]) for d, c in frames]
        face = FaceAnimator.calibrate(faces, width, height, config.face)
        return cls(retargeter, face)

    def probe_copy(self) -> "AvatarAnimator":
        """A copy whose state (both halves keep some: smoothing, size tracking) moves on its own:
        the calibration's probes animate it, and the run's own animator stays as it was."""
        import copy

        return AvatarAnimator(copy.deepcopy(self.retargeter), copy.deepcopy(self.face))

    def __call__(self, data: np.ndarray, confidence: np.ndarray) -> AvatarPose | None:
        """The avatar for one frame, or None when the frame shows no body."""
        pose = self.retargeter(data, confidence)
        if pose is None:
            return None
        if geometry.face_present(confidence):
            face = self.face(data[layout.FACE], confidence[layout.FACE], pose.face_anchor, pose.face_scale)
        else:
            face = self.face(None, None, pose.face_anchor, pose.face_scale)
        # a hand at the face touches the drawn face where the signer's touches theirs
        return self.retargeter.keep_face_contact(pose.with_face(face), data, confidence)

    def neutral(self) -> AvatarPose:
        """Arms relaxed, hands at rest, a neutral frontal face."""
        pose = self.retargeter.neutral_pose()
        return pose.with_face(self.face(None, None, pose.face_anchor, pose.face_scale))


class PresenceFader:
    """Fills frames without a person: the last pose, held where the signer was last seen and faded
    into the empty backdrop over ``fade_frames`` (smoothstep), then the empty backdrop.

    Before anyone has been seen the backdrop is empty too, so an avatar enters and leaves the frame
    where and when the signer does (it used to stand in the middle of an empty room, and to walk
    back there after the signer left through an edge). ``empty`` is any pose of the run (the
    neutral one): it is drawn at presence 0, the backdrop alone. Nothing of the source is ever
    shown: a frame without landmarks is drawn from earlier landmarks, never passed through.
    """

    def __init__(self, empty: AvatarPose, fade_frames: int):
        self.empty = replace(empty, presence=0.0)
        self.fade_frames = max(1, int(fade_frames))
        self._last: AvatarPose | None = None
        self._missing = 0

    def __call__(self, pose: AvatarPose | None) -> AvatarPose:
        if pose is not None:
            self._last, self._missing = pose, 0
            return pose
        self._missing += 1
        if self._last is None or self._missing >= self.fade_frames:
            return self.empty
        t = self._missing / self.fade_frames
        t = t * t * (3.0 - 2.0 * t)  # smoothstep: starts and ends gently
        return replace(self._last, presence=float(self._last.presence * (1.0 - t)))
