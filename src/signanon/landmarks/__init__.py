"""Landmarks: MediaPipe Holistic per frame, clean-up over time, and pose-format ``.pose`` I/O.

All stages share the per-frame layout of :mod:`.layout` (float32 ``(586, 3)`` data and
``(586,)`` confidence, 0 = missing). MediaPipe and pose-format are imported only when used.
"""

from . import geometry, layout, regions
from .frame import LandmarkFrame
from .holistic import HolisticConfig, HolisticEstimator
from .pose_io import PoseInfo, frames_to_pose, pose_info, pose_to_frames, read_pose, write_pose
from .smoothing import (
    COMPONENT_NAMES,
    ComponentStats,
    LandmarkProcessor,
    LandmarkStats,
    OneEuroFilter,
    ProcessedLandmarks,
    SmoothingConfig,
    process_arrays,
)


__all__ = [
    "COMPONENT_NAMES",
    "ComponentStats",
    "HolisticConfig",
    "HolisticEstimator",
    "LandmarkFrame",
    "LandmarkProcessor",
    "LandmarkStats",
    "OneEuroFilter",
    "PoseInfo",
    "ProcessedLandmarks",
    "SmoothingConfig",
    "frames_to_pose",
    "geometry",
    "layout",
    "pose_info",
    "pose_to_frames",
    "process_arrays",
    "read_pose",
    "regions",
    "write_pose",
]
