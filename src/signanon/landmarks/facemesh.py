"""MediaPipe FaceMesh alone (one face, 478 points with irises), for face photos and face crops.

For signing video use :class:`~.holistic.HolisticEstimator`, which finds the face with the body and
hands; FaceMesh is for pictures and close-ups where no body is in view.
"""

from __future__ import annotations

import numpy as np

from .holistic import MediaPipeGraph, mediapipe_solution
from .layout import N_FACE


class FaceMeshEstimator(MediaPipeGraph):
    """MediaPipe FaceMesh (478 points with irises) on RGB uint8 frames, one face.

    Each call takes an RGB uint8 ``(H, W, 3)`` frame and returns float32 ``(478, 3)`` (x, y pixels,
    z normalised like the shared layout) or None when no face is found. ``static=True`` detects
    afresh on every call (photos); False tracks between frames (video). Use as a context manager.
    """

    def __init__(self, static: bool = False, min_confidence: float = 0.5):
        face_mesh = mediapipe_solution("face_mesh")
        self._graph = face_mesh.FaceMesh(
            static_image_mode=static,
            max_num_faces=1,
            refine_landmarks=True,
            min_detection_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
        )

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        self._check_frame(frame)
        result = self._graph.process(np.ascontiguousarray(frame))
        if not result.multi_face_landmarks:
            return None
        points = result.multi_face_landmarks[0].landmark
        if len(points) < N_FACE:
            return None
        height, width = frame.shape[:2]
        xyz = np.array([(p.x * width, p.y * height, p.z) for p in points[:N_FACE]], np.float32)
        return xyz
