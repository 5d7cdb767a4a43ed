"""The ablation video of the diffusion method's face stage (DiffSLVA's Figures 6 and 7):
original | without face enhancement | with face enhancement, side by side.

It shows the original signer: it is for review, never for publication.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import InputError

LABELS = ("original", "without face enhancement", "with face enhancement")


def _frames_of(clip) -> tuple[Iterable[np.ndarray], Fraction | None]:
    if isinstance(clip, (str, Path)):
        from ..video import iter_frames, probe_video

        info = probe_video(clip)
        return iter_frames(info), Fraction(info.fps)
    return iter(clip), None


def write_ablation(
    original,
    without,
    with_enhancement,
    out_path: str | Path,
    *,
    fps: Fraction | float | None = None,
    labels: Sequence[str] = LABELS,
    height: int | None = None,
) -> int:
    """Write a side-by-side video: original | without | with face enhancement.

    Each clip is a video path or a sequence of RGB uint8 ``(H, W, 3)`` frames; the panels are
    scaled to one ``height`` (default: the original's) and labelled. The rate is ``fps`` or the
    original's; frames run to the shortest clip. Returns the number of frames written (mp4, atomic).
    """
    from ..video.side_by_side import SideBySideWriter

    streams = [_frames_of(c) for c in (original, without, with_enhancement)]
    rate = fps if fps is not None else next((r for _, r in streams if r is not None), None)
    if rate is None:
        raise InputError("write_ablation needs fps when no clip is a video file")
    writer = SideBySideWriter(out_path, Fraction(rate).limit_denominator(1001), height=height, labels=labels)
    with writer:
        for triple in zip(*(s for s, _ in streams)):
            writer.write(triple)
    return writer.frames_written
