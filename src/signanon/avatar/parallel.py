"""``anonymize --workers N`` on one clip: N processes, each running the whole avatar pipeline
(:func:`~.chunk.render_chunk`: landmarks, smoothing, animation, drawing, x264) on one time chunk.

The worker processes start before the clip is probed (:class:`WorkerPool`), so that their imports
overlap the probe. The clip is cut into N contiguous chunks (:func:`plan_chunks`). Worker ``k``
decodes its frames, runs MediaPipe Holistic from ``warm = start - warm_up_frames(config, fps)``
(worker 0 from frame 0) so that the stateful stages have settled by its first frame, and encodes
frames ``[start, stop)`` to its own H.264 segment with the output's settings (no audio) in the
run's private temporary folder.
MediaPipe started at another frame never quite joins the track a single process has, so the last
``seam_window(fps)`` frames of each chunk fade into the next chunk's avatar (:class:`~.chunk.Seams`).
There is one calibration for the whole clip, the one a single process makes: worker 0 finds the
signer's face for the identity guard, measures the signer on the clip's first frames with a body
and pickles the calibrated animator, with that face, into the folder; the other workers find
their landmarks meanwhile and animate once it is there. The main process shows one progress bar
over all frames (each worker bumps a shared counter per frame encoded),
then joins the segments into the output by copying their packets
(:func:`~signanon.video.concat.concat_videos`: atomic, no source metadata, the source's audio
with ``keep_audio``) and adds up the workers' counts (each writes a small JSON).

A worker that fails stops the run with its one-line error (same error class); the other workers
are stopped, nothing is written at the output and the temporary folder is always removed, also on
Ctrl-C and SIGTERM (workers ignore SIGINT, which a terminal sends to the whole process group: the
main process ends them). A worker whose main process has died removes the folder and exits.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import signal
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from .. import errors
from ..errors import SignanonError
from ..files import write_json_atomic
from ..summary import StageTimer
from ..video import VideoInfo, VideoWriter
from ..video.concat import concat_videos
from .chunk import CalibrateHere, Chunk, ChunkResult, Seams, WaitForCalibration, render_chunk

if TYPE_CHECKING:
    from .anonymizer import AvatarConfig

# A warm-up frame (landmarks and animation, no drawing or encoding) costs about this much of a drawn
# frame (measured: Holistic ~68 ms of ~100 ms a frame), so later chunks are made that much shorter.
WARM_UP_COST = 0.7
_POLL_S = 0.1
_ORPHAN_POLL_S = 0.5
_ANIMATOR = "animator.pkl"


def warm_up_frames(config: "AvatarConfig", fps: float) -> int:
    """Frames a chunk after the first reads before its first drawn frame, in a ``fps`` frames/s
    video: extra MediaPipe tracking (``chunk_overlap``), the gap filler's look-back (``max_gap +
    1``) and the running median of the avatar's scale tracking (``ScaleTracking.window``) on tracked
    landmarks (the One-Euro filters settle meanwhile: a still point's start shrinks to ~1 % in 24
    frames at 30 fps, a moving point's much faster), then the ``seam_frames`` poses that the chunk
    before fades into (:class:`~.chunk.Seams`). 0 + 9 + 9 + 10 = 28 frames by default at 30 fps
    and below; above, the last three cover as many seconds (55 frames at 60 fps:
    :mod:`~signanon.landmarks.rate`).

    MediaPipe started at another frame never quite joins a single process's track. Measured on a
    540x720 clip (the seam test), the later chunk's avatar arms were 12 / 8 / 5 px from the
    one-process avatar in its first 10 / next 10 / remaining frames with 28 warm-up frames, and
    4 / 5 / 6 px with 58; either way the seam fades without a jump. Each 30 warm-up frames cost ~3 %
    of a 900-frame run's CPU, and with two workers on two cores ~5 % of its wall time."""
    settle = config.chunk_overlap + config.smoothing.gap_frames(fps) + 1
    return settle + config.animator.scale.at_rate(fps).window + config.seam_window(fps)


def plan_chunks(frame_count: int, workers: int, warm_up: int) -> list[Chunk]:
    """``workers`` contiguous chunks covering ``frame_count`` frames, each after the first reading
    ``warm_up`` frames early. The later chunks are shorter by ``WARM_UP_COST * warm_up`` frames, so
    that every worker has about the same work."""
    workers = max(1, min(int(workers), frame_count))
    extra = WARM_UP_COST * min(warm_up, frame_count // workers)
    share = (frame_count + (workers - 1) * extra) / workers  # the work of each worker, in frames
    sizes = np.array([share] + [share - extra] * (workers - 1))
    edges = np.concatenate([[0], np.cumsum(sizes)]).round().astype(int)
    edges[-1] = frame_count
    return [Chunk(k, max(0, int(a) - warm_up) if k else 0, int(a), int(b)) for k, (a, b) in enumerate(zip(edges[:-1], edges[1:]))]


@dataclass(frozen=True)
class _WorkerJob:
    """What one worker process is given (pickled): the probed video, the settings, its chunk, the
    number of chunks and the run's private folder."""

    info: VideoInfo
    config: "AvatarConfig"
    chunk: Chunk
    chunks: int
    folder: str

    def path(self, kind: str) -> Path:
        """This worker's file of ``kind`` in the folder: ``segment`` (.mp4), ``stats``/``error`` (.json)."""
        suffix = ".mp4" if kind == "segment" else ".json"
        return Path(self.folder) / f"{kind}{self.chunk.index:02d}{suffix}"


class WorkerPool:
    """``count`` worker processes started before their jobs are known, so that their start-up (a
    new Python importing MediaPipe, OpenCV and PyAV: ~1.5 s of a core each) overlaps the main
    process's probe of the clip (~2 s for 900 frames, on one core); each then waits for its job on
    a pipe. Also the run's private temporary folder. A context manager: leaving it ends the
    processes still running (SIGTERM, then SIGKILL; a process given no job sees its pipe close and
    exits) and removes the folder."""

    def __init__(self, count: int):
        ctx = mp.get_context("spawn")
        self.procs = []
        self._outboxes = []
        self.folder = Path(tempfile.mkdtemp(prefix="signanon-avatar-"))
        try:  # the folder goes with any failure from here on
            self.counters = [ctx.Value("q", 0, lock=False) for _ in range(count)]
            for counter in self.counters:
                inbox, outbox = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_worker, args=(inbox, counter, str(self.folder), os.getpid()), daemon=True)
                proc.start()
                inbox.close()  # the worker's end
                self.procs.append(proc)
                self._outboxes.append(outbox)
        except BaseException:
            self.close()
            raise

    def __len__(self) -> int:
        return len(self.procs)

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, jobs: list[_WorkerJob]) -> None:
        """Give job ``k`` to worker ``k`` (at most one job each); the workers left without a job
        see their pipe close and exit now, instead of idling (each holds its imports) until the end."""
        if len(jobs) > len(self.procs):
            raise ValueError(f"{len(jobs)} jobs for {len(self.procs)} worker processes")
        for job, outbox in zip(jobs, self._outboxes):
            outbox.send(job)
        for outbox in self._outboxes[len(jobs) :]:
            outbox.close()

    def close(self) -> None:
        for outbox in self._outboxes:
            outbox.close()
        _stop(self.procs)
        shutil.rmtree(self.folder, ignore_errors=True)


def render_in_parallel(
    info: VideoInfo,
    config: "AvatarConfig",
    chunks: list[Chunk],
    output: Path,
    *,
    keep_audio: bool,
    on_frames: Callable[[int], None],
    timer: StageTimer,
    pool: WorkerPool | None = None,
) -> tuple[int, ChunkResult]:
    """Anonymize ``info`` into ``output`` with one worker process per chunk (those of ``pool``, at
    least ``len(chunks)``, or new ones); return the frames written and the workers' merged
    :class:`ChunkResult`. ``on_frames(n)``: ``n`` more frames done."""
    if pool is None:
        with WorkerPool(len(chunks)) as pool:
            return render_in_parallel(info, config, chunks, output, keep_audio=keep_audio, on_frames=on_frames, timer=timer, pool=pool)
    jobs = [_WorkerJob(info, config, chunk, len(chunks), str(pool.folder)) for chunk in chunks]
    procs, counters = pool.procs[: len(jobs)], pool.counters[: len(jobs)]
    pool.send(jobs)
    with timer("workers"):
        _wait(jobs, procs, counters, on_frames)
    results = [ChunkResult(**json.loads(job.path("stats").read_text())) for job in jobs]
    written = sum(r.frames for r in results)
    if written != info.frame_count:  # a bug, not the input: never publish a short video
        raise SignanonError(f"internal error: the avatar workers wrote {written} of {info.frame_count} frames")
    with timer("concat"):
        frames = concat_videos([job.path("segment") for job in jobs], output, info.fps,
                               audio_source=info if keep_audio else None)  # fmt: skip
    return frames, ChunkResult.merged(results)


def _wait(jobs: list[_WorkerJob], procs, counters, on_frames: Callable[[int], None]) -> None:
    """Report progress until every worker has finished; raise the first failed worker's error."""
    shown = 0
    while True:
        done = sum(c.value for c in counters)
        if done > shown:
            on_frames(done - shown)
            shown = done
        for job, proc in zip(jobs, procs):
            if proc.exitcode not in (None, 0):
                raise _failure(job, proc.exitcode)
        if all(proc.exitcode == 0 for proc in procs):
            return
        time.sleep(_POLL_S)


def _failure(job: _WorkerJob, exitcode: int) -> SignanonError:
    """The error a worker reported (its class and one line), or a line saying that it died."""
    try:
        reported = json.loads(job.path("error").read_text())
    except (OSError, ValueError):
        return SignanonError(f"an avatar worker stopped unexpectedly (exit code {exitcode})")
    kind = getattr(errors, reported["type"], None)
    if not (isinstance(kind, type) and issubclass(kind, SignanonError)) or kind is errors.ReidentifiedError:
        kind = SignanonError
    return kind(reported["message"])


def _stop(procs) -> None:
    """End the workers still running (SIGTERM, then SIGKILL) and reap them all."""
    for proc in procs:
        if proc.pid is not None and proc.exitcode is None:
            proc.terminate()
    for proc in procs:
        if proc.pid is None:
            continue
        proc.join(timeout=5)
        if proc.exitcode is None:
            proc.kill()
            proc.join()


# -- the worker process ------------------------------------------------------------------------


def _worker(inbox, counter, folder: str, parent: int) -> None:
    """Process body: load the heavy modules, wait for a job (none: the pipe closes, exit), render
    its chunk into its segment and write its stats, or its error."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches every process: the main one decides
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _exit_when_orphaned(folder, parent)
    import av  # noqa: F401 - loaded while the main process probes the clip
    import cv2  # noqa: F401
    import mediapipe  # noqa: F401

    try:
        job = inbox.recv()
    except (EOFError, OSError):
        return  # not needed (a shorter clip, or the run ended)
    try:
        result = _render(job, counter)
        write_json_atomic(job.path("stats"), result.as_dict())
    except SignanonError as err:
        write_json_atomic(job.path("error"), {"type": type(err).__name__, "message": str(err)})
        raise SystemExit(1)
    except BaseException as err:  # a bug: still one line for the user, the details beside it
        message = f"internal error in an avatar worker: {type(err).__name__}: {err}"
        Path(job.folder, f"traceback{job.chunk.index:02d}.txt").write_text(traceback.format_exc())
        write_json_atomic(job.path("error"), {"type": "SignanonError", "message": message})
        raise SystemExit(1)


def _render(job: _WorkerJob, counter) -> ChunkResult:
    info, timer = job.info, StageTimer()
    published = Path(job.folder) / _ANIMATOR
    if job.chunk.index == 0:
        calibration = CalibrateHere(info, job.config, timer, publish=published)
    else:
        calibration = WaitForCalibration(published, timer)

    def on_frame() -> None:
        counter.value += 1

    seams = Seams(Path(job.folder), job.config.seam_window(info.fps), job.chunks)
    with VideoWriter(job.path("segment"), *job.config.output_size(info.width, info.height), info.fps) as writer:
        result = render_chunk(info, job.config, job.chunk, calibration, writer.write, timer, on_frame, seams)
    result.frames = writer.frames_written
    return result


def _exit_when_orphaned(folder: str, parent: int) -> None:
    """If the main process dies without stopping this worker (``kill -9``), remove the run's
    folder and exit, instead of working on for nobody."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_ORPHAN_POLL_S)
        shutil.rmtree(folder, ignore_errors=True)
        os._exit(1)

    threading.Thread(target=watch, name="signanon-orphan-watch", daemon=True).start()
