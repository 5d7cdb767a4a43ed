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
    chunks = plan_chunks(101, 3, overlap=10)
    assert [(c.start, c.stop) for c in chunks] == [(0, 34), (34, 67), (67, 101)]
    assert [c.warm for c in chunks] == [0, 24, 57]
    assert sum(c.frames for c in chunks) == 101
    assert len(plan_chunks(2, 8, overlap=10)) == 2  # never more chunks than frames


def test_two_processes_give_every_frame_in_order(tmp_path, sample_clip):
    clip = first_frames_clip(sample_clip, 40, tmp_path / "clip.mp4")
    info = probe_video(clip)
    rows = list(ParallelLandmarks(clip, info.frame_count, HolisticConfig(), workers=2, overlap=8))
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
        assert np.abs(d[:33][body, :2] - ds[:33][body, :2]).mean() < 6.0


def test_a_failing_worker_ends_the_run_with_its_one_line_error(tmp_path, sample_clip):
    clip = first_frames_clip(sample_clip, 10, tmp_path / "clip.mp4")
    rows = ParallelLandmarks(clip, 10, HolisticConfig(), workers=2, overlap=2)
    clip.write_bytes(b"not a video any more")
    with pytest.raises(InputError, match="clip.mp4") as err:
        list(rows)
    assert "\n" not in str(err.value)


def test_anonymize_with_two_workers_matches_one_worker(tmp_path, data_dir):
    """``anonymize --workers 2`` on a 365-frame clip: same frames, the first chunk's identical and the
    second chunk's avatar where the one-process avatar is (no seam, no jump)."""
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
    first = slice(0, 170)  # well inside the first chunk (0..182): the same landmarks
    assert np.abs(a[first] - b[first]).mean() < 0.5
    per_frame = np.abs(a - b).mean(axis=(1, 2, 3))
    assert per_frame[183:].mean() < 3.0  # the second chunk: same signing, a re-warmed tracker
    assert np.abs(np.diff(per_frame[178:190])).max() < 3.0  # no jump at the seam
