"""Streaming video input and output with PyAV (FFmpeg).

:func:`probe_video` checks and describes an input, :func:`iter_frames` yields its frames upright as
RGB uint8 arrays one at a time (:func:`iter_selected_frames` only chosen ones),
:func:`check_output_path` validates an output path up front, and
:class:`VideoWriter` encodes frames to an H.264 mp4 atomically, without the source's metadata.
Bad input raises :class:`~signanon.errors.InputError`, a bad output path
:class:`~signanon.errors.OutputError`.
"""

from .reader import VideoInfo, iter_frames, iter_selected_frames, probe_video
from .writer import VideoWriter, check_output_path

__all__ = ["VideoInfo", "VideoWriter", "check_output_path", "iter_frames", "iter_selected_frames", "probe_video"]
