"""Rewrite ``tests/data/avatar_reference_asl_webcam.npz`` after a deliberate change of the avatar.

    python tools/make_avatar_reference.py

Anonymizes ``examples/asl_webcam.mp4`` and keeps 9 drawn frames (indices 0, 7, ..., 49, 57; as
handed to the video writer, before x264, which is not bit-repeatable) as uint8 (9, H, W, 3) under
``frames`` and their indices under ``index``, what ``tests/test_avatar_regression.py`` compares a
fresh run with. Only for commits that change the
avatar's look on purpose; say so in the commit message and ``tests/data/SOURCES.md``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
def main() -> None:
    from signanon.avatar.reference import INDEX, drawn_frames

    with tempfile.TemporaryDirectory() as tmp:
        frames = drawn_frames(REPO / "examples" / "asl_webcam.mp4", Path(tmp) / "anon.mp4")
    np.savez_compressed(REPO / "tests" / "data" / "avatar_reference_asl_webcam.npz", index=INDEX, frames=frames)


if __name__ == "__main__":
    main()
