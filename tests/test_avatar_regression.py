"""The avatar output of the sample clip stays what it was, unless a commit changes it on purpose.

`tests/data/avatar_reference_asl_webcam.npz` holds nine drawn frames of the avatar output of the
sample clip, as handed to the video writer (an x264 of another version or CPU may encode them
differently; see signanon/avatar/reference.py). It was first written before the architecture
refactor (issue 8), which left it unchanged; commits that change the avatar's look on purpose
regenerate it with `tools/make_avatar_reference.py` and say so. A fresh run must reproduce it
within one level.
"""

from __future__ import annotations

import numpy as np


def test_avatar_output_unchanged_by_refactor(tmp_path, sample_clip, data_dir):
    from signanon.avatar.reference import drawn_frames

    reference = np.load(data_dir / "avatar_reference_asl_webcam.npz")
    frames = drawn_frames(sample_clip, tmp_path / "anon.mp4", reference["index"])
    for index, got, expected in zip(reference["index"], frames, reference["frames"]):
        diff = np.abs(got.astype(np.int16) - expected.astype(np.int16))
        assert diff.max() <= 1, f"frame {index}: max difference {diff.max()} levels"
