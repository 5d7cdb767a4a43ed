"""Rewrite ``tests/data/avatar_reference_asl_webcam.npz`` after a deliberate change of the avatar.

    python tools/make_avatar_reference.py

Runs ``signanon anonymize examples/asl_webcam.mp4`` and keeps 9 decoded frames (indices 0, 7, ...,
49, 57) as uint8 (9, H, W, 3) under ``frames`` and their indices under ``index``, what
``tests/test_avatar_regression.py`` compares a fresh run with. Only for commits that change the
avatar's look on purpose; say so in the commit message and ``tests/data/SOURCES.md``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
INDEX = np.array([0, 7, 14, 21, 28, 35, 42, 49, 57])


def main() -> None:
    from signanon.cli.main import main as cli
    from signanon.video import iter_frames, probe_video

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "anon.mp4"
        assert cli(["anonymize", str(REPO / "examples" / "asl_webcam.mp4"), "-o", str(out), "--quiet"]) == 0
        frames = list(iter_frames(probe_video(out)))
    np.savez_compressed(
        REPO / "tests" / "data" / "avatar_reference_asl_webcam.npz",
        index=INDEX,
        frames=np.stack([frames[i] for i in INDEX]).astype(np.uint8),
    )


if __name__ == "__main__":
    main()
