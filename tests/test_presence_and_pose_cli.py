"""Frames without a person, the render worker, and the ``signanon pose`` command, on real clips."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from signanon.avatar.worker import RenderWorker
from signanon.cli.main import main
from signanon.landmarks import layout, pose_to_frames, read_pose
from signanon.landmarks.holistic import HolisticEstimator
from signanon.summary import StageTimer
from signanon.video import VideoWriter, iter_frames, probe_video

EMPTY_FRAMES = 45  # 1.5 s at 29.97 fps: longer than the 1 s fade


@pytest.fixture(scope="module")
def signer_then_empty_room(tmp_path_factory, sample_clip: Path) -> tuple[Path, Path, dict]:
    """The real sample clip followed by 45 frames in which nobody is seen, anonymized."""
    tmp = tmp_path_factory.mktemp("presence")
    clip = tmp / "leaves.mp4"
    info = probe_video(sample_clip)
    frames = list(iter_frames(info))
    # nobody there: a flat frame in the clip's mean colour
    room = np.empty_like(frames[0])
    room[:] = frames[0].reshape(-1, 3).mean(axis=0).astype(np.uint8)
    with VideoWriter(clip, info.width, info.height, info.fps) as writer:
        for frame in frames:
            writer.write(frame)
        for _ in range(EMPTY_FRAMES):
            writer.write(room)
    out = tmp / "leaves_anon.mp4"
    summary = tmp / "run.json"
    assert main(["anonymize", str(clip), "-o", str(out), "--summary", str(summary), "-q"]) == 0
    return clip, out, json.loads(summary.read_text())


def test_empty_frames_are_drawn_and_counted(signer_then_empty_room):
    clip, out, summary = signer_then_empty_room
    n_in = probe_video(clip).frame_count
    assert summary["frames_out"] == n_in == 58 + EMPTY_FRAMES
    assert summary["frames_without_person"] == EMPTY_FRAMES
    frames = list(iter_frames(probe_video(out)))
    assert len(frames) == n_in
    # the avatar stays on screen while nobody is there: MediaPipe still finds a body and a face
    with HolisticEstimator() as estimator:
        found = [estimator(f)[1] for f in frames[-EMPTY_FRAMES:: 5]]
    assert all(c[layout.BODY].max() > 0 and c[layout.FACE].max() > 0 for c in found)


def test_empty_frames_fade_to_a_still_neutral_pose(signer_then_empty_room):
    _, out, _ = signer_then_empty_room
    frames = np.stack([f.astype(np.int16) for f in iter_frames(probe_video(out))])
    empty = frames[58:]
    steps = np.abs(np.diff(empty, axis=0)).mean(axis=(1, 2, 3))
    # it moves while fading (the first second), then holds still
    assert steps[:20].max() > 0.05
    assert steps[-10:].max() < 0.05


def test_render_worker_keeps_order_and_reports_errors():
    written: list[int] = []
    timer = StageTimer()

    def render(i):
        if i % 3 == 0:  # uneven work, so the two render threads finish out of order
            threading.Event().wait(0.005)
        return np.full((2, 2, 3), i, np.uint8)

    with RenderWorker(render, lambda f: written.append(int(f[0, 0, 0])), timer) as worker:
        for i in range(40):
            worker.submit(i)
    assert written == list(range(40))

    def broken(i):
        if i == 5:
            raise RuntimeError("drawing failed")
        return np.zeros((2, 2, 3), np.uint8)

    with pytest.raises(RuntimeError, match="drawing failed"):
        with RenderWorker(broken, lambda f: None, timer) as worker:
            for i in range(40):
                worker.submit(i)


@pytest.mark.parametrize("fail_at", [5, 39])  # raised by submit, or by leaving the with block
def test_a_failed_render_worker_is_freed_without_the_garbage_collector(fail_at):
    """The error re-raised in the caller's thread must not stay on the worker: its traceback holds
    the caller's frames (the landmark generator, a MediaPipe graph), and a worker holding it would
    keep them alive until a garbage collection, if any comes."""
    import gc
    import weakref

    def broken(i):
        if i == fail_at:
            raise RuntimeError("drawing failed")
        return np.zeros((2, 2, 3), np.uint8)

    def run() -> weakref.ref:
        worker = RenderWorker(broken, lambda f: None, StageTimer())
        ref = weakref.ref(worker)
        try:
            with worker:
                for i in range(40):
                    worker.submit(i)
        except RuntimeError as err:
            assert "drawing failed" in str(err)
        else:
            raise AssertionError("the render error was not raised")
        return ref

    gc.disable()
    try:
        ref = run()
        assert ref() is None, gc.get_referrers(ref())
    finally:
        gc.enable()


def test_pose_command_writes_every_frame(tmp_path: Path, sample_clip: Path):
    out = tmp_path / "sample.pose"
    assert main(["pose", str(sample_clip), "-o", str(out), "-q"]) == 0
    pose = read_pose(out)
    info = probe_video(sample_clip)
    data, conf = pose_to_frames(pose)
    assert data.shape == (info.frame_count, layout.NUM_POINTS, 3)
    assert pose.body.fps == pytest.approx(float(info.fps))
    assert (pose.header.dimensions.width, pose.header.dimensions.height) == (info.width, info.height)
    assert [c.name for c in pose.header.components] == [name for name, _ in layout.COMPONENTS]
    # the body and face are found in every frame of this clip, the left hand never
    assert (conf[:, layout.BODY].max(axis=1) > 0).all()
    assert (conf[:, layout.FACE].max(axis=1) > 0).all()
    assert not conf[:, layout.LEFT_HAND].any()
    # missing points are masked in the file, not zero-filled
    assert pose.body.data.mask[:, 0, layout.LEFT_HAND].all()
    # the wrist of the body lies inside the frame where the right hand is seen
    right = conf[:, layout.RIGHT_HAND].max(axis=1) > 0
    assert right.sum() >= 20
    wrist = data[right][:, layout.RIGHT_HAND][:, 0, :2]
    assert ((wrist >= 0) & (wrist <= [info.width, info.height])).all()
