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


def probes_off(but: str | None = None) -> dict:
    """``AvatarConfig`` keyword arguments that turn off the four per-signer probes (the hand
    drawing, the lips' rest parting, the brow furrow's and the eyes' gains), for tests of something
    else: each draws and reads back probe frames while the run calibrates, seconds a run. ``but``:
    the one left as configured (``"hand_choice"``, ``"mouth_choice"``, ``"furrow_choice"`` or
    ``"eye_choice"``), for a test of that probe."""
    from signanon.avatar.furrow_choice import EyeChoiceConfig, FurrowChoiceConfig
    from signanon.avatar.hand_choice import HandChoiceConfig
    from signanon.avatar.mouth_choice import MouthChoiceConfig

    off = {"hand_choice": HandChoiceConfig(enabled=False), "mouth_choice": MouthChoiceConfig(enabled=False),
           "furrow_choice": FurrowChoiceConfig(enabled=False), "eye_choice": EyeChoiceConfig(enabled=False)}  # fmt: skip
    if but is not None and but not in off:
        raise ValueError(f"no probe {but!r}; one of {sorted(off)}")
    return {name: config for name, config in off.items() if name != but}


#: where the broadcast of :func:`broadcast_clip` shows its signing inset: X,Y,W,H and x0, y0, x1, y1
INSET_REGION, INSET_BOX = "470,350,320,240", [470, 350, 790, 590]


def broadcast_clip(path: Path, inset: Path, start: int, frames: int) -> Path:
    """A real broadcast made from two real clips: a talking head fills the 800x600 frame and the
    DGS signer (frames ``start``.. of the 100-frame cut, 320x240) signs in an inset at its lower
    right (:data:`INSET_BOX`). Writes it to ``path`` and the inset alone to ``inset``, 25 fps."""
    import itertools
    from fractions import Fraction

    import cv2

    from signanon.video import VideoWriter, iter_frames, probe_video

    speaker = itertools.islice(iter_frames(probe_video(DATA / "talking_woman_90.mp4")), start, start + frames)
    signer = itertools.islice(iter_frames(probe_video(DATA / "dgs_zug_100.mp4")), start, start + frames)
    x0, y0, x1, y1 = INSET_BOX
    with VideoWriter(path, 800, 600, Fraction(25)) as whole, VideoWriter(inset, x1 - x0, y1 - y0, Fraction(25)) as box:
        for a, b in zip(speaker, signer):
            small = cv2.resize(b, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
            frame = cv2.resize(a, (800, 600))
            frame[y0:y1, x0:x1] = small
            whole.write(frame)
            box.write(small)
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
