"""``signanon pose``: a video in, a pose-format ``.pose`` file of its Holistic landmarks out."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..config import setting
from ..errors import NoPersonError, OutputError
from ..progress import progress_bar
from ..video import check_output_path, iter_frames, probe_video
from .holistic import HolisticConfig, HolisticEstimator
from .pose_io import frames_to_pose, write_pose
from .smoothing import LandmarkProcessor, LandmarkStats, SmoothingConfig


@dataclass(frozen=True)
class PoseExtractionConfig:
    """Settings of ``signanon pose``. ``raw``: MediaPipe's landmarks as they are (``smoothing`` off)."""

    holistic: HolisticConfig = field(default_factory=HolisticConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    raw: bool = setting(False, "keep MediaPipe's landmarks as they are: no smoothing, no gap filling")

    @property
    def effective_smoothing(self) -> SmoothingConfig:
        return replace(self.smoothing, enabled=False, max_gap=0, upright_body=False) if self.raw else self.smoothing


def extract_pose(
    input_path: str | Path,
    output_path: str | Path,
    config: PoseExtractionConfig = PoseExtractionConfig(),
    *,
    progress: bool = True,
) -> LandmarkStats:
    """Write the landmarks of every frame of ``input_path`` to ``output_path`` (a ``.pose`` file).

    The file has one frame per input frame, the input's frame rate and size; points that were not
    found are masked. Landmarks (not pixels) are accumulated: about 9 kB per frame.
    """
    info = probe_video(input_path)
    output = check_output_path(output_path, info.path)
    if output.suffix.lower() != ".pose":
        raise OutputError(f"output {output} must end in .pose")
    processor = LandmarkProcessor(float(info.fps), config.effective_smoothing)
    data = np.zeros((info.frame_count, 586, 3), np.float32)
    confidence = np.zeros((info.frame_count, 586), np.float32)
    count = 0

    def estimate():
        with HolisticEstimator(config.holistic) as estimator:
            for frame in iter_frames(info):
                yield estimator(frame)

    with progress_bar(total=info.frame_count, enabled=progress, desc="pose") as bar:
        for frame in processor.process(estimate()):
            if frame.index >= len(data):  # never expected: probe counts frames exactly
                data = np.concatenate([data, np.zeros_like(data[:1])])
                confidence = np.concatenate([confidence, np.zeros_like(confidence[:1])])
            data[frame.index] = frame.data
            confidence[frame.index] = frame.confidence
            count = max(count, frame.index + 1)
            bar.update(1)
    if not confidence[:count].any():
        raise NoPersonError(f"no person found in {info.path}: no landmarks to write")
    pose = frames_to_pose(data[:count], confidence[:count], float(info.fps), info.width, info.height)
    write_pose(output, pose)
    return processor.stats
