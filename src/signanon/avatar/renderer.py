"""Compose one avatar frame: background, body, head and hands, drawn supersampled then downscaled."""

from __future__ import annotations

import math
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

    def __init__(self, width: int, height: int, style: AvatarStyle = AvatarStyle(), canonical: CanonicalFace | None = None,
                 scale: float = 1.0):
        if width <= 0 or height <= 0:
            raise ValueError(f"output size must be positive, got {width}x{height}")
        if scale < 1.0:
            raise ValueError(f"scale must be at least 1, got {scale}")
        self.width, self.height, self.style, self.scale = width, height, style, float(scale)
        self.canonical = canonical or load_canonical_face()
        ss = max(1, int(style.supersample))
        self.ss = ss
        self._local = threading.local()
        # a full background image to copy from: assigning a 3-colour array by broadcasting costs
        # ~12 ms a frame at 1080x1440, a plain copy ~0.1 ms
        self._background = self._filled((height * ss, width * ss, 3))
        self.out_width, self.out_height = width, height
        if self.scale != 1.0:
            self.out_width, self.out_height = round(width * self.scale), round(height * self.scale)
            self._big_ss = ss * math.ceil(self.scale)
            self._big_background = self._filled((height * self._big_ss, width * self._big_ss, 3))

    def _filled(self, shape: tuple[int, int, int]) -> np.ndarray:
        image = np.empty(shape, np.uint8)
        image[:] = np.array(self.style.background, np.uint8)
        return image

    def render(self, pose: AvatarPose, face_features: bool = True) -> np.ndarray:
        """The frame of ``pose`` (RGB uint8 ``(out_height, out_width, 3)``); ``face_features`` False
        draws the face blank (hair and skin).

        At a ``scale`` over 1 the frame is drawn that much larger from the same pose (input
        pixels), except the hands: each hand's region (its points' hull, grown by 0.35 palm
        lengths, feathered) is the frame drawn at the input's size and enlarged. Measured with
        the read-back (benchmarks/signing_issue11.txt, session 21): the larger drawing brings a
        small face's brow and mouth series in, and the larger drawing of a hand, its fingers crisp
        and apart, is found less often than the enlarged one (ASL HOUSE 2x: 0.86 of hands against
        0.98)."""
        if self.scale == 1.0:
            return self._drawn(self._background, self.ss, (self.width, self.height), pose, face_features)
        big = self._drawn(self._big_background, self._big_ss, (self.out_width, self.out_height), pose, face_features)
        mask = self._hand_mask(pose)
        if mask is None:
            return big
        small = self._drawn(self._background, self.ss, (self.width, self.height), pose, face_features)
        enlarged = cv2.resize(small, (self.out_width, self.out_height), interpolation=cv2.INTER_CUBIC)
        x, y, w, h = cv2.boundingRect(mask)  # blended there only: elsewhere the mask is 0 (~5x less work)
        weight = mask[y : y + h, x : x + w, None].astype(np.float32) / 255.0
        blend = big[y : y + h, x : x + w] * (1.0 - weight) + enlarged[y : y + h, x : x + w] * weight
        big[y : y + h, x : x + w] = blend.round().astype(np.uint8)
        return big

    def _drawn(self, background: np.ndarray, ss: int, size: tuple[int, int], pose: AvatarPose, face_features: bool) -> np.ndarray:
        """A new ``size`` (w, h) frame of ``pose``, drawn at ``ss`` canvas pixels per input pixel."""
        canvas = self._draw(background, ss, pose, face_features)
        if canvas.shape[1] == size[0] and canvas.shape[0] == size[1]:
            return canvas.copy()
        return cv2.resize(canvas, size, interpolation=cv2.INTER_AREA)

    def _draw(self, background: np.ndarray, ss: int, pose: AvatarPose, face_features: bool) -> np.ndarray:
        """``pose`` drawn on this thread's canvas of ``background``'s size (a copy of it, ``ss``
        canvas pixels per input pixel); returns the canvas, reused by the next call."""
        canvases = getattr(self._local, "canvases", None)
        if canvases is None:
            canvases = self._local.canvases = {}
        canvas = canvases.get(ss)
        if canvas is None:
            canvas = canvases[ss] = np.empty_like(background)
        np.copyto(canvas, background)
        face = pose.face

        def head(img: np.ndarray) -> None:
            if face is not None:
                draw_head(img, face, self.style, ss, face_features, self.canonical)

        draw_signer(canvas, pose, self.style, ss, head)
        return canvas

    def _hand_mask(self, pose: AvatarPose) -> np.ndarray | None:
        """uint8 ``(out_height, out_width)``, 255 on the hands fading to 0 (None: no hand)."""
        hands = [h for h in (pose.left_hand, pose.right_hand) if h is not None]
        if not hands:
            return None
        mask = np.zeros((self.out_height, self.out_width), np.uint8)
        for hand in hands:
            pts = np.asarray(hand, np.float64)[:, :2] * self.scale
            hull = cv2.convexHull(pts.astype(np.float32)).astype(np.int32)
            one = np.zeros_like(mask)
            cv2.fillConvexPoly(one, hull, 255)
            r = max(1, int(round(0.35 * float(np.linalg.norm(pts[0] - pts[9])))))
            mask |= cv2.dilate(one, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        return cv2.GaussianBlur(mask, (0, 0), max(1.0, self.scale))
