"""Holistic landmarks of one long video found by several processes, one time chunk each, and
handed on in frame order as if one estimator had read the whole video.

The video is cut into chunks of 150-600 frames, dealt to the worker processes in turn (worker 0
takes chunks 0, N, 2N, ...), so that while the main process draws one chunk the workers are
already reading the next ones. Each worker decodes the video once, front to back, converting only
the frames of its own chunks; for each of its chunks it starts a fresh MediaPipe Holistic, runs it
on ``overlap`` frames before the chunk (so tracking has warmed up by the chunk's first frame) and
on the chunk, and writes the raw ``(data, confidence)`` rows into a memory-mapped file in a private
temporary folder, bumping the chunk's shared counter as it goes. :meth:`ParallelLandmarks.__iter__` yields
the rows in order as soon as they are written, so smoothing, calibration, drawing and encoding
start while the later chunks are still being read (streaming: the main process keeps one row at a
time; the rows live on disk, about 9.4 kB per frame). One calibration and one smoothing pass see
the whole clip, so there is no seam to stitch.

A worker that fails stops the run with its one-line error; the temporary folder is always removed.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import InputError, SignanonError
from ..video import VideoInfo
from . import layout
from .holistic import HolisticConfig

_POLL_S = 0.005
_COUNTER_EVERY = 4  # frames between counter updates


@dataclass(frozen=True)
class Chunk:
    """Frames ``[start, stop)`` of the video, read from ``warm`` (``warm <= start``) on."""

    warm: int
    start: int
    stop: int

    @property
    def frames(self) -> int:
        return self.stop - self.start


def plan_chunks(frame_count: int, workers: int, overlap: int, min_frames: int = 150, max_frames: int = 600) -> list[Chunk]:
    """Split ``frame_count`` frames into contiguous chunks: about three per worker, each between
    ``min_frames`` and ``max_frames`` long (fewer when the clip is short); every chunk but the first
    starts reading ``overlap`` frames early."""
    if frame_count <= 0:
        return []
    size = int(np.clip(np.ceil(frame_count / (3 * max(1, workers))), min_frames, max_frames))
    count = max(1, int(np.ceil(frame_count / size)))
    edges = np.linspace(0, frame_count, count + 1).round().astype(int)
    return [
        Chunk(max(0, int(a) - overlap) if i else 0, int(a), int(b))
        for i, (a, b) in enumerate(zip(edges[:-1], edges[1:]))
        if b > a
    ]


def _rows_path(folder: Path, index: int, kind: str) -> Path:
    return folder / f"chunk{index:02d}.{kind}.f32"


def _run_chunks(info, holistic: HolisticConfig, jobs: list[tuple[int, Chunk]], folder: str, counters) -> None:
    """Worker process body: the landmarks of its chunks (in frame order) into their memory-mapped
    files. ``info`` is the main process's :class:`~signanon.video.VideoInfo` (no second probe); the
    video is decoded once, up to the end of the worker's last chunk, and only the frames of its
    chunks are converted to RGB."""
    import os

    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from ..video import iter_selected_frames
    from .holistic import HolisticEstimator

    root = Path(folder)
    index = jobs[0][0]
    try:
        frames = iter_selected_frames(info, (t for _, chunk in jobs for t in range(chunk.warm, chunk.stop)))
        for (index, chunk), counter in zip(jobs, counters):
            data = np.memmap(_rows_path(root, index, "data"), np.float32, "w+", shape=(chunk.frames, layout.NUM_POINTS, 3))
            conf = np.memmap(_rows_path(root, index, "conf"), np.float32, "w+", shape=(chunk.frames, layout.NUM_POINTS))
            with HolisticEstimator(holistic) as estimator:
                for frame_index, frame in frames:
                    d, c = estimator(frame)
                    if frame_index < chunk.start:
                        continue
                    row = frame_index - chunk.start
                    data[row], conf[row] = d, c
                    if (row + 1) % _COUNTER_EVERY == 0 or row + 1 == chunk.frames:
                        data.flush()
                        conf.flush()
                        counter.value = row + 1
                    if row + 1 == chunk.frames:
                        break
    except SignanonError as err:
        (root / f"chunk{index:02d}.error").write_text(str(err))
        raise SystemExit(1)
    except BaseException as err:  # a bug: still one line for the user, details for debugging
        (root / f"chunk{index:02d}.error").write_text(f"internal error in a landmark worker: {type(err).__name__}: {err}")
        (root / f"chunk{index:02d}.traceback").write_text(traceback.format_exc())
        raise SystemExit(1)


class ParallelLandmarks:
    """Iterable of raw ``(data, confidence)`` per frame (float32 ``(586, 3)`` and ``(586,)``, the
    layout of :mod:`.layout`), in frame order, found by ``workers`` processes.

    ``video``: the probed video (its ``frame_count`` frames are read). ``overlap``: frames read
    before each chunk but the first, to warm up MediaPipe's tracking. Iterate once.
    """

    def __init__(self, video: VideoInfo, holistic: HolisticConfig, workers: int, overlap: int = 15):
        self.video, self.frame_count, self.holistic = video, int(video.frame_count), holistic
        self.chunks = plan_chunks(self.frame_count, workers, overlap)
        self.workers = max(1, min(int(workers), len(self.chunks)))

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        ctx = mp.get_context("spawn")
        folder = Path(tempfile.mkdtemp(prefix="signanon-landmarks-"))
        counters = [ctx.Value("q", 0) for _ in self.chunks]
        dealt = [list(range(w, len(self.chunks), self.workers)) for w in range(self.workers)]
        procs = [
            ctx.Process(
                target=_run_chunks, daemon=True,
                args=(self.video, self.holistic, [(i, self.chunks[i]) for i in mine], str(folder), [counters[i] for i in mine]),
            )  # fmt: skip
            for mine in dealt
        ]
        owner = {i: procs[w] for w, mine in enumerate(dealt) for i in mine}
        try:
            for p in procs:
                p.start()
            for i, chunk in enumerate(self.chunks):
                yield from self._rows(folder, i, chunk, counters[i], owner[i])
        finally:
            for p in procs:
                if p.pid is None:  # never started
                    continue
                if p.is_alive():
                    p.terminate()
                p.join(timeout=5)
            shutil.rmtree(folder, ignore_errors=True)

    def _rows(self, folder: Path, index: int, chunk: Chunk, counter, proc) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        data = conf = None
        row = 0
        while row < chunk.frames:
            ready = counter.value
            if ready <= row:
                if not proc.is_alive() and counter.value <= row:
                    self._raise_failure(folder, index, proc)
                time.sleep(_POLL_S)
                continue
            if data is None:
                data = np.memmap(_rows_path(folder, index, "data"), np.float32, "r", shape=(chunk.frames, layout.NUM_POINTS, 3))
                conf = np.memmap(_rows_path(folder, index, "conf"), np.float32, "r", shape=(chunk.frames, layout.NUM_POINTS))
            for r in range(row, ready):
                yield np.array(data[r]), np.array(conf[r])
            row = ready

    @staticmethod
    def _raise_failure(folder: Path, index: int, proc) -> None:
        error = folder / f"chunk{index:02d}.error"
        if error.is_file():
            raise InputError(error.read_text())
        raise SignanonError(f"a landmark worker stopped unexpectedly (exit code {proc.exitcode})")
