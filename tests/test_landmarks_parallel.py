"""Landmarks of one clip found by two processes in time chunks, handed on in order (anonymize --workers)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import first_frames_clip
from signanon.errors import InputError
from signanon.landmarks.holistic import HolisticConfig, HolisticEstimator
from signanon.landmarks.parallel import ParallelLandmarks, plan_chunks
from signanon.video import iter_frames, probe_video


def test_chunks_cover_every_frame_once_with_a_warm_up():
    chunks = plan_chunks(1000, 2, overlap=10)  # about three per worker, 150..600 frames each
    assert [(c.start, c.stop) for c in chunks] == [(0, 167), (167, 333), (333, 500), (500, 667), (667, 833), (833, 1000)]
    assert [c.warm for c in chunks] == [0, 157, 323, 490, 657, 823]
    assert sum(c.frames for c in chunks) == 1000
    assert all(590 <= c.frames <= 600 for c in plan_chunks(100_000, 2, overlap=10))
    assert [(c.start, c.stop) for c in plan_chunks(40, 8, overlap=10)] == [(0, 40)]  # short clip: one chunk


def test_two_processes_give_every_frame_in_order(tmp_path, sample_clip):
    clip = first_frames_clip(sample_clip, 40, tmp_path / "clip.mp4")
    info = probe_video(clip)
    rows = ParallelLandmarks(info, HolisticConfig(), workers=2)
    rows.chunks = plan_chunks(40, 2, overlap=15, min_frames=20)  # two chunks of 20: both processes used
    rows.workers = 2
    rows = list(rows)
    with HolisticEstimator() as estimator:
        single = [estimator(frame) for frame in iter_frames(info)]
    assert len(rows) == len(single) == 40
    for (d, c), (ds, cs) in zip(rows[:20], single[:20]):  # the first chunk is the same computation
        np.testing.assert_array_equal(c, cs)
        np.testing.assert_array_equal(d, ds)
    # the second chunk starts from a warmed-up tracker: the same parts found, points within a few px
    for (d, c), (ds, cs) in zip(rows[20:], single[20:]):
        assert (c[:33] > 0).all() == (cs[:33] > 0).all()
        body = (c[:33] > 0) & (cs[:33] > 0)
        assert np.abs(d[:33][body, :2] - ds[:33][body, :2]).mean() < 10.0  # px, on a 540x720 frame


def test_a_failing_worker_ends_the_run_with_its_one_line_error(tmp_path, sample_clip):
    clip = first_frames_clip(sample_clip, 10, tmp_path / "clip.mp4")
    rows = ParallelLandmarks(probe_video(clip), HolisticConfig(), workers=2, overlap=2)
    clip.write_bytes(b"not a video any more")
    with pytest.raises(InputError, match="clip.mp4") as err:
        list(rows)
    assert "\n" not in str(err.value)


def test_anonymize_with_two_workers_matches_one_worker(tmp_path, data_dir):
    """``anonymize --workers 2`` on a 365-frame clip (three chunks): same frames, the first chunk's
    identical and the later chunks' avatar where the one-process avatar is (no jump at a seam)."""
    import itertools

    from signanon.avatar.anonymizer import AvatarConfig
    from signanon.job import AnonymizeJob, run_job
    from signanon.video import VideoWriter

    source = probe_video(data_dir / "asl_house.gif")
    clip = tmp_path / "long.mp4"
    with VideoWriter(clip, source.width, source.height, source.fps) as writer:
        for frame in itertools.chain.from_iterable(iter_frames(source) for _ in range(5)):
            writer.write(frame)
    one = run_job(AnonymizeJob(clip, tmp_path / "one.mp4", AvatarConfig()))
    two = run_job(AnonymizeJob(clip, tmp_path / "two.mp4", AvatarConfig(landmark_workers=2)))
    assert one.frames_out == two.frames_out == 365
    a = np.stack(list(iter_frames(probe_video(tmp_path / "one.mp4")))).astype(np.int16)
    b = np.stack(list(iter_frames(probe_video(tmp_path / "two.mp4")))).astype(np.int16)
    first = plan_chunks(365, 2, overlap=AvatarConfig().chunk_overlap)[0]
    assert first.stop < 365  # the clip really is split
    per_frame = np.abs(a - b).mean(axis=(1, 2, 3))
    assert per_frame[: first.stop - 10].mean() < 0.2  # the first chunk: the same landmarks
    assert per_frame[first.stop :].mean() < 3.0  # later chunks: same signing, a re-warmed tracker
    assert np.abs(np.diff(per_frame)).max() < 4.0  # no jump at a seam
