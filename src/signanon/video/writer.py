"""Write RGB frames to an H.264 mp4, atomically, with nothing from the source's metadata.

* Video: libx264, yuv420p (plays everywhere), constant rate ``fps``, CRF 18 and preset "veryfast"
  by default, BT.709 limited-range colour (tagged in the stream), ``+faststart`` (index first).
* Odd sizes: yuv420p needs even width and height, so an odd-sized frame is padded by repeating its
  last column and/or row once. The file is then up to one pixel wider/taller than the frames given
  (``VideoWriter.encoded_width`` / ``encoded_height``); nothing is cropped or scaled.
* Atomic: frames go to a hidden temporary file in the target's folder
  (``.<name>.<random>.partial``) that is renamed onto the target only when the ``with`` block
  ends without an exception. On any exception the temporary file is deleted, so the output path
  never holds a half-written file (an existing file there is replaced only on success).
* Privacy: no container or stream metadata is copied from the source (title, dates, location,
  device, comments, rotation ...). The file carries only what FFmpeg's muxer and x264 write
  themselves (encoder name/version and settings, handler names, language "und").
* Audio: dropped unless ``audio_source`` is given; then the first audio stream of that video is
  re-encoded to AAC (stereo at most) and muxed alongside, starting with the video.
"""

from __future__ import annotations

import functools
import os
import secrets
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError, OutputError
from ..files import AtomicTarget
from .reader import VideoInfo

_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
_AUDIO_BIT_RATE = 128_000
OUTPUT_CRF = 18  # H.264 quality of every output video (lower = better)
OUTPUT_PRESET = "veryfast"
# x264's own names for its code paths; "AVX2" includes everything before it (SSE2 ... BMI2, FMA3)
_X264_WITHOUT_AVX512 = "asm=AVX2,Cache64"


def x264_options(crf: int = OUTPUT_CRF, preset: str = OUTPUT_PRESET, threads: int | None = None) -> dict[str, str]:
    """The libx264 options of every H.264 stream signanon writes (``threads`` None: x264 picks).

    Repeatable: the same frames give the same bytes. x264 uses AVX-512 code on CPUs that have it
    (Skylake-X and later), and there its output depended on what else ran in the process, before
    or alongside it: measured with av 18.1.0's x264 on a Sapphire Rapids machine, the same frames
    encoded before and after MediaPipe ran, or while it ran on another thread, came out different
    at 540x720, 576x720, 192x144 and 1080x1440 (tens of grey levels apart on the avatar's edges,
    so a read-back of the output moved between identical runs; x264 on one thread too); 512x720,
    640x480 and 1920x1080 did not in these runs. Held to its AVX2 code, x264 wrote the same bytes
    every time at the same speed (benchmarks/bench_encode.py), so that is what it gets on those CPUs.
    """
    options = {"crf": str(int(crf)), "preset": str(preset)}
    if threads is not None:
        options["threads"] = str(int(threads))
    if _cpu_has_avx512():
        options["x264-params"] = _X264_WITHOUT_AVX512
    return options


@functools.lru_cache(maxsize=1)
def _cpu_has_avx512() -> bool:
    """True on a CPU where x264 would use AVX-512 (its "AVX512": F, CD, BW, DQ and VL; numpy
    calls that set AVX512_SKX). False where numpy does not say (not x86, an unknown numpy)."""
    try:
        from numpy.core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy 2 moved it
        try:
            from numpy._core._multiarray_umath import __cpu_features__ as features
        except ImportError:
            return False
    return bool(features.get("AVX512_SKX", False))


def _av():
    import av  # lazy: PyAV loads all of FFmpeg

    return av


def _resolved(path: str | Path) -> Path:
    """Absolute path with symlinks and ``..`` resolved (the file itself need not exist)."""
    return Path(os.path.realpath(Path(path).expanduser()))


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file: the same after resolving symlinks and ``..``, or (both
    existing) hard links or bind mounts of one file. Neither need exist."""
    a, b = Path(a).expanduser().absolute(), Path(b).expanduser().absolute()
    if _resolved(a) == _resolved(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links, bind mounts
    except OSError:
        return False


def _check_folder_writable(folder: Path, output: Path, what: str) -> None:
    """Create and delete a hidden probe file in ``folder`` (for the file ``output``, called
    ``what`` in the message): the only test that holds for root too."""
    probe = folder / f".{output.name}.{secrets.token_hex(4)}.probe"
    try:
        with open(probe, "xb"):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise OutputError(f"{what} folder cannot be written ({reason}): {folder}") from None
    try:
        probe.unlink()
    except OSError:
        pass


def check_output_path(
    output: str | Path, input: str | Path | None = None, *, suffixes: tuple[str, ...] | None = None,
    what: str = "output",
) -> Path:
    """Validate an output path before any work; return it with its folder resolved (absolute,
    no symlinks or ``..``). Raises OutputError. Works for any output file (``.mp4``, ``.pose``...).

    Refused: an output that is the input (also through symlinks, hard links or other spellings),
    an existing folder, a name not ending in one of ``suffixes`` (when given, case-insensitive),
    a parent folder that is missing, is not a folder (e.g. a regular file) or cannot be written
    (checked by creating and deleting a hidden file there: that also holds for root, for whom
    permission bits do not count, and catches read-only mounts). An existing output file is
    allowed; :class:`VideoWriter` replaces it atomically on success. ``what`` names the file in
    the messages (``"summary"``: ``summary folder does not exist: ...``).
    """
    out = Path(output).expanduser().absolute()
    if input is not None and same_file(out, input):
        raise OutputError(f"{what} must not be the input video: {out}")
    if out.is_dir():
        raise OutputError(f"{what} path is a folder, not a file: {out}")
    if suffixes is not None and out.suffix.lower() not in {x.lower() for x in suffixes}:
        raise OutputError(f"{what} file name must end in {' or '.join(suffixes)}: {out}")
    folder = out.parent
    if not folder.exists():
        raise OutputError(f"{what} folder does not exist: {folder}")
    if not folder.is_dir():
        raise OutputError(f"{what} folder is not a folder: {folder}")
    if out.exists() and not out.is_file():
        raise OutputError(f"{what} path exists and is not a regular file: {out}")
    _check_folder_writable(folder, out, what)
    return Path(os.path.realpath(folder)) / out.name


def _pad_even(frame: np.ndarray) -> np.ndarray:
    """Pad (H, W, 3) to even H and W by repeating the last row/column (yuv420p needs even sizes)."""
    height, width = frame.shape[:2]
    pad_rows, pad_cols = height % 2, width % 2
    if not (pad_rows or pad_cols):
        return frame
    return np.pad(frame, ((0, pad_rows), (0, pad_cols), (0, 0)), mode="edge")


def as_encoded(frame: np.ndarray, crf: int = OUTPUT_CRF, preset: str = OUTPUT_PRESET) -> np.ndarray:
    """An RGB uint8 (H, W, 3) frame as a viewer of the output would see it: encoded as the one
    frame of an H.264 stream (yuv420p, the writer's quality) and decoded again; (H, W, 3) back.

    At small sizes the encoder takes details a drawing relies on (a 192x144 avatar's mouth reads
    back at a quarter of its drawn movement), so what is measured on drawn frames is measured on
    these."""
    av = _av()
    height, width = frame.shape[:2]
    padded = _pad_even(np.ascontiguousarray(frame))
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = padded.shape[1], padded.shape[0], "yuv420p"
    codec.options = x264_options(crf, preset, threads=1)
    packets = codec.encode(av.VideoFrame.from_ndarray(padded, format="rgb24")) + codec.encode(None)
    decoder = av.CodecContext.create("h264", "r")
    decoded = [f for packet in packets for f in decoder.decode(packet)] + list(decoder.decode(None))
    return decoded[0].to_ndarray(format="rgb24")[:height, :width]


class _AudioCopier:
    """Decodes the source's first audio stream and re-encodes it to AAC into ``container``."""

    def __init__(self, container, source: VideoInfo):
        av = _av()
        self._path = source.path
        try:
            self._source = av.open(str(source.path), mode="r")
        except (av.FFmpegError, OSError) as err:
            raise InputError(f"cannot read the audio of {source.path}: {err}") from None
        in_stream = self._source.streams.audio[0]
        rate = in_stream.rate if in_stream.rate in _AAC_RATES else 48000
        layout = "mono" if in_stream.channels == 1 else "stereo"
        self._stream = container.add_stream("aac", rate=rate, layout=layout)
        self._stream.bit_rate = _AUDIO_BIT_RATE
        self._stream.metadata.clear()
        self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate, frame_size=1024)
        self._frames = self._source.decode(in_stream)
        self._rate = rate
        self._samples = 0
        self._done = False
        self._container = container

    def _mux(self, frame) -> None:
        if frame is not None:
            frame.pts = self._samples
            frame.time_base = Fraction(1, self._rate)
            self._samples += frame.samples
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def pump(self, until_s: float | None) -> None:
        """Encode source audio up to ``until_s`` seconds (all of it when None), then flush at end."""
        av = _av()
        while not self._done and (until_s is None or self._samples < until_s * self._rate):
            try:
                decoded = next(self._frames, None)
            except av.FFmpegError as err:
                raise InputError(f"audio of the input video is corrupt ({err}): {self._path}") from None
            if decoded is None:
                self._done = True
                for frame in self._resampler.resample(None):
                    self._mux(frame)
                self._mux(None)
                break
            decoded.pts = None
            for frame in self._resampler.resample(decoded):
                self._mux(frame)

    def close(self) -> None:
        self._source.close()


class Mp4Output:
    """The file side of an MP4 being written, shared by :class:`VideoWriter` (which encodes frames)
    and :func:`~signanon.video.concat.concat_videos` (which copies the packets of finished files).

    The owner adds its video stream (``open(add_video)`` calls ``add_video(container)``), muxes its
    packets with :meth:`mux` and calls :meth:`pump_audio` with the time reached, so the audio is
    interleaved with the video. Everything goes to a hidden temporary file beside ``path``
    (``+faststart``, no metadata of any source): :meth:`close` finishes it (the rest of the audio,
    the index) and renames it onto ``path``; :meth:`abort`, or any failure in :meth:`close`,
    deletes it. ``audio_source``: copy the first audio stream of that video (re-encoded to AAC);
    None, or a video without audio, writes none.
    """

    def __init__(self, path: Path, audio_source: VideoInfo | None = None):
        self.path = Path(path)
        self._audio_source = audio_source if audio_source and audio_source.has_audio else None
        self._target = AtomicTarget(self.path, ".partial")
        self._container = None
        self._audio: _AudioCopier | None = None

    @property
    def is_open(self) -> bool:
        return self._container is not None

    def open(self, add_video: Callable[[object], object]):
        """Create the temporary file, add the video stream (``add_video(container)``, returned)
        and, with an audio source, the AAC stream."""
        av = _av()
        try:
            self._container = av.open(
                str(self._target.temp), mode="w", format="mp4", options={"movflags": "+faststart"}
            )
        except (av.FFmpegError, OSError) as err:
            self._target.discard()
            raise OutputError(f"cannot create the output file ({err}): {self.path}") from None
        try:
            stream = add_video(self._container)
            if self._audio_source is not None:
                self._audio = _AudioCopier(self._container, self._audio_source)
        except BaseException:
            self.abort()
            raise
        return stream

    def mux(self, packets) -> None:
        """Write one packet or a list of packets (a full disk is one OutputError line)."""
        av = _av()
        try:
            self._container.mux(packets)
        except (av.FFmpegError, OSError) as err:
            raise OutputError(f"cannot write the output video ({err}): {self.path}") from None

    def pump_audio(self, until_s: float) -> None:
        """Copy the source's audio up to ``until_s`` seconds (nothing without an audio source)."""
        if self._audio is not None:
            self._audio.pump(until_s)

    def close(self) -> None:
        """Copy the rest of the audio, finish the file and rename it onto ``path``."""
        av = _av()
        try:
            try:
                if self._audio is not None:
                    self._audio.pump(None)
                self._close_container()
                self._target.commit()
            except (av.FFmpegError, OSError) as err:
                raise OutputError(f"cannot write the output video ({err}): {self.path}") from None
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Discard everything written so far: close and delete the temporary file."""
        try:
            self._close_container()
        except Exception:  # the file is being discarded; a failing close must not hide the cause
            pass
        finally:
            self._container = None
            self._target.discard()

    def _close_container(self) -> None:
        if self._audio is not None:
            self._audio.close()
            self._audio = None
        if self._container is not None:
            container, self._container = self._container, None
            container.close()


class VideoWriter:
    """Context manager writing RGB uint8 ``(height, width, 3)`` frames to an H.264 mp4 at ``path``.

    ``fps`` is the constant output rate (a Fraction such as ``VideoInfo.fps``). ``audio_source``:
    copy that video's audio (re-encoded to AAC); None (default) writes no audio. ``input_path``
    (optional) is refused as output like in :func:`check_output_path`; the audio source's path
    always is. See the module docstring for padding, atomicity and metadata.
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: Fraction,
        *,
        audio_source: VideoInfo | None = None,
        crf: int = OUTPUT_CRF,
        preset: str = OUTPUT_PRESET,
        input_path: str | Path | None = None,
    ):
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        fps = Fraction(fps)
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        source = input_path if input_path is not None else (audio_source.path if audio_source else None)
        self.path = check_output_path(path, source, suffixes=(".mp4",))
        if audio_source is not None and input_path is not None:
            check_output_path(self.path, audio_source.path)
        self.width, self.height, self.fps = int(width), int(height), fps
        self.encoded_width = self.width + self.width % 2
        self.encoded_height = self.height + self.height % 2
        self.frames_written = 0
        self._crf, self._preset = int(crf), str(preset)
        self._output = Mp4Output(self.path, audio_source)
        self._video = None

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> "VideoWriter":
        self.open()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def open(self) -> None:
        """Create the temporary file and the encoders (done by ``__enter__``)."""
        self._video = self._output.open(self._add_video_stream)

    def _add_video_stream(self, container):
        av = _av()
        stream = container.add_stream(
            "libx264", rate=self.fps, options=x264_options(self._crf, self._preset)
        )
        stream.width, stream.height = self.encoded_width, self.encoded_height
        stream.pix_fmt = "yuv420p"
        stream.time_base = 1 / self.fps
        stream.codec_context.time_base = 1 / self.fps
        cc = stream.codec_context
        cc.color_range = av.video.reformatter.ColorRange.MPEG
        cc.colorspace = av.video.reformatter.Colorspace.ITU709
        cc.color_primaries = 1  # BT.709 (sRGB primaries)
        cc.color_trc = 1  # BT.709
        stream.metadata.clear()
        return stream

    def write(self, frame: np.ndarray) -> None:
        """Encode one RGB uint8 frame of shape ``(height, width, 3)``."""
        if not self._output.is_open:
            raise RuntimeError("VideoWriter is not open: use it as a context manager")
        if frame.dtype != np.uint8 or frame.shape != (self.height, self.width, 3):
            raise ValueError(
                f"expected an RGB uint8 ({self.height}, {self.width}, 3) frame, "
                f"got {frame.dtype} {frame.shape}"
            )
        av = _av()
        rgb = _pad_even(np.ascontiguousarray(frame))
        # copied into PyAV's own frame, whose rows are aligned and padded as swscale expects: reading
        # the array in place (from_numpy_buffer) crashed swscale in the encoding thread (SIGSEGV) on a
        # 642-px-wide frame, whose 1926-byte rows are not aligned; the copy costs ~0.1 ms a frame
        video_frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        yuv = video_frame.reformat(
            format="yuv420p",
            dst_colorspace=av.video.reformatter.Colorspace.ITU709,
            dst_color_range=av.video.reformatter.ColorRange.MPEG,
        )
        yuv.pts = self.frames_written
        yuv.time_base = 1 / self.fps
        self._output.mux(self._encode(yuv))
        self.frames_written += 1
        self._output.pump_audio(self.frames_written / float(self.fps))

    def _encode(self, frame) -> list:
        av = _av()
        try:
            return self._video.encode(frame)
        except (av.FFmpegError, OSError) as err:
            raise OutputError(f"cannot write the output video ({err}): {self.path}") from None

    def close(self) -> None:
        """Flush the encoders, finish the file and rename it onto the target path."""
        if not self._output.is_open:
            return
        try:
            if self.frames_written == 0:
                raise OutputError(f"no frames were written, output not created: {self.path}")
            self._output.mux(self._encode(None))
        except BaseException:
            self.abort()
            raise
        self._output.close()

    def abort(self) -> None:
        """Discard everything written so far: close and delete the temporary file."""
        self._output.abort()
