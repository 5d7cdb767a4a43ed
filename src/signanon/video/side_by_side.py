"""Side-by-side review videos: several panels per frame, scaled to one height, written as one mp4.

Used by the diffusion method's ablation video (:mod:`signanon.diffusion.ablation`: original |
without | with face enhancement) and the evaluation's landmark video
(:mod:`signanon.evaluation.landmark_video`: original | anonymized). Written atomically through
:class:`~signanon.video.VideoWriter`; the file is opened on the first row (its size is known then).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError


def fit_height(frame: np.ndarray, height: int) -> np.ndarray:
    """RGB uint8 ``(h, w, 3)`` scaled to ``(height, max(2, round(w * height / h)), 3)`` (aspect kept;
    the frame itself when it already has that height)."""
    import cv2

    h, w = frame.shape[:2]
    if h == height:
        return frame
    return cv2.resize(frame, (max(2, round(w * height / h)), height), interpolation=cv2.INTER_AREA)


def caption(frame: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``frame`` with ``text`` in white on a black box at the top left (size follows the
    frame's height)."""
    import cv2

    out = np.ascontiguousarray(frame).copy()
    scale = max(0.4, out.shape[0] / 600)
    thickness = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    cv2.rectangle(out, (0, 0), (tw + 12, th + base + 10), (0, 0, 0), -1)
    cv2.putText(out, text, (6, th + 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out


class SideBySideWriter:
    """Write rows of panels (RGB uint8 ``(h_i, w_i, 3)``) side by side to an mp4 at ``path``.

    ``fps``: the output rate; ``height``: every panel is scaled to it (default: the first panel's
    height in the first row); ``labels``: one caption per panel (:func:`caption`), or None.
    Context manager: the file appears only when the block ends without an exception.
    """

    def __init__(self, path: str | Path, fps: Fraction | float, *, height: int | None = None,
                 labels: Sequence[str] | None = None):
        self.path = Path(path)
        self.fps = Fraction(fps)
        self.height = height
        self.labels = labels
        self._writer = None

    def __enter__(self) -> "SideBySideWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        (self.close if exc_type is None else self.abort)()

    @property
    def frames_written(self) -> int:
        return 0 if self._writer is None else self._writer.frames_written

    def write(self, panels: Sequence[np.ndarray]) -> None:
        from . import VideoWriter

        height = self.height or panels[0].shape[0]
        scaled = [fit_height(p, height) for p in panels]
        if self.labels is not None:
            scaled = [caption(p, label) for p, label in zip(scaled, self.labels)]
        row = np.concatenate(scaled, axis=1)
        if self._writer is None:
            self._writer = VideoWriter(self.path, row.shape[1], row.shape[0], self.fps)
            self._writer.open()
        self._writer.write(row)

    def close(self) -> None:
        """Finish the file; InputError when no row was written."""
        if self._writer is None:
            raise InputError(f"no frames to write side by side: {self.path}")
        self._writer.close()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
