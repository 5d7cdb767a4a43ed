"""Probe and read a video frame by frame with PyAV (FFmpeg), upright and at a constant rate.

Anything FFmpeg demuxes and decodes can be read: mp4, mov, webm, mkv, avi, animated gif, ...
Nothing is held in memory beyond the current frame.

How the reader treats awkward input (the contract the rest of :mod:`signanon` relies on):

* **Probing decodes the whole video stream once** (no colour conversion, ~1.7 ms per 540x720 H.264
  frame). That gives the exact frame count and timestamps and finds truncated or corrupt files
  *before* any output is produced. A decode error that still happens later, in
  :func:`iter_frames`, is raised as :class:`~signanon.errors.InputError` too.
* **Rotation**: the display matrix (mp4/mov ``tkhd`` matrix, "rotate" tag, ...) is honoured the way
  players do it; frames come out upright and :class:`VideoInfo` reports the displayed size. Angles
  that are not a multiple of 90 degrees are rounded to the nearest one. A mirrored matrix is
  honoured too (``VideoInfo.mirrored``).
* **Frame rate**: the output has exactly the source's frame count. When the source timestamps lie on
  a constant-rate grid, :attr:`VideoInfo.fps` is that rate exactly (e.g. ``30000/1001``). When they
  do not (variable frame rate: phones, screen recorders, GIFs with uneven delays),
  ``variable_rate`` is True and ``fps`` is the average rate, frame count / duration, so the
  constant-rate output keeps every frame and the total duration (frames are re-timed, none are
  dropped or duplicated).
* **Still images** (JPEG, PNG, ... opened by FFmpeg's image demuxers) are refused as "not a video".
  A one-frame GIF or mp4 is accepted as a one-frame video.
* **Pixel aspect ratio** (anamorphic video: PAL/NTSC DV, 16:9 stored in 720x576, ...) is applied the
  way players do it: a frame stored ``w`` wide with sample aspect ratio ``sar`` comes out
  ``round(w * sar)`` wide, in square pixels, and :class:`VideoInfo` reports that size. Without it a
  signer was read squeezed (or stretched) and the output, square-pixelled at the stored size,
  played at the wrong shape (stored 180x480 at 2:1, shown 360x480, came out 480x1280 instead of
  480x640). A ratio outside 1/4..4 is taken for broken metadata and ignored.
* **Interlaced video** (broadcast 50i/60i, DV, digitised tape: frames the decoder flags as
  interlaced, ``VideoInfo.interlaced``) is deinterlaced as it is read (:mod:`.deinterlace`: FFmpeg's
  yadif, one frame out per frame in), so a moving hand is read as one hand, not two fields combed
  together.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InputError

# A timestamp may sit this far from the constant-rate grid (in frame intervals) before the video
# counts as variable-rate; rounding timestamps to a coarse time base (1 ms in mkv/webm) stays below.
_GRID_TOLERANCE = 0.05
# A container-declared rate is used (being exact) when, over the whole video, it drifts from the
# measured duration by at most this many frame intervals (so kept audio stays in sync).
_RATE_DRIFT_FRAMES = 0.5
# Largest denominator of an average (variable-rate) fps; 1001 keeps NTSC-style rates exact.
_MAX_FPS_DENOMINATOR = 1001


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` found out about one input video.

    ``width``/``height`` are the displayed size (after rotation), in pixels. ``fps`` is the rate to
    write the output at: the source's constant rate, or for variable-rate input
    (``variable_rate=True``) the average rate ``frame_count / duration_s``. ``frame_count`` is
    exactly the number of frames :func:`iter_frames` yields. ``rotation`` is the clockwise angle
    (0, 90, 180 or 270) applied to decoded frames, followed by a left-right mirror when
    ``mirrored``. ``codec`` is FFmpeg's decoder name (``"h264"``, ``"gif"``, ...).
    ``pixel_aspect``: the source's sample aspect ratio, already applied to the width (1: square).
    ``interlaced``: some frames are stored as two fields; :func:`iter_frames` deinterlaces them.
    """

    path: Path
    width: int
    height: int
    fps: Fraction
    frame_count: int
    duration_s: float
    rotation: int
    variable_rate: bool
    has_audio: bool
    codec: str
    mirrored: bool = False
    pixel_aspect: Fraction = Fraction(1)
    interlaced: bool = False


def _av():
    import av  # lazy: PyAV loads all of FFmpeg

    return av


def _input_error(path: Path, problem: str) -> InputError:
    return InputError(f"input video {problem}: {path}")


def _describe_av_error(err: Exception) -> str:
    """One line from a PyAV/FFmpeg exception (they may carry a multi-line message)."""
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return " ".join(str(text).split())


def _check_input_file(path: Path) -> None:
    """Refuse a missing path, a folder, an empty or unreadable file (InputError)."""
    if not path.exists():
        raise _input_error(path, "not found")
    if path.is_dir():
        raise _input_error(path, "is a folder, not a file")
    if not path.is_file():
        raise _input_error(path, "is not a regular file")
    if path.stat().st_size == 0:
        raise _input_error(path, "is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise _input_error(path, "cannot be read (permission denied)")


def _open_container(path: Path):
    """Open ``path`` for reading with PyAV; every failure becomes InputError."""
    av = _av()
    try:
        return av.open(str(path), mode="r")
    except PermissionError:
        raise _input_error(path, "cannot be read (permission denied)") from None
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        raise _input_error(path, "is not a video FFmpeg can read") from None


def _is_still_image_format(container) -> bool:
    """True for FFmpeg's still-image demuxers (``image2``, ``jpeg_pipe``, ``png_pipe``, ...)."""
    names = container.format.name.split(",")
    return any(name == "image2" or name.endswith("_pipe") for name in names)


def _video_stream(container, path: Path):
    """The first real video stream (cover art in audio files does not count)."""
    if _is_still_image_format(container):
        raise _input_error(path, "is a still image, not a video")
    for stream in container.streams.video:
        if not stream.disposition & _av().stream.Disposition.attached_pic:
            return stream
    raise _input_error(path, "has no video stream (audio only or not a video)")


def _display_matrix(frame) -> np.ndarray | None:
    """The frame's 3x3 display matrix as int32 ``(9,)`` (16.16 fixed point), or None."""
    av = _av()
    for side_data in frame.side_data:
        if side_data.type == av.sidedata.sidedata.Type.DISPLAYMATRIX:
            raw = bytes(side_data)
            if len(raw) >= 36:
                return np.frombuffer(raw[:36], dtype=np.int32).copy()
    return None


def _orientation(rotation: int, mirrored: bool) -> np.ndarray:
    """2x2 integer map of pixel offsets (x, y) -> displayed (x', y'), y pointing down.

    Rotating ``rotation`` degrees clockwise then mirroring left-right when ``mirrored``.
    """
    quarter_cw = np.array([[0, -1], [1, 0]])
    mat = np.linalg.matrix_power(quarter_cw, (rotation // 90) % 4)
    if mirrored:
        mat = np.array([[-1, 0], [0, 1]]) @ mat
    return mat


def orientation_from_matrix(matrix: np.ndarray | None) -> tuple[int, bool]:
    """Clockwise turn (0/90/180/270) and mirror flag that display a frame as its FFmpeg matrix says.

    ``matrix`` is FFmpeg's display matrix, int32 ``(9,)`` ``[a, b, u, c, d, v, x, y, w]``, mapping
    pixel ``(x, y)`` to ``(a*x + c*y, b*x + d*y)``. None or a degenerate matrix means upright.
    """
    if matrix is None:
        return 0, False
    a, b, _, c, d, _, _, _, _ = (float(v) for v in matrix)
    if math.hypot(a, b) == 0 or math.hypot(c, d) == 0:
        return 0, False
    # Snap the linear part to the nearest signed permutation matrix (multiples of 90 degrees).
    if abs(a) + abs(d) >= abs(b) + abs(c):
        target = np.array([[np.sign(a) or 1, 0], [0, np.sign(d) or 1]])
    else:
        target = np.array([[0, np.sign(c) or 1], [np.sign(b) or 1, 0]])
    for rotation in (0, 90, 180, 270):
        for flip in (False, True):
            if np.array_equal(_orientation(rotation, flip), target):
                return rotation, flip
    raise AssertionError("unreachable: the eight signed permutations are all covered")


def _upright(rgb: np.ndarray, rotation: int, mirrored: bool) -> np.ndarray:
    """Rotate ``rgb`` (H, W, 3) clockwise by ``rotation`` degrees, then mirror if asked."""
    if rotation:
        rgb = np.rot90(rgb, k=-(rotation // 90))
    if mirrored:
        rgb = rgb[:, ::-1]
    return np.ascontiguousarray(rgb)


@dataclass(frozen=True)
class _Timing:
    fps: Fraction
    duration_s: float
    variable_rate: bool


def _measure_timing(
    pts: list[int | None], durations: list[int], time_base: Fraction | None, declared: list
) -> _Timing:
    """Frame rate, duration and variable-rate flag from the decoded frames' timestamps.

    ``pts``/``durations`` are in ``time_base`` units, in display order; ``declared`` lists the rates
    the container claims (tried in order when they agree with the measurement).
    """
    count = len(pts)
    usable = [d for d in declared if d and d > 0]
    if time_base is None or any(p is None for p in pts) or count == 0:
        fps = Fraction(usable[0]) if usable else Fraction(25)
        return _Timing(fps=fps, duration_s=count / fps, variable_rate=False)
    times = np.asarray(pts, dtype=np.float64)
    times -= times[0]
    steps = np.diff(times)
    typical = float(np.median(steps)) if count > 1 else 0.0
    last = durations[-1] if durations and durations[-1] > 0 else typical
    span = float(times[-1] + last)
    if span <= 0 or typical <= 0 or np.any(steps <= 0):
        fps = Fraction(usable[0]) if usable else Fraction(25)
        return _Timing(fps=fps, duration_s=count / fps, variable_rate=count > 1)
    interval = span / count
    grid = np.arange(count) * interval
    off_grid = float(np.max(np.abs(times - grid)))
    variable = off_grid > max(1.0, _GRID_TOLERANCE * interval)
    measured = Fraction(count) / (Fraction(int(round(span))) * time_base)
    fps = measured.limit_denominator(_MAX_FPS_DENOMINATOR)
    if not variable:
        span_s = span * float(time_base)
        for rate in usable:
            if abs(count / float(rate) - span_s) <= _RATE_DRIFT_FRAMES / float(measured):
                fps = Fraction(rate)
                break
    return _Timing(fps=fps, duration_s=float(span * time_base), variable_rate=variable)


def _decode_all(container, stream, path: Path):
    """Decode every frame once, keeping only timestamps, sizes, the first frame's matrix and
    whether any frame is interlaced."""
    av = _av()
    pts: list[int | None] = []
    durations: list[int] = []
    first = None
    interlaced = False
    try:
        for frame in _stream_frames(container, stream, path):
            if first is None:
                first = (frame.width, frame.height, _display_matrix(frame))
            pts.append(frame.pts)
            durations.append(int(frame.duration or 0))
            interlaced = interlaced or bool(frame.interlaced_frame)
    except av.FFmpegError as err:
        detail = _describe_av_error(err)
        raise _input_error(path, f"is truncated or corrupt ({detail})") from None
    return pts, durations, first, interlaced


def _stream_frames(container, stream, path: Path) -> Iterator[object]:
    """The stream's decoded ``av.VideoFrame`` objects in order; a damaged packet raises InputError."""
    for packet in container.demux(stream):
        if packet.is_corrupt:
            raise _input_error(path, "is truncated or corrupt (damaged packet)")
        yield from packet.decode()


def _deinterlaced(frames: Iterator[object], time_base: Fraction | None) -> Iterator[object]:
    """``frames`` with the interlaced ones deinterlaced, one out per frame in (:mod:`.deinterlace`)."""
    from .deinterlace import Deinterlacer

    deinterlacer = Deinterlacer(time_base)
    for frame in frames:
        yield from deinterlacer.push(frame)
    yield from deinterlacer.flush()


# Probes of unchanged files, keyed by (path, device, inode, size, mtime_ns): one run probes its input
# several times (the job, the method, the several-faces count, the privacy check), each a full decode.
_PROBED: dict[tuple, VideoInfo] = {}
_PROBED_MAX = 16


def probe_video(path: str | Path) -> VideoInfo:
    """Check that ``path`` is a readable video and describe it; raises InputError otherwise.

    Decodes the whole video stream once (see the module docstring) so that truncation and
    corruption are found now, before any output exists. A file probed before and unchanged since
    (same inode, size and modification time) is not decoded again.
    """
    path = Path(path).expanduser().absolute()
    _check_input_file(path)
    st = path.stat()
    key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    info = _PROBED.get(key)
    if info is None:
        info = _probe(path)
        if len(_PROBED) >= _PROBED_MAX:
            _PROBED.pop(next(iter(_PROBED)))
        _PROBED[key] = info
    return info


def _probe(path: Path) -> VideoInfo:
    container = _open_container(path)
    try:
        stream = _video_stream(container, path)
        has_audio = len(container.streams.audio) > 0
        codec = stream.codec_context.name
        time_base = stream.time_base
        declared = [stream.average_rate, stream.guessed_rate, stream.base_rate]
        sar = _pixel_aspect(stream)
        pts, durations, first, interlaced = _decode_all(container, stream, path)
    finally:
        container.close()
    if first is None:
        raise _input_error(path, "has no video frames")
    coded_width, coded_height, matrix = first
    coded_width = max(1, round(coded_width * sar))  # square pixels: what a player shows
    rotation, mirrored = orientation_from_matrix(matrix)
    width, height = (coded_height, coded_width) if rotation in (90, 270) else (coded_width, coded_height)
    timing = _measure_timing(pts, durations, time_base, declared)
    return VideoInfo(
        path=path,
        width=width,
        height=height,
        fps=timing.fps,
        frame_count=len(pts),
        duration_s=timing.duration_s,
        rotation=rotation,
        variable_rate=timing.variable_rate,
        has_audio=has_audio,
        codec=codec,
        mirrored=mirrored,
        pixel_aspect=sar,
        interlaced=interlaced,
    )


def _pixel_aspect(stream) -> Fraction:
    """The stream's sample aspect ratio (pixel width over height), 1 when it is unset, square or
    out of 1/4..4 (broken metadata)."""
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    if not sar or sar <= 0:
        return Fraction(1)
    sar = Fraction(sar)
    return sar if Fraction(1, 4) <= sar <= 4 else Fraction(1)


def _to_rgb(frame, coded_size: tuple[int, int]) -> np.ndarray:
    """Decoded frame -> RGB uint8 (H, W, 3) at the probed size before rotation (a size change, or a
    non-square pixel aspect, is rescaled to it)."""
    width, height = coded_size
    if frame.width != width or frame.height != height:
        frame = frame.reformat(width=width, height=height)
    return frame.to_ndarray(format="rgb24")


def _decoded(info: VideoInfo, stop: int | None = None) -> Iterator[tuple[int, object]]:
    """``(index, av.VideoFrame)`` for frames ``0 .. stop-1`` (all ``info.frame_count`` when None),
    decoded (and deinterlaced, where ``info.interlaced``) but not converted. Raises InputError if the
    file can no longer be decoded or now holds fewer frames than when probed."""
    av = _av()
    path = info.path
    _check_input_file(path)
    wanted = info.frame_count if stop is None else min(int(stop), info.frame_count)
    container = _open_container(path)
    yielded = 0
    try:
        stream = _video_stream(container, path)
        frames = _stream_frames(container, stream, path)
        if info.interlaced:
            frames = _deinterlaced(frames, stream.time_base)
        for frame in frames:
            if yielded == wanted:
                return
            yield yielded, frame
            yielded += 1
    except av.FFmpegError as err:
        detail = _describe_av_error(err)
        raise _input_error(path, f"is truncated or corrupt ({detail})") from None
    finally:
        container.close()
    if yielded < wanted:
        raise _input_error(path, f"has fewer frames than when probed ({yielded} of {info.frame_count})")


def _rgb_upright(frame, info: VideoInfo) -> np.ndarray:
    coded = (info.height, info.width) if info.rotation in (90, 270) else (info.width, info.height)
    return _upright(_to_rgb(frame, coded), info.rotation, info.mirrored)


def iter_frames(info: VideoInfo) -> Iterator[np.ndarray]:
    """Yield the video's frames in order: RGB uint8 ``(info.height, info.width, 3)``, upright.

    Exactly ``info.frame_count`` frames, one at a time (streaming; nothing else is kept). Raises
    InputError if the file can no longer be decoded or now holds fewer frames than when probed.
    """
    for _, frame in _decoded(info):
        yield _rgb_upright(frame, info)


def iter_selected_frames(info: VideoInfo, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, frame)`` for the given frame indices only, in frame order (frame as
    :func:`iter_frames`). Frames in between are decoded but never converted to RGB, and decoding
    stops after the last index, so a sparse or early selection costs much less than a full pass.
    Indices outside ``0 .. info.frame_count-1`` are ignored."""
    chosen = sorted({int(i) for i in indices if 0 <= int(i) < info.frame_count})
    if not chosen:
        return
    want = set(chosen)
    for index, frame in _decoded(info, stop=chosen[-1] + 1):
        if index in want:
            yield index, _rgb_upright(frame, info)
