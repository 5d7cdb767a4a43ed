"""Frames without a person, the render worker, and the ``signanon pose`` command, on real clips."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from signanon.avatar.anonymizer import AvatarConfig
from signanon.avatar.parallel import plan_chunks, warm_up_frames
from signanon.avatar.worker import RenderWorker
from signanon.cli.main import main
from signanon.landmarks import layout, pose_to_frames, read_pose
from signanon.landmarks.holistic import HolisticEstimator
from signanon.summary import StageTimer
from signanon.video import VideoWriter, iter_frames, probe_video

EMPTY_FRAMES = 45  # 1.5 s at 29.97 fps: longer than the 1 s fade
LEAD_FRAMES = 12  # nobody there yet when the clip starts
FADE_FRAMES = round(AvatarConfig().fade_seconds * 29.97)  # the fade-out at the sample clip's rate (30)


@pytest.fixture(scope="module")
def empty_room_around_signer(tmp_path_factory, sample_clip: Path) -> tuple[Path, Path, dict]:
    """An empty room (12 frames), the real sample clip (58), the empty room again (45), anonymized."""
    tmp = tmp_path_factory.mktemp("presence")
    clip = tmp / "comes_and_goes.mp4"
    info = probe_video(sample_clip)
    frames = list(iter_frames(info))
    # nobody there: a flat frame in the clip's mean colour
    room = np.empty_like(frames[0])
    room[:] = frames[0].reshape(-1, 3).mean(axis=0).astype(np.uint8)
    with VideoWriter(clip, info.width, info.height, info.fps) as writer:
        for frame in [room] * LEAD_FRAMES + frames + [room] * EMPTY_FRAMES:
            writer.write(frame)
    out = tmp / "comes_and_goes_anon.mp4"
    summary = tmp / "run.json"
    assert main(["anonymize", str(clip), "-o", str(out), "--summary", str(summary), "-q"]) == 0
    return clip, out, json.loads(summary.read_text())


def _backdrop(frames: np.ndarray) -> np.ndarray:
    """(3,) the avatar's backdrop colour: the top-left corner of the signing frames (nothing is drawn there)."""
    return np.median(frames[LEAD_FRAMES : LEAD_FRAMES + 58, :8, :8].reshape(-1, 3), axis=0)


def test_empty_frames_are_counted_and_show_the_empty_backdrop(empty_room_around_signer):
    clip, out, summary = empty_room_around_signer
    n_in = probe_video(clip).frame_count
    assert summary["frames_out"] == n_in == LEAD_FRAMES + 58 + EMPTY_FRAMES
    assert summary["frames_without_person"] == LEAD_FRAMES + EMPTY_FRAMES
    frames = np.stack([f.astype(np.int16) for f in iter_frames(probe_video(out))])
    assert len(frames) == n_in
    backdrop = _backdrop(frames)
    off = np.abs(frames - backdrop).max(axis=3)  # (N, H, W) grey levels from the backdrop
    # before the signer comes in and once the avatar has faded out: the backdrop alone (encoder noise)
    assert off[:LEAD_FRAMES].max() <= 3 and off[LEAD_FRAMES + 58 + FADE_FRAMES :].max() <= 3
    # while the signer is there the avatar is: thousands of pixels far from the backdrop
    assert (off[LEAD_FRAMES : LEAD_FRAMES + 58] > 40).sum(axis=(1, 2)).min() > 10_000
    # and MediaPipe finds nobody in the empty frames, somebody in the signing ones
    with HolisticEstimator() as estimator:
        bodies = [estimator(frames[i].astype(np.uint8))[1][layout.BODY].max() > 0 for i in (0, 6, LEAD_FRAMES + 20, n_in - 5)]
    assert bodies == [False, False, True, False]


def test_the_avatar_fades_out_where_it_was_last_seen(empty_room_around_signer):
    """The last pose is held in place and faded into the backdrop: it does not walk back to the
    middle of the frame (as it did when it faded to a neutral pose), and fades steadily."""
    _, out, _ = empty_room_around_signer
    frames = np.stack([f.astype(np.float32) for f in iter_frames(probe_video(out))])
    backdrop = _backdrop(frames)
    last = LEAD_FRAMES + 58 - 1  # the last frame with the signer
    ink = frames[last] - backdrop  # the avatar as last drawn, over the backdrop
    strong = np.abs(ink).max(axis=2) > 40
    shares = []
    for i in range(last + 1, last + FADE_FRAMES):
        faded = frames[i] - backdrop
        # the same picture, weaker: a least-squares share of the last frame's ink
        share = float((faded[strong] * ink[strong]).sum() / (ink[strong] ** 2).sum())
        assert np.abs(faded[strong] - share * ink[strong]).mean() < 2.5, i  # not moved, only faded (walking back: 4-14)
        shares.append(share)
    assert shares[0] > 0.9 and shares[-1] < 0.1
    assert all(b <= a + 0.02 for a, b in zip(shares, shares[1:]))  # fading steadily, never back


def test_a_parallel_run_fades_out_across_its_chunks_as_one_process_does(empty_room_around_signer, tmp_path):
    """``--workers 3`` on the same clip: the last chunk starts 13 frames into the fade (its warm-up
    in the signing), the one before it sees the signer leave, the first starts in the empty room.
    The output shows what the one-process run shows: the same frames without a person, the empty
    backdrop before and after, and the fade of the same pose in the same place across the seam."""
    clip, single, summary = empty_room_around_signer
    n = LEAD_FRAMES + 58 + EMPTY_FRAMES
    last = LEAD_FRAMES + 58 - 1  # the last frame with the signer
    chunks = plan_chunks(n, 3, warm_up_frames(AvatarConfig(), probe_video(clip).fps))
    assert chunks[1].start < last < chunks[2].start < last + FADE_FRAMES and chunks[2].warm < last  # what this tests
    out, run = tmp_path / "parallel.mp4", tmp_path / "parallel.json"
    assert main(["anonymize", str(clip), "-o", str(out), "--summary", str(run), "-q", "--workers", "3"]) == 0
    assert json.loads(run.read_text())["frames_without_person"] == summary["frames_without_person"]
    one = np.stack([f.astype(np.float32) for f in iter_frames(probe_video(single))])
    many = np.stack([f.astype(np.float32) for f in iter_frames(probe_video(out))])
    assert many.shape == one.shape
    backdrop = _backdrop(one)
    empty = np.r_[0:LEAD_FRAMES, last + FADE_FRAMES : n]
    assert np.abs(many[empty] - backdrop).max() <= 3
    # the fade: the one-process run's picture, frame by frame (measured: the same to the grey level
    # on all 30 frames; MediaPipe restarted in a later chunk may read the signer a few pixels
    # apart elsewhere, hence the tolerance). A last chunk that began with nobody seen would show
    # the empty backdrop from its first frame: 35 grey levels from this picture on average there.
    diff = np.abs(many[last : last + FADE_FRAMES] - one[last : last + FADE_FRAMES]).mean(axis=(1, 2, 3))
    ink = np.abs(one[last : last + FADE_FRAMES] - backdrop).mean(axis=(1, 2, 3))
    assert (diff <= 0.1 * ink + 0.5).all(), (diff.round(2), ink.round(2))


ENTER_FRAMES = 30  # the NGT signer slid in from the right: found from frame 19 (23 once encoded)


def _ngt_slid_in(data_dir: Path) -> tuple[list[np.ndarray], float]:
    """The first 30 frames of the 192x144 NGT clip sliding in from past the right edge over its
    first 40 frames (``tools/make_framings.py`` 'enter'), on grey: (H, W, 3) uint8 RGB, fps."""
    import cv2

    info = probe_video(data_dir / "ngt_numbers_small.mp4")
    out = []
    for i, frame in enumerate(iter_frames(info)):
        if i >= ENTER_FRAMES:
            break
        h, w = frame.shape[:2]
        shift = (float(np.interp(i / 160, [0, 0.25, 1], [1.45, 0.5, 0.5])) - 0.5) * w
        out.append(cv2.warpAffine(frame, np.float32([[1, 0, shift], [0, 1, 0]]), (w, h),
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=(118, 118, 118)))
    return out, float(info.fps)


def test_a_hand_coming_in_at_the_edge_is_not_taken_for_a_body(data_dir):
    """MediaPipe reads the signer's hand and forearm coming in at the edge as a tiny body, upside
    down or lying (read here on frames 10-16); the landmark clean-up drops those, so neither the
    avatar nor the gap filling and smoothing of the real body that follows see them."""
    from signanon.landmarks import geometry
    from signanon.landmarks.smoothing import LandmarkProcessor, SmoothingConfig

    frames, fps = _ngt_slid_in(data_dir)
    with HolisticEstimator() as estimator:
        marks = [estimator(f) for f in frames]
    false = [i for i, (d, c) in enumerate(marks) if geometry.body_present(c) and not geometry.upright_body_present(c, d)]
    real = [i for i, (d, c) in enumerate(marks) if geometry.upright_body_present(c, d)]
    assert len(false) >= 4 and max(false) < min(real) and len(real) >= 5  # the misreading this guards against

    def shoulder_widths(config):
        out = LandmarkProcessor(fps, config).process(iter(marks))
        return [float(np.linalg.norm(f.data[layout.LEFT_SHOULDER, :2] - f.data[layout.RIGHT_SHOULDER, :2])) if f.has_body else None
                for f in out]

    kept, dropped = shoulder_widths(SmoothingConfig(upright_body=False)), shoulder_widths(SmoothingConfig())
    assert all(kept[i] is not None and kept[i] < 25 for i in false)  # the tiny body, 2-19 px wide
    assert all(w is None for w in dropped[: min(real)])
    first = marks[min(real)][0]
    raw = np.linalg.norm(first[layout.LEFT_SHOULDER, :2] - first[layout.RIGHT_SHOULDER, :2])
    assert dropped[min(real)] == pytest.approx(raw, rel=0.02)  # the real body's first frame as read
    # kept, the gap before the real body was filled from the tiny one: bodies a third to two thirds its size
    assert min(w for w in kept[max(false) + 1 : min(real)] if w is not None) < 0.7 * raw


def _dgs_leaving_tilted(data_dir: Path) -> tuple[list[np.ndarray], float]:
    """The first 50 frames of the DGS clip: the signer in place for 15 frames, then slid out past
    the left edge, the whole picture then turned 20 degrees and scaled 0.85, on grey
    (``tools/make_framings.py`` 'leave' then 'tilt'): (H, W, 3) uint8 RGB, fps."""
    import itertools

    import cv2

    info = probe_video(data_dir / "dgs_zug_100.mp4")
    out = []
    for i, frame in enumerate(itertools.islice(iter_frames(info), 50)):
        h, w = frame.shape[:2]
        shift = np.float32([[1, 0, float(np.interp(i / 49, [0, 0.3, 1], [0, 0, -0.95])) * w], [0, 1, 0]])
        turn = cv2.getRotationMatrix2D((w / 2, h / 2), 20.0, 0.85)
        for m in (shift, turn):
            frame = cv2.warpAffine(frame, m, (w, h), borderMode=cv2.BORDER_CONSTANT, borderValue=(118, 118, 118))
        out.append(frame)
    return out, float(info.fps)


def test_a_body_read_turned_round_at_the_edge_is_not_taken_for_the_signer(data_dir):
    """As the signer leaves through the side, MediaPipe reads the part still in the frame as a body
    turned round: its left shoulder left of its right in the picture (frames 35-36 here), a third
    of the signer's width, with the nose up and the shoulders level enough for the other checks.
    Drawn, the avatar shrank and raised an arm over its head, then held that pose while it faded
    (on the whole clip the read-back found that hand on 13 frames after the signer had left). The
    landmark clean-up drops such a body; a signer faces the camera."""
    from signanon.landmarks import geometry
    from signanon.landmarks.smoothing import LandmarkProcessor

    frames, fps = _dgs_leaving_tilted(data_dir)
    with HolisticEstimator() as estimator:
        marks = [estimator(f) for f in frames]

    def crossed(data: np.ndarray) -> bool:
        return bool(data[layout.LEFT_SHOULDER, 0] < data[layout.RIGHT_SHOULDER, 0])

    turned = [i for i, (d, c) in enumerate(marks) if geometry.body_present(c) and crossed(d)]
    facing = [i for i, (d, c) in enumerate(marks) if geometry.body_present(c) and not crossed(d)]
    assert len(turned) >= 1 and len(facing) >= 30  # the misreading this guards against: 2 frames, 35-36
    assert not any(geometry.upright_body_present(marks[i][1], marks[i][0]) for i in turned)
    kept = list(LandmarkProcessor(fps).process(iter(marks)))
    assert not any(f.has_body and crossed(f.data) for f in kept)
    assert all(kept[i].has_body for i in facing if i < min(turned))  # the signer before it is kept


def test_a_signer_coming_in_is_drawn_full_size_from_the_frame_they_are_found(tmp_path, data_dir):
    frames, fps = _ngt_slid_in(data_dir)
    clip = tmp_path / "slides_in.mp4"
    with VideoWriter(clip, frames[0].shape[1], frames[0].shape[0], fps) as writer:
        for frame in frames:
            writer.write(frame)
    out = tmp_path / "slides_in_anon.mp4"
    assert main(["anonymize", str(clip), "-o", str(out), "-q"]) == 0
    drawn = np.stack([f.astype(np.int16) for f in iter_frames(probe_video(out))])
    backdrop = np.median(drawn[-1, :4, :4].reshape(-1, 3), axis=0)  # the top-left corner: nothing drawn there
    ink = np.abs(drawn - backdrop).max(axis=3) > 40  # (N, H, W) the avatar's pixels
    shown = [i for i in range(len(drawn)) if ink[i].sum() > 0.02 * ink[i].size]
    assert shown and shown == list(range(shown[0], len(drawn)))  # nobody, then the avatar from then on
    assert shown[0] >= 15  # not before the signer's body is in the frame
    for i in shown:  # never the tumbling tiny body, nor an avatar calibrated on it: most of the frame's height
        rows = np.flatnonzero(ink[i].any(axis=1))
        assert rows[-1] - rows[0] > 0.6 * drawn.shape[1], i  # (before: 79-274 of 480 rows, all 30 frames)


def test_a_video_on_its_side_says_so_in_one_line(tmp_path, sample_clip, capsys):
    """The sample clip turned a quarter with no rotation tag: the signer lies on her side, which is
    no signer's body; the run stops with one line that says why, and writes nothing."""
    info = probe_video(sample_clip)
    clip = tmp_path / "on_its_side.mp4"
    with VideoWriter(clip, info.height, info.width, info.fps) as writer:
        for i, frame in enumerate(iter_frames(info)):
            if i >= 12:
                break
            writer.write(np.ascontiguousarray(np.rot90(frame)))
    out = tmp_path / "on_its_side_anon.mp4"
    assert main(["anonymize", str(clip), "-o", str(out), "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no upright person found" in err[0] and "on its side or upside down" in err[0], err
    assert not out.exists()


def test_an_empty_frame_blended_at_a_seam_fades_the_other_pose_in_place():
    """A parallel run cross-fades chunks with AvatarPose.blend: an empty frame (presence 0) has no
    place of its own, so the avatar it is blended with fades where it stands, not towards the
    empty frame's placeholder pose."""
    from signanon.avatar.skeleton import AvatarPose

    def pose(x: float, presence: float) -> AvatarPose:
        return AvatarPose(body=np.full((33, 3), x, np.float32), body_valid=np.ones(33, bool), left_hand=None,
                          right_hand=None, face_anchor=np.full(2, x, np.float32), face_scale=10.0, presence=presence)

    here, empty = pose(100.0, 1.0), pose(0.0, 0.0)
    for a, b, t, presence in ((here, empty, 0.25, 0.75), (empty, here, 0.25, 0.25)):
        mixed = a.blend(b, t)
        assert mixed.presence == pytest.approx(presence)
        assert np.all(mixed.body == 100.0) and np.all(mixed.face_anchor == 100.0)
    both = here.blend(pose(0.0, 1.0), 0.25)  # two avatars: geometry blended as before
    assert both.presence == 1.0 and np.all(both.body == 75.0)


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
