"""MediaPipe Holistic, frame by frame, into the shared landmark layout (see :mod:`.layout`).

MediaPipe is imported lazily: importing :mod:`signanon` stays cheap and a missing install gets a
one-line hint instead of an ImportError traceback.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from ..errors import SignanonError
from . import layout


@dataclass(frozen=True)
class HolisticConfig:
    """Settings of the MediaPipe Holistic graph.

    Only ``model_complexity=1`` works offline: MediaPipe 0.10.21's wheel ships that pose model
    alone (0 and 2 are downloaded on first use).
    """

    model_complexity: int = 1
    refine_face_landmarks: bool = True  # 478 face points: the 468-point mesh + irises (gaze)
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    static_image_mode: bool = False  # False: track between frames (faster, steadier on video)


def mediapipe_solution(name: str):
    """``mediapipe.python.solutions.<name>`` (e.g. "holistic", "face_mesh"), imported on first use;
    a missing MediaPipe raises a one-line SignanonError with the install command."""
    import importlib

    try:
        return importlib.import_module(f"mediapipe.python.solutions.{name}")
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise SignanonError(
            f"MediaPipe is not installed ({err}); install it with: pip install mediapipe==0.10.21"
        ) from None


class MediaPipeGraph:
    """What every MediaPipe estimator shares: the graph's lifetime and the frame check.

    Subclasses set ``self._graph`` (a MediaPipe solution object) in ``__init__``.
    """

    _graph = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the graph. While the interpreter shuts down (a graph still open then, e.g. held
        by an exception's reference cycle, is closed by the last garbage collection) the graph
        is only dropped: MediaPipe's threads can no longer take the GIL, so closing would wait
        for them forever, and the process frees everything anyway."""
        graph, self._graph = self._graph, None
        if graph is not None and not sys.is_finalizing():
            graph.close()

    @staticmethod
    def _check_frame(frame: np.ndarray) -> None:
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 (H, W, 3) frame, got {frame.dtype} {frame.shape}")


class HolisticEstimator(MediaPipeGraph):
    """Landmarks of one video, one frame at a time (tracking uses the previous frames).

    Use as a context manager, or call :meth:`close`. Each call takes an RGB ``uint8`` frame of
    shape ``(H, W, 3)`` and returns ``(data, confidence)``: float32 ``(586, 3)`` and ``(586,)`` in the
    layout of :mod:`.layout`. Missing parts have confidence 0 and zero coordinates.
    """

    def __init__(self, config: HolisticConfig = HolisticConfig()):
        if config.model_complexity != 1:
            raise SignanonError(
                "model_complexity must be 1: MediaPipe 0.10.21 ships only that pose model offline"
            )
        self.config = config
        holistic = mediapipe_solution("holistic")
        self._graph = holistic.Holistic(
            static_image_mode=config.static_image_mode,
            model_complexity=config.model_complexity,
            smooth_landmarks=True,
            refine_face_landmarks=config.refine_face_landmarks,
            min_detection_confidence=config.min_detection_confidence,
            min_tracking_confidence=config.min_tracking_confidence,
        )

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._check_frame(frame)
        height, width = frame.shape[:2]
        results = self._graph.process(np.ascontiguousarray(frame))
        data = np.zeros((layout.NUM_POINTS, 3), np.float32)
        conf = np.zeros(layout.NUM_POINTS, np.float32)
        parts = (
            (results.pose_landmarks, layout.BODY, True, True),
            (results.face_landmarks, layout.FACE, True, False),
            (results.left_hand_landmarks, layout.LEFT_HAND, True, False),
            (results.right_hand_landmarks, layout.RIGHT_HAND, True, False),
            (results.pose_world_landmarks, layout.BODY_WORLD, False, True),
        )
        for landmarks, rows, in_pixels, has_visibility in parts:
            if landmarks is None:
                continue
            points = landmarks.landmark
            n = rows.stop - rows.start
            if len(points) < n:  # e.g. a 468-point face when irises were not refined
                n = len(points)
            xyz = np.array([(p.x, p.y, p.z) for p in points[:n]], np.float32)
            if in_pixels:
                xyz[:, 0] *= width
                xyz[:, 1] *= height
            data[rows.start : rows.start + n] = xyz
            if has_visibility:
                # a detected point always counts as present; visibility only grades it
                conf[rows.start : rows.start + n] = np.array(
                    [max(p.visibility, 1e-3) for p in points[:n]], np.float32
                )
            else:
                conf[rows.start : rows.start + n] = 1.0
        return data, conf
