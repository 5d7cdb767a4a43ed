"""The avatar's drawn frames of a clip, before encoding: what the regression reference pins.

The reference holds the frames handed to the writer, not encoded ones: x264 was not bit-repeatable
on AVX-512 machines (two encodes of identical frames differed by a mean of ~0.05 levels, up to ~80
at a few pixels) until :func:`~signanon.video.writer.x264_options` held it to its AVX2 code, and
x264 builds of other versions may encode differently still.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

INDEX = np.array([0, 7, 14, 21, 28, 35, 42, 49, 57])


def drawn_frames(clip: str | Path, out: str | Path, index=INDEX) -> np.ndarray:
    """Anonymize ``clip`` with the default avatar in the default palette (not ``auto``, whose
    choice depends on the recogniser's scores) into ``out`` and return the drawn RGB frames at
    ``index`` (uint8 ``(len(index), H, W, 3)``), as handed to the video writer."""
    from . import anonymizer as module
    from .anonymizer import AvatarAnonymizer, AvatarConfig

    wanted = {int(i) for i in index}
    kept: dict[int, np.ndarray] = {}
    writer_class = module.VideoWriter

    class Recording(writer_class):
        def write(self, frame: np.ndarray) -> None:
            if self.frames_written in wanted:
                kept[self.frames_written] = np.array(frame, np.uint8)
            super().write(frame)

    module.VideoWriter = Recording
    try:
        AvatarAnonymizer(AvatarConfig(palette="default", face_shape="average"))(clip, out, progress=False)
    finally:
        module.VideoWriter = writer_class
    return np.stack([kept[int(i)] for i in index])
