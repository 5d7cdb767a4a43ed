"""The avatar output of the sample clip stays what it was before the architecture refactor.

`tests/data/avatar_reference_asl_webcam.npz` holds nine decoded frames of the avatar output written
before the refactor (issue 8). A fresh run through the Python API must reproduce them: the same
pixels, or at most one level apart (x264 is deterministic for the same input frames).
"""

from __future__ import annotations

import numpy as np

from signanon.video import iter_frames, probe_video


def test_avatar_output_unchanged_by_refactor(tmp_path, sample_clip, data_dir):
    from signanon.avatar.anonymizer import AvatarAnonymizer, AvatarConfig

    reference = np.load(data_dir / "avatar_reference_asl_webcam.npz")
    out = tmp_path / "anon.mp4"
    AvatarAnonymizer(AvatarConfig())(sample_clip, out)
    frames = list(iter_frames(probe_video(out)))
    assert len(frames) == 58
    for index, expected in zip(reference["index"], reference["frames"]):
        got = frames[int(index)].astype(np.int16)
        diff = np.abs(got - expected.astype(np.int16))
        assert diff.max() <= 1, f"frame {index}: max difference {diff.max()} levels"
