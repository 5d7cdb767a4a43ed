"""Draw and encode on other threads while the main thread runs MediaPipe.

MediaPipe, OpenCV's drawing and the H.264 encoder all release the GIL in their native code, so the
avatar's drawing and encoding mostly hide behind landmark extraction. Frames are drawn by a small
pool and encoded strictly in order by one writer thread. While the caller is still submitting (and
MediaPipe is busy) one frame is drawn at a time, since the drawing code's Python parts compete
with the main thread for the GIL; once the caller is done, the remaining frames (all of them, for a
clip shorter than the calibration window) are drawn ``threads`` at a time. A ``render`` whose
result depends on the frames drawn before it (the identity guard's) needs ``threads=1``.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

import numpy as np

from ..summary import StageTimer
from .skeleton import AvatarPose

_DONE = object()


class RenderWorker:
    """Consumes :class:`AvatarPose` items: ``render(pose)`` (thread-safe, up to ``threads`` at a
    time) then ``write(frame)`` in submission order.

    Use as a context manager. :meth:`submit` blocks when ``depth`` frames are in flight (so memory
    stays bounded) and re-raises the worker's error, if it had one, in the caller's thread; leaving
    the ``with`` block waits for the last frame and re-raises it too.
    """

    def __init__(
        self,
        render: Callable[[AvatarPose], np.ndarray],
        write: Callable[[np.ndarray], None],
        timer: StageTimer,
        on_frame: Callable[[], None] = lambda: None,
        depth: int = 8,
        threads: int = 2,
    ):
        self._render, self._write, self._timer, self._on_frame = render, write, timer, on_frame
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="signanon-encode", daemon=True)
        self._threads = max(1, threads)
        self._pool = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="signanon-render")
        self._drawing = threading.Semaphore(1)  # widened to `threads` when the caller is done

    def __enter__(self) -> "RenderWorker":
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._stop.set()  # the caller failed: drop what is queued, no more frames are written
        for _ in range(self._threads - 1):
            self._drawing.release()  # the main thread is idle now: draw the tail on every core
        self._put(_DONE)
        self._thread.join()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if exc_type is None:
            self._raise_if_failed()
        self._error = None  # the caller's error is on its way; holding it would keep its frames alive

    def submit(self, pose: AvatarPose) -> None:
        self._raise_if_failed()
        if not self._put(self._pool.submit(self._timed_render, pose)):
            self._raise_if_failed()
            raise RuntimeError("the render worker has stopped after an error")

    def _timed_render(self, pose: AvatarPose) -> np.ndarray:
        with self._drawing, self._timer("render"):
            return self._render(pose)

    def _put(self, item) -> bool:
        """Queue ``item`` for the encoder thread; False if that thread has ended."""
        while self._thread.is_alive():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _raise_if_failed(self) -> None:
        """Re-raise the encoder thread's error once, and forget it: its traceback will hold the
        caller's frames, and this object holding it would make a cycle only gc could free."""
        error, self._error = self._error, None
        if error is not None:
            self._stop.set()
            try:
                raise error
            finally:
                del error

    def _run(self) -> None:
        item = None
        try:
            while True:
                item = self._queue.get()
                if item is _DONE or self._stop.is_set():
                    return
                frame = item.result()
                with self._timer("encode"):
                    self._write(frame)
                self._on_frame()
        except BaseException as err:  # handed to the caller's thread
            self._error = err
        finally:
            item = None  # a failed future holds the error, whose traceback holds this frame
