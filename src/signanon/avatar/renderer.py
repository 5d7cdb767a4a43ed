"""Compose one avatar frame: background, body, head and hands, drawn supersampled then downscaled."""

from __future__ import annotations

import cv2
import numpy as np

from .body import draw_signer
from .face import draw_head
from .skeleton import AvatarPose
from .style import AvatarStyle


class AvatarRenderer:
    """Draws :class:`AvatarPose` frames at a fixed output size.

    The canvas is ``style.supersample`` times the output size and is reused between frames; the
    result is an RGB ``uint8`` array of shape ``(height, width, 3)``. No pixel of any source video
    ever reaches this class: it sees landmarks only.
    """

    def __init__(self, width: int, height: int, style: AvatarStyle = AvatarStyle()):
        if width <= 0 or height <= 0:
            raise ValueError(f"output size must be positive, got {width}x{height}")
        self.width, self.height, self.style = width, height, style
        ss = max(1, int(style.supersample))
        self.ss = ss
        self._canvas = np.empty((height * ss, width * ss, 3), np.uint8)
        self._background = np.array(style.background, np.uint8)

    def render(self, pose: AvatarPose) -> np.ndarray:
        canvas = self._canvas
        canvas[:] = self._background
        face = pose.face

        def head(img: np.ndarray) -> None:
            if face is not None:
                draw_head(img, face, self.style, self.ss)

        draw_signer(canvas, pose, self.style, self.ss, head)
        if self.ss == 1:
            return canvas.copy()
        return cv2.resize(canvas, (self.width, self.height), interpolation=cv2.INTER_AREA)
