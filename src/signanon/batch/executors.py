"""Where clips run: in this process, in N local worker processes, or as tasks of Ray actors.

Each executor takes the clip tasks and yields a :class:`~.worker.ClipOutcome` per task, in the
order they finish. A worker that dies (a crash in native code, a lost Ray node) costs only the clip
it was on: that clip fails with a one-line reason and a fresh worker takes its place.
"""

from __future__ import annotations

import logging
import queue
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from ..errors import SignanonError
from .worker import ClipOutcome, ClipTask, ClipWorker, failed

RAY_INSTALL_HINT = 'pip install -e ".[cluster]"'
_POLL_S = 0.5


def run_here(tasks: Iterable[ClipTask], evaluation: Any = None) -> Iterator[ClipOutcome]:
    """One worker in this process (``--workers 1``)."""
    worker = ClipWorker(evaluation)
    for task in tasks:
        yield worker.run(task)


# -- local processes -----------------------------------------------------------------------------


def _process_main(index: int, inbox, outbox, evaluation: Any) -> None:
    """A pool process: one ClipWorker for its whole life; None in the inbox ends it."""
    worker = ClipWorker(evaluation)
    while True:
        task = inbox.get()
        if task is None:
            return
        outbox.put((index, worker.run(task)))


class _Slot:
    """One worker process with its own inbox and the task it holds (None when idle)."""

    def __init__(self, context, index: int, outbox, evaluation: Any):
        self._context, self.index, self._outbox, self._evaluation = context, index, outbox, evaluation
        self.task: ClipTask | None = None
        self.start()

    def start(self) -> None:
        self.inbox = self._context.Queue()
        self.process = self._context.Process(
            target=_process_main, args=(self.index, self.inbox, self._outbox, self._evaluation),
            name=f"signanon-batch-{self.index}", daemon=True,
        )  # fmt: skip
        self.process.start()

    def give(self, task: ClipTask) -> None:
        self.task = task
        self.inbox.put(task)

    def stop(self) -> None:
        if self.process.is_alive():
            self.inbox.put(None)


def run_processes(tasks: Iterable[ClipTask], workers: int, evaluation: Any = None) -> Iterator[ClipOutcome]:
    """``workers`` processes (``spawn``: MediaPipe does not survive a fork after use), each with
    one :class:`ClipWorker`; a clip goes to the next idle process."""
    import multiprocessing

    pending = deque(tasks)
    if not pending:
        return
    context = multiprocessing.get_context("spawn")
    outbox = context.Queue()
    slots = [_Slot(context, i, outbox, evaluation) for i in range(min(workers, len(pending)))]
    try:
        while pending or any(s.task is not None for s in slots):
            for slot in slots:
                if slot.task is None and pending:
                    slot.give(pending.popleft())
            yield from _collect(slots, outbox)
    finally:
        _shut_down(slots)


def _collect(slots: list[_Slot], outbox) -> Iterator[ClipOutcome]:
    """The next finished outcome, or the clips of workers that died meanwhile."""
    try:
        index, outcome = outbox.get(timeout=_POLL_S)
    except queue.Empty:
        for slot in slots:
            if slot.task is not None and not slot.process.is_alive():
                code = slot.process.exitcode
                yield failed(slot.task, f"the worker process died (exit code {code}) on this clip")
                slot.task = None
                slot.start()
        return
    slot = slots[index]
    if slot.task is not None and slot.task.relative == outcome.relative:
        slot.task = None
        yield outcome


def _shut_down(slots: list[_Slot]) -> None:
    for slot in slots:
        slot.stop()
    for slot in slots:
        slot.process.join(timeout=10)
        if slot.process.is_alive():
            slot.process.terminate()
            slot.process.join(timeout=5)


# -- Ray ----------------------------------------------------------------------------------------


def import_ray():
    """The ``ray`` module, or a one-line error with the install hint."""
    try:
        import ray
    except ImportError:
        raise SignanonError(f"--ray needs Ray, an optional extra; install it with: {RAY_INSTALL_HINT}") from None
    return ray


@dataclass(frozen=True)
class RayPlan:
    """How clips run on Ray: ``address`` ("local" starts a local Ray), ``actors`` (None: one per
    CPU of the cluster, or per GPU when ``gpu``), ``gpu``: each actor asks for one GPU (None: when
    the cluster has one)."""

    address: str
    actors: int | None = None
    gpu: bool | None = None


def _connect(ray, address: str) -> bool:
    """Connect to (or start) Ray; True when this call did it (and must shut it down)."""
    if ray.is_initialized():
        return False
    # Ray's own INFO lines ("Started a local Ray instance.") are not the batch's to print, under -q least
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    if address not in ("local", "auto"):
        _check_reachable(address)
    try:
        if address == "local":
            ray.init(**kwargs)
        else:
            ray.init(address=address, **kwargs)
    except Exception as err:  # ConnectionError, RuntimeError, ValueError depending on the cause
        raise SignanonError(f"cannot connect to Ray at {address}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    return True


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A one-line error unless something answers at ``address`` (``host:port`` or
    ``ray://host:port``) within ``timeout`` seconds: ``ray.init`` retried an address where nothing
    listens for about 14 minutes, silently, before it gave up."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        return  # not host:port: Ray says what is wrong with it
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise SignanonError(f"cannot connect to Ray at {address}: nothing answers there ({reason})") from None


def run_ray(tasks: Iterable[ClipTask], plan: RayPlan, evaluation: Any = None) -> Iterator[ClipOutcome]:
    """Each clip as a call on a Ray actor that holds one :class:`ClipWorker` (models load once per
    actor). Input and output paths must be visible to every node (a shared file system)."""
    ray = import_ray()
    pending = deque(tasks)
    if not pending:
        return
    started = _connect(ray, plan.address)
    actors: list[Any] = []
    try:
        count, gpu = actor_count(ray.cluster_resources(), plan)
        actor_class = ray.remote(num_cpus=1, num_gpus=1 if gpu else 0)(ClipWorker)
        actors = [actor_class.remote(evaluation) for _ in range(min(count, len(pending)))]
        yield from _drive_actors(ray, actors, pending, actor_class, evaluation)
    finally:
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()


def actor_count(resources: dict[str, float], plan: RayPlan) -> tuple[int, bool]:
    """How many actors to start on a cluster with ``resources`` (Ray's ``cluster_resources()``),
    and whether each asks for a GPU. Each actor asks for one CPU (or one GPU), so no more are
    started than the cluster has: an actor Ray cannot place never starts, and the clips given to
    it waited for ever (``--workers 4`` on a 2-CPU machine finished 2 clips, then hung). A cluster
    without the GPU the clips need is a one-line error, not a wait."""
    gpu = resources.get("GPU", 0) > 0 if plan.gpu is None else plan.gpu
    kind = "GPU" if gpu else "CPU"
    have = int(resources.get(kind, 0))
    if have < 1:
        raise SignanonError(f"the Ray cluster at {plan.address} has no {kind} for the clips' workers"
                            + (" (--device cuda asks for one; use --device auto or cpu)" if gpu else ""))
    return min(plan.actors or have, have), gpu


def _drive_actors(ray, actors: list, pending: deque, actor_class, evaluation) -> Iterator[ClipOutcome]:
    running: dict[Any, tuple[int, ClipTask]] = {}
    idle = list(range(len(actors)))
    while pending or running:
        while idle and pending:
            index, task = idle.pop(), pending.popleft()
            running[actors[index].run.remote(task)] = (index, task)
        ready, _ = ray.wait(list(running), num_returns=1)
        index, task = running.pop(ready[0])
        try:
            yield ray.get(ready[0])
        except ray.exceptions.RayError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            yield failed(task, f"the Ray worker failed on this clip: {first}")
            ray.kill(actors[index])
            actors[index] = actor_class.remote(evaluation)
        idle.append(index)
