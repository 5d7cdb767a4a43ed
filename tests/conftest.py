"""Shared fixtures: the real clips shipped with the repo and small generated bad inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GLOG_minloglevel", "2")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
SAMPLE = REPO / "examples" / "asl_webcam.mp4"


@pytest.fixture(scope="session")
def sample_clip() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


def first_frames_clip(source: Path, frames: int, path: Path) -> Path:
    """Write the first ``frames`` frames of a real clip to ``path`` (mp4, same size and rate)."""
    import itertools

    from signanon.video import VideoWriter, iter_frames, probe_video

    info = probe_video(source)
    with VideoWriter(path, info.width, info.height, info.fps) as writer:
        for frame in itertools.islice(iter_frames(info), frames):
            writer.write(frame)
    return path


def through_x264(frames: list, path: Path) -> list:
    """RGB uint8 ``frames`` written to ``path`` by the avatar's own x264 writer and decoded again:
    what a user gets. Hands and faces at the limit of what MediaPipe finds read differently
    before and after encoding, so drawings are judged on this."""
    from fractions import Fraction

    import av

    from signanon.video import VideoWriter

    h, w = frames[0].shape[:2]
    with VideoWriter(path, w, h, Fraction(25)) as writer:
        for f in frames:
            writer.write(f)
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
