"""Join H.264 MP4 segments end to end into one file by copying their packets (no re-encoding).

The segments must be consecutive pieces of one video written by :class:`~signanon.video.VideoWriter`
with the same size, rate and encoder settings: then they share their codec parameters (x264's
SPS/PPS, checked here), each starts with a key frame, and none refers to another's frames (x264's
GOPs are closed), so the joined stream decodes to exactly the segments' frames, one after the
other. Each packet's timestamps are shifted by the duration of the frames before its segment;
where a segment's encoder delay differs from the one before (a segment shorter than x264's
B-frame delay), its first decoding timestamps are nudged up by a tick each so that they keep
increasing (presentation times, and so the frames' times, are never changed).

The output is written like :class:`VideoWriter`'s (:class:`~signanon.video.writer.Mp4Output`):
atomically, ``+faststart``, no metadata of any source, and with ``audio_source`` that video's
audio re-encoded to AAC exactly as ``VideoWriter(..., audio_source=...)`` would add it.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from .reader import VideoInfo
from .writer import Mp4Output, check_output_path


def _av():
    import av  # lazy: PyAV loads all of FFmpeg

    return av


def concat_videos(
    segments: Sequence[str | Path], output: str | Path, fps: Fraction, *, audio_source: VideoInfo | None = None
) -> int:
    """Write ``segments`` (at least one, in order) one after the other to ``output`` (.mp4) at the
    constant rate ``fps`` (the segments' rate) and return the number of frames written.

    Raises InputError when a segment cannot be read or was encoded with other codec parameters,
    OutputError when the output cannot be written; either way nothing appears at ``output``.
    """
    if not segments:
        raise ValueError("concat_videos needs at least one segment")
    fps = Fraction(fps)
    path = check_output_path(output, audio_source.path if audio_source else None, suffixes=(".mp4",))
    out = Mp4Output(path, audio_source)
    with _open(segments[0]) as first:
        template = first.streams.video[0]
        extradata = bytes(template.codec_context.extradata or b"")
        stream = out.open(lambda container: _stream_like(container, template))
    try:
        frames, last_dts = 0, None
        for segment in segments:
            count, last_dts = _copy_packets(segment, extradata, out, stream, frames, fps, last_dts)
            frames += count
    except BaseException:
        out.abort()
        raise
    out.close()
    return frames


def _open(path: str | Path):
    av = _av()
    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError) as err:
        raise InputError(f"cannot read the video segment {path} ({err})") from None


def _stream_like(container, template):
    """An output stream with ``template``'s codec parameters and time base, without its metadata."""
    stream = container.add_stream_from_template(template)
    stream.time_base = template.time_base
    stream.metadata.clear()
    return stream


def _copy_packets(
    segment: str | Path, extradata: bytes, out: Mp4Output, stream, before: int, fps: Fraction, last_dts: int | None
) -> tuple[int, int | None]:
    """Mux every video packet of ``segment`` into ``stream``, ``before`` frames later than in the
    segment and after the decoding timestamp ``last_dts`` (None: the first segment), pumping the
    audio along; return the segment's frame count and its last decoding timestamp."""
    with _open(segment) as source:
        video = source.streams.video[0]
        if bytes(video.codec_context.extradata or b"") != extradata:
            raise InputError(f"video segment {segment} was encoded with other codec parameters than the first")
        shift = _ticks(Fraction(before) / fps, video.time_base)
        count = 0
        for packet in source.demux(video):
            if packet.dts is None:  # the demuxer's empty end-of-stream packet
                continue
            packet.pts += shift
            packet.dts = packet.dts + shift if last_dts is None else max(packet.dts + shift, last_dts + 1)
            last_dts = packet.dts
            packet.stream = stream
            out.mux(packet)
            count += 1
            out.pump_audio((before + count) / float(fps))
    return count, last_dts


def _ticks(seconds: Fraction, time_base: Fraction) -> int:
    """``seconds`` in units of ``time_base`` (exact for the mp4 muxer's time bases of constant-rate
    video, whose frame duration is a whole number of ticks)."""
    return round(Fraction(seconds) / Fraction(time_base))
