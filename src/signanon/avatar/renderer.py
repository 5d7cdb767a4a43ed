"""Compose one avatar frame: background, body, head and hands, drawn supersampled then downscaled."""

from __future__ import annotations

import itertools
import math
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import cv2
import numpy as np

from .body import draw_signer
from .canonical import CanonicalFace, load_canonical_face
from .hands import hand_size
from .head import draw_head
from .skeleton import AvatarPose
from .style import AvatarStyle

T = TypeVar("T")


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
        self._backgrounds_at: dict[tuple[int, int], np.ndarray] = {}  # (w, h) -> background of a drawing at that size
        self._backdrop = self._filled((self.out_height, self.out_width, 3))  # an empty frame, copied from

    def _filled(self, shape: tuple[int, int, int]) -> np.ndarray:
        image = np.empty(shape, np.uint8)
        image[:] = np.array(self.style.background, np.uint8)
        return image

    def render(self, pose: AvatarPose, face_features: bool = True) -> np.ndarray:
        """The frame of ``pose`` (RGB uint8 ``(out_height, out_width, 3)``); ``face_features`` False
        draws the face blank (hair and skin).

        At a ``scale`` over 1 the frame is drawn that much larger from the same pose (input
        pixels). Either way the hands may come from a drawing of another size, enlarged: each
        hand's region (its points' hull, grown by 0.35 palm lengths, feathered) is the frame drawn
        at the input's size (at a ``scale`` over 1), or smaller where a palm would be drawn over
        ``style.max_palm_px`` pixels, or, at a ``scale`` over 1, larger (at most the output's size)
        where every palm would be drawn under ``style.min_palm_px`` (:meth:`hand_drawing_scale`).
        Measured with the read-back: the larger drawing brings a small face's brow and mouth series
        in (benchmarks/signing_issue11.txt, session 21), while a large drawing of a hand, its
        fingers crisp and apart, is found less often than a smaller one enlarged (ASL HOUSE 2x:
        0.86 of hands against 0.98; DGS ZUG's poses drawn at 1440x1080: 0.87, drawn at 640x480 and
        enlarged: 0.94; the clip scaled up 2.25 times, whole runs: 0.82 -> 0.93 with palms drawn at
        32 px; hands_issue11.txt, session 28), and a tiny one enlarged 4-6x is a blob (ASL HOUSE
        at 106x80: 0.85 -> 0.93 with palms drawn at 24 px; session 44).

        A pose's ``presence`` under 1 fades the frame into the empty backdrop (0: the backdrop
        alone, nothing drawn)."""
        if pose.presence <= 0.0:
            return self._empty()
        frame = self._render(pose, face_features)
        if pose.presence < 1.0:
            backdrop = self._empty()
            frame = (backdrop + pose.presence * (frame.astype(np.float32) - backdrop)).round().astype(np.uint8)
        return frame

    def _empty(self) -> np.ndarray:
        """The empty backdrop at the output's size (a new array: a copy, not a fill, per frame)."""
        return self._backdrop.copy()

    def _render(self, pose: AvatarPose, face_features: bool) -> np.ndarray:
        """The frame of ``pose`` as :meth:`render` draws it at presence 1."""
        k = self.hand_drawing_scale(pose)
        if self.scale == 1.0:
            big = self._drawn(self._background, self.ss, (self.width, self.height), pose, face_features)
            if k == 1.0:
                return big
        else:
            big = self._drawn(self._big_background, self._big_ss, (self.out_width, self.out_height), pose, face_features)
        if k >= self.scale:  # the hands drawn at the output's own size
            return big
        enlarge = self.scale / k  # output px per px of the hands' drawing
        region = self._hand_region(pose, enlarge)
        if region is None:
            return big
        mask, (x, y) = region
        drawn = self._drawn_at(pose, k, face_features)
        h, w = mask.shape
        fx, fy = drawn.shape[1] / self.out_width, drawn.shape[0] / self.out_height
        # the region of the hands' drawing enlarged to the output's pixels (as cv2.resize maps them)
        to_drawn = np.float32([[fx, 0.0, (x + 0.5) * fx - 0.5], [0.0, fy, (y + 0.5) * fy - 0.5]])
        enlarged = cv2.warpAffine(drawn, to_drawn, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_REPLICATE)
        weight = mask[:, :, None].astype(np.float32) / 255.0
        blend = big[y : y + h, x : x + w] * (1.0 - weight) + enlarged * weight
        big[y : y + h, x : x + w] = blend.round().astype(np.uint8)
        return big

    def hand_drawing_scale(self, pose: AvatarPose) -> float:
        """Pixels of the frame the hands are drawn in per pose (input) pixel: 1 (the input's size)
        unless a seen hand's palm (:func:`~.hands.hand_size`) would be drawn over
        ``style.max_palm_px`` pixels at that size, then a power of 2 ** (-1/4) (a few canvas sizes)
        that draws the largest palm at 0.84-1 times that, never under 1/8; or, on a frame drawn
        larger than the input (``scale`` over 1), where every palm would be drawn under
        ``style.min_palm_px`` at the input's size, a power of 2 ** (1/4) that draws the largest at
        1-1.19 times that, never over ``scale`` (the output's own size)."""
        palms = [hand_size(np.asarray(h, np.float64)) for h in (pose.left_hand, pose.right_hand) if h is not None]
        if not palms:
            return 1.0
        largest, limit, floor = max(palms), self.style.max_palm_px, self.style.min_palm_px
        if limit is not None and largest > limit:
            steps = min(math.ceil(-4.0 * math.log2(limit / largest)), 12)
            return 2.0 ** (-steps / 4.0)
        if floor is not None and self.scale > 1.0 and largest < floor:
            return min(2.0 ** (math.ceil(4.0 * math.log2(floor / max(largest, 1e-6))) / 4.0), self.scale)
        return 1.0

    def _drawn(self, background: np.ndarray, ss: int, size: tuple[int, int], pose: AvatarPose, face_features: bool) -> np.ndarray:
        """A new ``size`` (w, h) frame of ``pose``, drawn at ``ss`` canvas pixels per input pixel."""
        canvas = self._draw(background, ss, pose, face_features)
        if canvas.shape[1] == size[0] and canvas.shape[0] == size[1]:
            return canvas.copy()
        return cv2.resize(canvas, size, interpolation=cv2.INTER_AREA)

    def _drawn_at(self, pose: AvatarPose, k: float, face_features: bool) -> np.ndarray:
        """A new frame of ``pose`` drawn at ``k`` times the input's size (``ss`` canvas pixels per
        pixel of it)."""
        if k == 1.0:
            return self._drawn(self._background, self.ss, (self.width, self.height), pose, face_features)
        size = (max(1, round(self.width * k)), max(1, round(self.height * k)))
        backgrounds = self._backgrounds_at
        background = backgrounds.get(size)
        if background is None:
            background = backgrounds[size] = self._filled((size[1] * self.ss, size[0] * self.ss, 3))
        return self._drawn(background, self.ss, size, pose.scaled(k), face_features)

    def _draw(self, background: np.ndarray, ss: int, pose: AvatarPose, face_features: bool) -> np.ndarray:
        """``pose`` drawn on this thread's canvas of ``background``'s size (a copy of it, ``ss``
        canvas pixels per input pixel); returns the canvas, reused by the next call."""
        canvases = getattr(self._local, "canvases", None)
        if canvases is None:
            canvases = self._local.canvases = {}
        canvas = canvases.get(background.shape)
        if canvas is None:
            canvas = canvases[background.shape] = np.empty_like(background)
        np.copyto(canvas, background)
        face = pose.face

        def head(img: np.ndarray) -> None:
            if face is not None:
                draw_head(img, face, self.style, ss, face_features, self.canonical)

        draw_signer(canvas, pose, self.style, ss, head)
        return canvas

    def _hand_region(self, pose: AvatarPose, enlarge: float) -> tuple[np.ndarray, tuple[int, int]] | None:
        """``(mask, (x, y))``: uint8 ``(h, w)``, 255 on the hands fading to 0 over about ``enlarge``
        pixels (where the enlarged drawing is blended in), for the box of the output frame whose top
        left corner is ``(x, y)`` (it holds every nonzero weight); None without a hand."""
        hands = [np.asarray(h, np.float64)[:, :2] * self.scale for h in (pose.left_hand, pose.right_hand) if h is not None]
        if not hands:
            return None
        radii = [max(1, int(round(0.35 * float(np.linalg.norm(pts[0] - pts[9]))))) for pts in hands]
        sigma = max(1.0, enlarge)
        margin = max(radii) + int(math.ceil(4.0 * sigma)) + 1
        points = np.concatenate(hands)
        x0, y0 = (max(0, int(math.floor(v)) - margin) for v in points.min(axis=0))
        x1 = min(self.out_width, int(math.ceil(points[:, 0].max())) + margin + 1)
        y1 = min(self.out_height, int(math.ceil(points[:, 1].max())) + margin + 1)
        if x1 <= x0 or y1 <= y0:
            return None
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        for pts, r in zip(hands, radii):
            outside = np.full_like(mask, 255)
            cv2.fillConvexPoly(outside, cv2.convexHull((pts - (x0, y0)).astype(np.float32)).astype(np.int32), 0)
            # the hull grown by r: pixels within r of it (a distance transform; a dilation with a
            # disc this large cost ~9 ms a hand at 1080p; DIST_MASK_PRECISE gave other pixels
            # from run to run while the renderer drew on several threads, the 5x5 mask does not)
            mask[cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_5) <= r] = 255
        return cv2.GaussianBlur(mask, (0, 0), sigma), (x0, y0)


def drawn_ahead(poses: Iterable[T], draw: Callable[[T], np.ndarray], depth: int = 2) -> Iterator[tuple[T, np.ndarray]]:
    """``(pose, draw(pose))`` for each of ``poses``, in order, the next ``depth`` drawn ahead on
    one worker thread while the caller reads the last one.

    The calibration probes draw a frame (``draw``: the renderer and x264, mostly numpy, OpenCV
    and libx264, ~37 ms at 640x480) and then read it with MediaPipe (~52 ms, which waits outside
    Python's lock): drawn ahead, the two overlap on a second core. The frames and their order are
    those of drawing in line, so what a probe measures is unchanged. ``draw`` runs on one thread
    at a time, never beside the caller's use of the same renderer."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="signanon-probe-draw") as pool:
        pending: deque = deque()
        rest = iter(poses)
        for pose in itertools.islice(rest, max(1, depth)):
            pending.append((pose, pool.submit(draw, pose)))
        while pending:
            pose, drawing = pending.popleft()
            for nxt in itertools.islice(rest, 1):
                pending.append((nxt, pool.submit(draw, nxt)))
            yield pose, drawing.result()
