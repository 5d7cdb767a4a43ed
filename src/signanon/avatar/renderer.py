"""Compose one avatar frame: background, body, head and hands, drawn supersampled then downscaled."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from .body import draw_signer
from .canonical import CanonicalFace, load_canonical_face
from .head import draw_head
from .skeleton import AvatarPose
from .style import AvatarStyle


class AvatarRenderer:
    """Draws :class:`AvatarPose` frames at a fixed output size.

    The canvas is ``style.supersample`` times the output size and is reused between frames (one
    per thread, so several threads may render at once); the result is a new RGB ``uint8`` array of
    shape ``(height, width, 3)``. No pixel of any source video ever reaches this class: it sees
    landmarks only. ``canonical``: the canonical face the poses' faces were animated on (a
    :class:`~.canonical.FaceShape` of it); the head (hair, ears) is fitted to it.
    """

    def __init__(self, width: int, height: int, style: AvatarStyle = AvatarStyle(), canonical: CanonicalFace | None = None):
        if width <= 0 or height <= 0:
            raise ValueError(f"output size must be positive, got {width}x{height}")
        self.width, self.height, self.style = width, height, style
        self.canonical = canonical or load_canonical_face()
        ss = max(1, int(style.supersample))
        self.ss = ss
        shape = (height * ss, width * ss, 3)
        self._local = threading.local()
        # a full background image to copy from: assigning a 3-colour array by broadcasting costs
        # ~12 ms a frame at 1080x1440, a plain copy ~0.1 ms
        self._background = np.empty(shape, np.uint8)
        self._background[:] = np.array(style.background, np.uint8)

    def render(self, pose: AvatarPose, face_features: bool = True) -> np.ndarray:
        """The frame of ``pose``; ``face_features`` False draws the face blank (hair and skin)."""
        canvas = getattr(self._local, "canvas", None)
        if canvas is None:
            canvas = self._local.canvas = np.empty_like(self._background)
        np.copyto(canvas, self._background)
        face = pose.face

        def head(img: np.ndarray) -> None:
            if face is not None:
                draw_head(img, face, self.style, self.ss, face_features, self.canonical)

        draw_signer(canvas, pose, self.style, self.ss, head)
        if self.ss == 1:
            return canvas.copy()
        return cv2.resize(canvas, (self.width, self.height), interpolation=cv2.INTER_AREA)
