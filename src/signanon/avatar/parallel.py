"""``anonymize --workers N`` on one clip: N processes, each running the whole avatar pipeline
(:func:`~.chunk.render_chunk`: landmarks, smoothing, animation, drawing, x264) on one time chunk.

The clip is cut into N contiguous chunks (:func:`plan_chunks`). Worker ``k`` decodes its frames,
runs MediaPipe Holistic from ``warm = start - warm_up_frames(config)`` (worker 0 from frame 0) so
that the stateful stages have settled by its first frame, and encodes frames ``[start, stop)`` to
its own H.264 segment with the output's settings (no audio) in the run's private temporary folder.
MediaPipe started at another frame never quite joins the track a single process has, so the last
``seam_frames`` frames of each chunk fade into the next chunk's avatar (:class:`~.chunk.Seams`).
There is one calibration for the whole clip, the one a single process makes: worker 0 measures the
signer on the clip's first frames with a body and pickles the calibrated animator into the folder;
the other workers find their landmarks meanwhile and animate once it is there. The main process
shows one progress bar over all frames (each worker bumps a shared counter per frame encoded),
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


def warm_up_frames(config: "AvatarConfig") -> int:
    """Frames a chunk after the first reads before its first drawn frame: MediaPipe's tracking
    (``chunk_overlap``), then the gap filler's look-back (``max_gap + 1``) and the running median of
    the avatar's scale tracking (``ScaleTracking.window``) on tracked landmarks (the One-Euro
    filters settle meanwhile: a still point's start shrinks to ~1 % in 24 frames at 30 fps, a
    moving point's much faster), then the ``seam_frames`` poses that the chunk before fades into
    (:class:`~.chunk.Seams`). 30 + 9 + 9 + 10 = 58 frames by default.

    MediaPipe started at another frame never quite joins a single process's track, but it comes
    close only after a while: measured on a 540x720 clip, the avatar's arms in the first 10 frames
    of a chunk were 13-15 px from the one-process avatar with 28 or 43 warm-up frames, 5-8 px with
    58 (each 30 warm-up frames cost ~3 % of a 900-frame run's CPU)."""
    settle = config.chunk_overlap + config.smoothing.max_gap + 1 + config.animator.scale.window
    return settle + config.seam_frames


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
    number of chunks, the run's private folder and the main process's id."""

    info: VideoInfo
    config: "AvatarConfig"
    chunk: Chunk
    chunks: int
    folder: str
    parent: int

    def path(self, kind: str) -> Path:
        """This worker's file of ``kind`` in the folder: ``segment`` (.mp4), ``stats``/``error`` (.json)."""
        suffix = ".mp4" if kind == "segment" else ".json"
        return Path(self.folder) / f"{kind}{self.chunk.index:02d}{suffix}"


def render_in_parallel(
    info: VideoInfo,
    config: "AvatarConfig",
    chunks: list[Chunk],
    output: Path,
    *,
    keep_audio: bool,
    on_frames: Callable[[int], None],
    timer: StageTimer,
) -> tuple[int, ChunkResult]:
    """Anonymize ``info`` into ``output`` with one worker process per chunk; return the frames
    written and the workers' merged :class:`ChunkResult`. ``on_frames(n)``: ``n`` more frames done."""
    ctx = mp.get_context("spawn")
    folder = Path(tempfile.mkdtemp(prefix="signanon-avatar-"))
    jobs = [_WorkerJob(info, config, chunk, len(chunks), str(folder), os.getpid()) for chunk in chunks]
    counters = [ctx.Value("q", 0, lock=False) for _ in chunks]
    procs = [ctx.Process(target=_worker, args=(job, counter), daemon=True) for job, counter in zip(jobs, counters)]
    try:
        for proc in procs:
            proc.start()
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
    finally:
        _stop(procs)
        shutil.rmtree(folder, ignore_errors=True)


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


def _worker(job: _WorkerJob, counter) -> None:
    """Process body: render ``job.chunk`` into its segment and write its stats, or its error."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches every process: the main one decides
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _exit_when_orphaned(job)
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

    seams = Seams(Path(job.folder), job.config.seam_frames, job.chunks)
    with VideoWriter(job.path("segment"), info.width, info.height, info.fps) as writer:
        result = render_chunk(info, job.config, job.chunk, calibration, writer.write, timer, on_frame, seams)
    result.frames = writer.frames_written
    return result


def _exit_when_orphaned(job: _WorkerJob) -> None:
    """If the main process dies without stopping this worker (``kill -9``), remove the run's
    folder and exit, instead of working on for nobody."""

    def watch() -> None:
        while os.getppid() == job.parent:
            time.sleep(_ORPHAN_POLL_S)
        shutil.rmtree(job.folder, ignore_errors=True)
        os._exit(1)

    threading.Thread(target=watch, name="signanon-orphan-watch", daemon=True).start()
