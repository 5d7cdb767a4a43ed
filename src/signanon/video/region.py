"""A part of the frame to anonymize on its own: the signer's box in a picture that shows more.

Television and web broadcasts show the interpreter in an inset beside a speaker whose face is far
larger. MediaPipe Holistic follows one person: on a 640x480 talking head with a 213x160 signing
inset it followed the speaker, and the avatar signed with her (non-signing) body; where it follows
the signer, the avatar is drawn as small as the inset in an otherwise empty frame. A
:class:`Region` names the signer's box; :func:`crop_video` cuts it out of every frame into a
temporary video that the run then treats as its input. The output is that box only: the rest of
the frame (other people, captions) is not part of the anonymized video.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..progress import ProgressArg, progress_reporter
from .reader import VideoInfo, iter_frames
from .writer import VideoWriter

#: what a region is for, as the command line and the web page say it
HELP = ("anonymize only this box of the frame, e.g. an interpreter's inset beside a larger speaker "
        "(pixels, or fractions of the frame from 0 to 1); the output is the box")
MIN_SIDE = 64  # px: the smallest box MediaPipe is given (a signer's face is ~10 px across in it)
CROP_CRF = 12  # the temporary cut is near-lossless: it is read, never published


@dataclass(frozen=True)
class Region:
    """A box ``(x, y, w, h)`` of the upright frame: its left, top, width and height, in pixels
    when any of them is over 1, else as fractions of the frame's width and height."""

    x: float
    y: float
    w: float
    h: float

    @classmethod
    def parse(cls, text: str) -> "Region":
        """``"X,Y,W,H"`` (e.g. ``"400,200,240,260"`` or ``"0.6,0.5,0.4,0.5"``); one-line
        :class:`~signanon.errors.InputError` otherwise."""
        parts = [p.strip() for p in str(text).split(",")]
        number = r"-?(\d+(\.\d*)?|\.\d+)"
        if len(parts) != 4 or not all(re.fullmatch(number, p) for p in parts):
            raise InputError(f"region {text!r} must be four numbers X,Y,W,H (pixels, or fractions of the frame from 0 to 1)")
        return cls(*(float(p) for p in parts))

    def __post_init__(self) -> None:
        # the same checks for a Region built in Python as for one parsed from text
        values = (self.x, self.y, self.w, self.h)
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            raise InputError(f"region ({', '.join(map(repr, values))}) must be four finite numbers X,Y,W,H")
        if min(values) < 0:
            raise InputError(f"region {self} has a negative number: X,Y is the box's top-left corner in the frame "
                             "(from 0) and W,H its size")
        if self.w <= 0 or self.h <= 0:
            raise InputError(f"region {self} has no area: its width and height must be more than 0")

    @property
    def in_pixels(self) -> bool:
        return max(self.x, self.y, self.w, self.h) > 1

    def box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` int pixels of a ``width`` x ``height`` upright frame. Raises a
        one-line InputError when the box reaches past the frame or is under MIN_SIDE a side."""
        sx, sy = (1, 1) if self.in_pixels else (width, height)
        x0, y0 = round(self.x * sx), round(self.y * sy)
        x1, y1 = round((self.x + self.w) * sx), round((self.y + self.h) * sy)
        if x1 > width or y1 > height:
            raise InputError(f"region {self} reaches past the {width}x{height} frame (to {x1},{y1})")
        if x1 - x0 < MIN_SIDE or y1 - y0 < MIN_SIDE:
            raise InputError(f"region {self} is {x1 - x0}x{y1 - y0} px in the {width}x{height} frame: "
                             f"at least {MIN_SIDE}x{MIN_SIDE} px are needed to find a signer in it")
        return x0, y0, x1, y1

    def __str__(self) -> str:
        return ",".join(f"{v:g}" for v in (self.x, self.y, self.w, self.h))


def crop_video(info: VideoInfo, region: Region, path: str | Path, *, keep_audio: bool = False,
               progress: ProgressArg = None) -> Path:
    """Write ``region`` of every frame of ``info`` to ``path`` (H.264 mp4, near-lossless, the
    input's rate; its audio too when ``keep_audio``); returns the path. Streams: one frame in
    memory at a time."""
    x0, y0, x1, y1 = region.box(info.width, info.height)
    with VideoWriter(path, x1 - x0, y1 - y0, info.fps, audio_source=info if keep_audio else None, crf=CROP_CRF,
                     input_path=info.path) as writer, progress_reporter(info.frame_count, progress, desc="region") as bar:
        for frame in iter_frames(info):
            writer.write(frame[y0:y1, x0:x1])
            bar.update(1)
    return Path(path)
